package kexec

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/glint-boot/glint/internal/bootcfg"
)

// Multiboot2 memory map types (Multiboot2 1.0, 3.6.8).
const (
	MemAvailable = 1
	MemReserved  = 2
	MemACPI      = 3
	MemNVS       = 4
	MemBad       = 5
)

// MemRange is one entry of the machine's memory map.
type MemRange struct {
	Start, Size uint64
	Type        uint32
}

// Framebuffer is a linear RGB framebuffer the firmware set up (3.6.12).
type Framebuffer struct {
	Addr                 uint64
	Pitch, Width, Height uint32
	BPP                  uint8
	RedPos, RedSize      uint8
	GreenPos, GreenSize  uint8
	BluePos, BlueSize    uint8
}

// Platform is what the boot information describes about the machine.
type Platform struct {
	MemoryMap []MemRange
	// RSDPv1 / RSDPv2 are copies of the ACPI root pointer (20 / 36 bytes),
	// passed as tags 14 / 15 when known.
	RSDPv1, RSDPv2 []byte
	Framebuffer    *Framebuffer
	// NoBDA says the firmware left no BIOS data area in page 0 (UEFI without
	// a CSM); PlanMultiboot2 then loads page 0 with one (see biosDataPage).
	// coreboot writes one for its payloads (src/arch/x86/ebda.c), a BIOS
	// has its own.
	NoBDA bool
}

// Boot information tag types (3.6).
const (
	mbiEnd         = 0
	mbiCmdline     = 1
	mbiLoaderName  = 2
	mbiModule      = 3
	mbiBasicMem    = 4
	mbiMmap        = 6
	mbiFramebuffer = 8
	mbiACPIOld     = 14
	mbiACPINew     = 15
)

// LoaderName is the boot loader name glint reports. It does not start with
// "GRUB 2", so Xen drops the first word of every command line
// (xen/arch/x86/setup.c, cmdline_cook): glint puts the file's name there, as
// kexec-tools does.
const LoaderName = "glint"

// Plan is a Multiboot2 image laid out in physical memory for kexec_load.
type Plan struct {
	Entry       uint64 // the trampoline: where kexec jumps
	KernelEntry uint64 // where the trampoline jumps
	MBIAddr     uint64
	MBI         []byte
	// Cmdline is the kernel command line the OS sees, after the first
	// word glint adds (see LoaderName) and xenNoRealMode.
	Cmdline  string
	Header   *Multiboot2Header
	Segments []LoadSegment // sorted by address
	// ModuleAddrs are where each module was placed, in order.
	ModuleAddrs []uint64
	// extra is the last module's buffer when it carries Image.ExtraInitrd
	// (the disk key): Wipe clears it once the kernel has its copy.
	extra []byte
}

// Wipe zeroes the plan's copy of the secret extra initrd, if any.
func (p *Plan) Wipe() { clear(p.extra) }

// inflate returns data, gunzipped when it starts with the gzip magic.
func inflate(name string, data []byte) ([]byte, error) {
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		return data, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: gzip: %w", name, err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, MaxInflatedSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: gzip: %w", name, err)
	}
	if len(out) > MaxInflatedSize {
		return nil, fmt.Errorf("%s: inflates beyond %d bytes: %w", name, MaxInflatedSize, ErrTooLarge)
	}
	return out, nil
}

// allocator hands out free RAM between 1 MiB and 4 GiB, first fit.
type allocator struct{ free []MemRange }

func newAllocator(mm []MemRange, used []LoadSegment) *allocator {
	a := &allocator{}
	for _, r := range mm {
		if r.Type != MemAvailable {
			continue
		}
		s, e := max(r.Start, 1<<20), min(r.Start+r.Size, limit4G)
		if s < e {
			a.free = append(a.free, MemRange{Start: s, Size: e - s, Type: MemAvailable})
		}
	}
	for _, u := range used {
		a.reserve(u.Addr, pageUp(u.MemSize+u.Addr-pageDown(u.Addr))+pageDown(u.Addr)-u.Addr)
	}
	return a
}

func pageDown(x uint64) uint64 { return x &^ 0xfff }
func pageUp(x uint64) uint64   { return (x + 0xfff) &^ 0xfff }

func (a *allocator) reserve(start, size uint64) {
	start, end := pageDown(start), pageUp(start+size)
	var out []MemRange
	for _, f := range a.free {
		fe := f.Start + f.Size
		if end <= f.Start || start >= fe {
			out = append(out, f)
			continue
		}
		if f.Start < start {
			out = append(out, MemRange{Start: f.Start, Size: start - f.Start, Type: MemAvailable})
		}
		if end < fe {
			out = append(out, MemRange{Start: end, Size: fe - end, Type: MemAvailable})
		}
	}
	a.free = out
}

