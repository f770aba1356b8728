package kexec

import (
	"bytes"
	"encoding/binary"
)

// LoadSegment is one part of an OS image placed at a physical address:
// Data is copied there, the rest up to MemSize is zeroed (kexec_load(2) zero-
// fills a segment beyond its buffer).
type LoadSegment struct {
	Addr    uint64
	Data    []byte
	MemSize uint64
}

const (
	maxProgramHeaders = 64
	// Multiboot2 loads below 4 GiB: the boot information has 32-bit addresses.
	limit4G = 1 << 32
)

// ParseELF returns the PT_LOAD segments (by physical address) and the entry
// point of an ELF32 or ELF64 little-endian x86 executable. Xen's xen.gz
// inflates to such an ELF32 file. Every offset and size is checked against
// the data and the 4 GiB Multiboot limit.
func ParseELF(untrustedImage []byte) ([]LoadSegment, uint64, error) {
	img := untrustedImage
	if len(img) < 52 || !bytes.Equal(img[:4], []byte("\x7fELF")) {
		return nil, 0, perrorf(0, "ELF magic", ErrBad, "not an ELF file")
	}
	class, data := img[4], img[5]
	if data != 1 {
		return nil, 0, perrorf(5, "EI_DATA", ErrUnsupported, "big-endian ELF")
	}
	le := binary.LittleEndian
	machine := le.Uint16(img[18:])
	var entry, phoff uint64
	var phentsize, phnum uint16
	switch class {
	case 1:
		if machine != 3 { // EM_386
			return nil, 0, perrorf(18, "e_machine", ErrUnsupported, "%d (want EM_386 for ELF32)", machine)
		}
		entry = uint64(le.Uint32(img[24:]))
		phoff = uint64(le.Uint32(img[28:]))
		phentsize, phnum = le.Uint16(img[42:]), le.Uint16(img[44:])
		if phentsize < 32 {
			return nil, 0, perrorf(42, "e_phentsize", ErrBad, "%d", phentsize)
		}
	case 2:
		if len(img) < 64 {
			return nil, 0, perrorf(0, "ELF64 header", ErrTruncated, "")
		}
		if machine != 62 { // EM_X86_64
			return nil, 0, perrorf(18, "e_machine", ErrUnsupported, "%d (want EM_X86_64 for ELF64)", machine)
		}
		entry = le.Uint64(img[24:])
		phoff = le.Uint64(img[32:])
		phentsize, phnum = le.Uint16(img[54:]), le.Uint16(img[56:])
		if phentsize < 56 {
			return nil, 0, perrorf(54, "e_phentsize", ErrBad, "%d", phentsize)
		}
	default:
		return nil, 0, perrorf(4, "EI_CLASS", ErrBad, "%d", class)
	}
	if phnum == 0 || phnum > maxProgramHeaders {
		return nil, 0, perrorf(44, "e_phnum", ErrBad, "%d program headers (1..%d)", phnum, maxProgramHeaders)
	}
	if phoff > uint64(len(img)) || uint64(phnum)*uint64(phentsize) > uint64(len(img))-phoff {
		return nil, 0, perrorf(int64(phoff), "program headers", ErrTruncated, "%d x %d bytes", phnum, phentsize)
	}
	var segs []LoadSegment
	var total uint64
	for i := 0; i < int(phnum); i++ {
		ph := img[phoff+uint64(i)*uint64(phentsize):]
		at := int64(phoff) + int64(i)*int64(phentsize)
		var typ uint32
		var off, paddr, filesz, memsz uint64
		typ = le.Uint32(ph)
		if class == 1 {
			off, paddr = uint64(le.Uint32(ph[4:])), uint64(le.Uint32(ph[12:]))
			filesz, memsz = uint64(le.Uint32(ph[16:])), uint64(le.Uint32(ph[20:]))
		} else {
			off, paddr = le.Uint64(ph[8:]), le.Uint64(ph[24:])
			filesz, memsz = le.Uint64(ph[32:]), le.Uint64(ph[40:])
		}
		if typ != 1 { // PT_LOAD
			continue
		}
		switch {
		case filesz > memsz:
			return nil, 0, perrorf(at, "p_filesz", ErrBad, "%#x larger than p_memsz %#x", filesz, memsz)
		case off > uint64(len(img)) || filesz > uint64(len(img))-off:
			return nil, 0, perrorf(at, "p_offset", ErrTruncated, "%#x+%#x beyond %#x bytes", off, filesz, len(img))
		case memsz > MaxInflatedSize:
			return nil, 0, perrorf(at, "p_memsz", ErrTooLarge, "%#x", memsz)
		case paddr >= limit4G || memsz > limit4G-paddr:
			return nil, 0, perrorf(at, "p_paddr", ErrBad, "%#x+%#x crosses 4 GiB", paddr, memsz)
		case paddr < 1<<20:
			return nil, 0, perrorf(at, "p_paddr", ErrBad, "%#x is below 1 MiB", paddr)
		}
		total += memsz
		if total > MaxInflatedSize {
			return nil, 0, perrorf(at, "p_memsz", ErrTooLarge, "segments total %#x", total)
		}
		for _, s := range segs {
			if paddr < s.Addr+s.MemSize && s.Addr < paddr+memsz {
				return nil, 0, perrorf(at, "p_paddr", ErrBad, "segment at %#x overlaps one at %#x", paddr, s.Addr)
			}
		}
		segs = append(segs, LoadSegment{Addr: paddr, Data: img[off : off+filesz], MemSize: memsz})
	}
	if len(segs) == 0 {
		return nil, 0, perrorf(int64(phoff), "program headers", ErrBad, "no PT_LOAD segment")
	}
	if entry >= limit4G {
		return nil, 0, perrorf(24, "e_entry", ErrBad, "%#x above 4 GiB", entry)
	}
	inside := false
	for _, s := range segs {
		if entry >= s.Addr && entry < s.Addr+s.MemSize {
			inside = true
		}
	}
	if !inside {
		return nil, 0, perrorf(24, "e_entry", ErrBad, "%#x is in no loaded segment", entry)
	}
	return segs, entry, nil
}