func (a *allocator) alloc(size uint64) (uint64, error) {
	size = pageUp(max(size, 1))
	for _, f := range a.free {
		if f.Size >= size {
			a.reserve(f.Start, size)
			return f.Start, nil
		}
	}
	return 0, fmt.Errorf("no free RAM below 4 GiB for %d bytes", size)
}

func inRAM(mm []MemRange, start, size uint64) bool {
	for _, r := range mm {
		if r.Type == MemAvailable && start >= r.Start && start+size <= r.Start+r.Size {
			return true
		}
	}
	return false
}

// PlanMultiboot2 lays out a Multiboot2 kernel (Xen), its modules, the boot
// information and the trampoline in the RAM that plat's memory map offers.
func PlanMultiboot2(img Image, plat Platform) (*Plan, error) {
	if img.Kind != bootcfg.Multiboot2 && img.Kind != bootcfg.Multiboot {
		return nil, fmt.Errorf("image kind %v is not Multiboot", img.Kind)
	}
	if err := img.check(); err != nil {
		return nil, err
	}
	raw, err := readFile(img.Kernel, MaxKernelSize)
	if err != nil {
		return nil, err
	}
	kernel, err := inflate(img.Kernel.name(), raw)
	if err != nil {
		return nil, err
	}
	hdr, err := ParseMultiboot2Header(kernel)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", img.Kernel.name(), err)
	}
	var segs []LoadSegment
	var entry uint64
	if hdr.Address != nil {
		segs, err = aoutKludge(kernel, hdr)
		entry = uint64(hdr.Entry)
		if !hdr.HasEntry {
			err = perrorf(int64(hdr.Offset), "entry address tag", ErrBad, "address tag without an entry address tag")
		}
	} else {
		segs, entry, err = ParseELF(kernel)
		if hdr.HasEntry {
			entry = uint64(hdr.Entry)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", img.Kernel.name(), err)
	}
	for _, s := range segs {
		if !inRAM(plat.MemoryMap, s.Addr, s.MemSize) {
			return nil, fmt.Errorf("%s: loads at %#x-%#x, which is not RAM on this machine", img.Kernel.name(), s.Addr, s.Addr+s.MemSize)
		}
	}
	if err := checkRequests(hdr, plat); err != nil {
		return nil, err
	}
	a := newAllocator(plat.MemoryMap, segs)
	plan := &Plan{KernelEntry: entry, Header: hdr}

	type placed struct {
		addr, size uint64
		cmdline    string
	}
	var mods []placed
	for i, m := range img.Modules {
		data, err := readFile(m.File, MaxInitrdSize)
		if err != nil {
			return nil, fmt.Errorf("module %d: %w", i+1, err)
		}
		if !m.NoUnzip {
			// grub's module2 inflates gzip'd modules unless --nounzip.
			if data, err = inflate(m.name(), data); err != nil {
				return nil, err
			}
		}
		if i == len(img.Modules)-1 && len(img.ExtraInitrd) > 0 {
			// The dom0 initrd gets the extra cpio as a Linux initrd would
			// (WriteInitrd): padded to 4 bytes, then appended. A fresh buffer,
			// so the caller's file bytes are left as they are.
			var buf bytes.Buffer
			if _, err := WriteInitrd(&buf, []File{{Data: data}}, img.ExtraInitrd); err != nil {
				return nil, fmt.Errorf("module %s: %w", m.name(), err)
			}
			data = buf.Bytes()
			plan.extra = data
		}
		addr, err := a.alloc(uint64(len(data)))
		if err != nil {
			return nil, fmt.Errorf("module %s: %w", m.name(), err)
		}
		segs = append(segs, LoadSegment{Addr: addr, Data: data, MemSize: pageUp(uint64(len(data)))})
		mods = append(mods, placed{addr, uint64(len(data)), firstWord(m.name(), m.Cmdline)})
		plan.ModuleAddrs = append(plan.ModuleAddrs, addr)
	}

	// Marshal once to learn the size, place it, then marshal for real (the
	// content does not depend on its own address).
	b := &mbiBuilder{}
	cmdline := img.Cmdline
	if bytes.Contains(kernel, []byte(xenNoRealMode)) && !slices.Contains(strings.Fields(cmdline), xenNoRealMode) {
		cmdline = strings.TrimSpace(cmdline + " " + xenNoRealMode)
	}
	if plat.NoBDA {
		// Page 0 is below the allocator's 1 MiB floor: nothing else lands there.
		segs = append(segs, LoadSegment{Addr: 0, Data: biosDataPage(plat.MemoryMap), MemSize: 4096})
	}
	plan.Cmdline = firstWord(img.Kernel.name(), cmdline)
	b.build(plan.Cmdline, plat, func(add func(start, end uint32, cmdline string)) {
		for _, m := range mods {
			add(uint32(m.addr), uint32(m.addr+m.size), m.cmdline)
		}
	})
	mbiAddr, err := a.alloc(uint64(len(b.buf)))
	if err != nil {
		return nil, fmt.Errorf("boot information: %w", err)
	}
	segs = append(segs, LoadSegment{Addr: mbiAddr, Data: b.buf, MemSize: pageUp(uint64(len(b.buf)))})
	plan.MBIAddr, plan.MBI = mbiAddr, b.buf

	trAddr, err := a.alloc(uint64(len(trampolineCode)))
	if err != nil {
		return nil, fmt.Errorf("trampoline: %w", err)
	}
	segs = append(segs, LoadSegment{Addr: trAddr, Data: trampoline(uint32(mbiAddr), uint32(entry)), MemSize: 4096})
	plan.Entry = trAddr
	sort.Slice(segs, func(i, j int) bool { return segs[i].Addr < segs[j].Addr })
	plan.Segments = segs
	return plan, nil
}

// xenNoRealMode is the Xen option (docs/misc/xen-command-line.pandoc,
// "no-real-mode") that skips the real-mode BIOS calls Xen's boot trampoline
// makes for EDD disk data, EDID and the video mode (int 13h, int 10h). After
// kexec there is no BIOS to answer them: coreboot's Linux payload and UEFI
// leave none, and where one exists Linux has since taken over the disks and
// the display it would drive. Without the option Xen jumps through an empty
// interrupt vector table and the machine resets before Xen prints a line
// (seen with QEMU's coreboot 4.15 build; Heads appends the option for Xen
// too). PlanMultiboot2 appends it to the command line of any
// Multiboot2 kernel whose image contains the option's name, which is Xen's
// early command-line parser (xen/arch/x86/boot/cmdline.c), unless present.
const xenNoRealMode = "no-real-mode"

// biosDataPage returns page 0 for a machine without a BIOS data area: an
// empty interrupt vector table and a BDA whose base memory size (0x413,
// KiB) is the RAM below 640 KiB, EBDA segment (0x40E) zero. Xen's BIOS entry
// path (xen/arch/x86/boot/head.S, trampoline_bios_setup) places its
// real-mode trampoline 64 KiB below the smaller of that size and the
// Multiboot2 basic memory information (3.6.8); a zero BDA makes it the
// smaller, the trampoline wraps to just below 4 GiB, and Xen's relocation
// of the boot information overwrites Xen itself (seen under OVMF).
func biosDataPage(mm []MemRange) []byte {
	page := make([]byte, 4096)
	lower, _ := basicMem(mm)
	binary.LittleEndian.PutUint16(page[0x413:], uint16(lower))
	return page
}

// firstWord builds a command line whose first word is the file's name, which
// Xen drops (see LoaderName).
func firstWord(file, args string) string {
	name := path.Base(strings.ReplaceAll(file, "\\", "/"))
	if name == "." || name == "/" || name == "" {
		name = "image"
	}
	name = strings.ReplaceAll(name, " ", "_")
	if args == "" {
		return name
	}
	return name + " " + args
}

// checkRequests fails when a required information request asks for a tag
// glint cannot provide (3.1.4: the loader must fail then).
func checkRequests(h *Multiboot2Header, plat Platform) error {
	if !h.InfoRequired {
		return nil
	}
	for _, t := range h.InfoRequests {
		switch t {
		case mbiCmdline, mbiLoaderName, mbiModule, mbiBasicMem, mbiMmap:
		case mbiFramebuffer:
			if plat.Framebuffer == nil {
				return fmt.Errorf("the kernel requires framebuffer information and this machine reports none")
			}
		case mbiACPIOld, mbiACPINew:
			if plat.RSDPv1 == nil && plat.RSDPv2 == nil {
				return fmt.Errorf("the kernel requires the ACPI RSDP and it was not found")
			}
		default:
			return fmt.Errorf("the kernel requires boot information tag %d, which glint does not provide: %w", t, ErrUnsupported)
		}
	}
	return nil
}

// aoutKludge lays out an image by its address tag (3.1.5).
func aoutKludge(img []byte, h *Multiboot2Header) ([]LoadSegment, error) {
	a := h.Address
	at := int64(h.Offset)
	if a.LoadAddr > a.HeaderAddr || uint64(a.HeaderAddr-a.LoadAddr) > uint64(h.Offset) {
		return nil, perrorf(at, "load_addr", ErrBad, "%#x with header_addr %#x", a.LoadAddr, a.HeaderAddr)
	}
	fileStart := uint64(h.Offset) - uint64(a.HeaderAddr-a.LoadAddr)
	fileEnd := uint64(len(img))
	if a.LoadEndAddr != 0 {
		if a.LoadEndAddr < a.LoadAddr || fileStart+uint64(a.LoadEndAddr-a.LoadAddr) > uint64(len(img)) {
			return nil, perrorf(at, "load_end_addr", ErrTruncated, "%#x", a.LoadEndAddr)
		}
		fileEnd = fileStart + uint64(a.LoadEndAddr-a.LoadAddr)
	}
	data := img[fileStart:fileEnd]
	memsz := uint64(len(data))
	if a.BSSEndAddr != 0 {
		if uint64(a.BSSEndAddr) < uint64(a.LoadAddr)+memsz {
			return nil, perrorf(at, "bss_end_addr", ErrBad, "%#x", a.BSSEndAddr)
		}
		memsz = uint64(a.BSSEndAddr - a.LoadAddr)
	}
	if memsz > MaxInflatedSize || uint64(a.LoadAddr) < 1<<20 || uint64(a.LoadAddr)+memsz > limit4G {
		return nil, perrorf(at, "load_addr", ErrBad, "%#x+%#x", a.LoadAddr, memsz)
	}
	return []LoadSegment{{Addr: uint64(a.LoadAddr), Data: data, MemSize: memsz}}, nil
}

// mbiBuilder writes the boot information (3.6): a fixed part, then 8-byte
// aligned tags ending with the end tag.
type mbiBuilder struct{ buf []byte }

func (b *mbiBuilder) tag(typ uint32, body []byte) {
	le := binary.LittleEndian
	b.buf = le.AppendUint32(b.buf, typ)
	b.buf = le.AppendUint32(b.buf, uint32(8+len(body)))
	b.buf = append(b.buf, body...)
	for len(b.buf)%8 != 0 {
		b.buf = append(b.buf, 0)
	}
}

func cstring(s string) []byte { return append([]byte(s), 0) }

func (b *mbiBuilder) build(cmdline string, plat Platform, modules func(add func(start, end uint32, cmdline string))) {
	le := binary.LittleEndian
	b.buf = make([]byte, 8) // total_size, reserved
	b.tag(mbiCmdline, cstring(cmdline))
	b.tag(mbiLoaderName, cstring(LoaderName))
	modules(func(start, end uint32, c string) {
		body := le.AppendUint32(nil, start)
		body = le.AppendUint32(body, end)
		b.tag(mbiModule, append(body, cstring(c)...))
	})
	lower, upper := basicMem(plat.MemoryMap)
	b.tag(mbiBasicMem, le.AppendUint32(le.AppendUint32(nil, lower), upper))
	mm := le.AppendUint32(nil, 24) // entry_size
	mm = le.AppendUint32(mm, 0)    // entry_version
	for _, r := range plat.MemoryMap {
		mm = le.AppendUint64(mm, r.Start)
		mm = le.AppendUint64(mm, r.Size)
		mm = le.AppendUint32(mm, r.Type)
		mm = le.AppendUint32(mm, 0)
	}
	b.tag(mbiMmap, mm)
	if fb := plat.Framebuffer; fb != nil {
		body := le.AppendUint64(nil, fb.Addr)
		body = le.AppendUint32(body, fb.Pitch)
		body = le.AppendUint32(body, fb.Width)
		body = le.AppendUint32(body, fb.Height)
		body = append(body, fb.BPP, 1, 0, 0) // type 1: direct RGB; reserved u16
		body = append(body, fb.RedPos, fb.RedSize, fb.GreenPos, fb.GreenSize, fb.BluePos, fb.BlueSize)
		b.tag(mbiFramebuffer, body)
	}
	if plat.RSDPv1 != nil {
		b.tag(mbiACPIOld, plat.RSDPv1)
	}
	if plat.RSDPv2 != nil {
		b.tag(mbiACPINew, plat.RSDPv2)
	}
	b.tag(mbiEnd, nil)
	le.PutUint32(b.buf, uint32(len(b.buf)))
}

// basicMem returns KiB of RAM below 640 KiB from 0 and contiguous from 1 MiB
// (3.6.8 "Basic memory information").
func basicMem(mm []MemRange) (lower, upper uint32) {
	for _, r := range mm {
		if r.Type != MemAvailable {
			continue
		}
		if r.Start == 0 {
			lower = uint32(min(r.Size, 640<<10) >> 10)
		}
		if r.Start <= 1<<20 && r.Start+r.Size > 1<<20 {
			upper = uint32(min(r.Start+r.Size-(1<<20), limit4G-1) >> 10)
		}
	}
	return lower, upper
}
