package iso9660

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"sync"
)

// Volume descriptor types, ECMA-119 8.1.1.
const (
	vdBootRecord    = 0
	vdPrimary       = 1
	vdSupplementary = 2
	vdTerminator    = 255
)

// FS is an ISO 9660 image opened for reading. It implements fs.FS,
// fs.ReadDirFS and fs.StatFS; paths are slash-separated and relative to the
// image's root ("isolinux/isolinux.cfg"), as io/fs wants.
type FS struct {
	r    io.ReaderAt
	size int64 // bytes the reader holds (the image file's size)

	// VolumeID is the primary volume identifier (distributions put the
	// label there that their boot parameters name, e.g. "Debian 12.5.0
	// amd64 n" or Fedora's "Fedora-WS-Live-41-1-4").
	VolumeID string
	// Names says which names this FS shows: "rockridge", "joliet" or
	// "iso9660".
	Names string
	// BootRecord is true when an El Torito boot record is present.
	BootRecord bool

	root      record
	rockRidge bool
	suspSkip  int // SUSP LEN_SKP from the root's SP entry
	joliet    bool

	mu     sync.Mutex
	cache  map[extent][]entry // decoded directories by extent
	cached int                // entries in cache
}

// Open reads the volume descriptors of the image r (size bytes) and picks
// the directory tree to show (see the package doc).
func Open(r io.ReaderAt, size int64) (*FS, error) {
	f := &FS{r: r, size: size}
	var primary, joliet []byte
	sawCD001 := false
	for i := 0; ; i++ {
		if i >= MaxVolumeDescriptors {
			return nil, errorf(16*SectorSize, "volume descriptor set", ErrTooLarge, "no terminator within %d descriptors", MaxVolumeDescriptors)
		}
		off := int64(16+i) * SectorSize
		vd, err := f.readAt(off, SectorSize, "volume descriptor")
		if err != nil {
			if !sawCD001 {
				return nil, errorf(off, "volume descriptor", ErrNotISO, "")
			}
			return nil, err
		}
		if string(vd[1:6]) != "CD001" {
			if !sawCD001 {
				return nil, errorf(off, "volume descriptor", ErrNotISO, "")
			}
			return nil, errorf(off, "volume descriptor", ErrMalformed, "descriptor %d has no CD001 identifier and the set has no terminator", i)
		}
		sawCD001 = true
		switch vd[0] {
		case vdTerminator:
			goto done
		case vdBootRecord:
			if strings.HasPrefix(string(vd[7:39]), "EL TORITO SPECIFICATION") {
				f.BootRecord = true
			}
		case vdPrimary:
			if primary == nil {
				primary = vd
			}
		case vdSupplementary:
			// Joliet: escape sequences in the 32 bytes at offset 88.
			esc := vd[88:120]
			if joliet == nil && (bytes.HasPrefix(esc, []byte("%/@")) || bytes.HasPrefix(esc, []byte("%/C")) || bytes.HasPrefix(esc, []byte("%/E"))) {
				joliet = vd
			}
		}
	}
done:
	if primary == nil {
		return nil, errorf(16*SectorSize, "primary volume descriptor", ErrMalformed, "none in the descriptor set")
	}
	if bs := binary.LittleEndian.Uint16(primary[128:130]); bs != SectorSize {
		return nil, errorf(16*SectorSize+128, "logical block size", ErrUnsupported, "%d (only %d is read)", bs, SectorSize)
	}
	f.VolumeID = strings.TrimRight(string(primary[40:72]), " \x00")
	root, err := parseRecord(primary[156:190], 16*SectorSize+156)
	if err != nil {
		return nil, err
	}
	if !root.dir {
		return nil, errorf(16*SectorSize+156, "root directory record", ErrMalformed, "not a directory")
	}
	f.root = root
	f.Names = "iso9660"

	// Rock Ridge: the root's "." record carries a SUSP SP entry (SUSP 5.3).
	if ok, skip, err := f.detectSUSP(); err != nil {
		return nil, err
	} else if ok {
		f.rockRidge, f.suspSkip, f.Names = true, skip, "rockridge"
		return f, nil
	}
	if joliet != nil {
		jroot, err := parseRecord(joliet[156:190], 0)
		if err == nil && jroot.dir {
			f.root, f.joliet, f.Names = jroot, true, "joliet"
		}
	}
	return f, nil
}

// readAt reads n bytes at off, refusing any range outside the image.
func (f *FS) readAt(off, n int64, field string) ([]byte, error) {
	if off < 0 || n < 0 || off > f.size || n > f.size-off {
		return nil, errorf(off, field, ErrTruncated, "%d bytes wanted, the image has %d", n, f.size)
	}
	b := make([]byte, n)
	if _, err := f.r.ReadAt(b, off); err != nil && !(errors.Is(err, io.EOF) && len(b) == int(n)) {
		return nil, &ParseError{Offset: off, Field: field, Err: err}
	}
	return b, nil
}

// extentRange checks that an extent lies inside the image and returns its
// byte offset.
func (f *FS) extentRange(lba uint32, length uint32, field, path string) (int64, error) {
	off := int64(lba) * SectorSize
	if off > f.size || int64(length) > f.size-off {
		e := errorf(off, field, ErrTruncated, "extent at block %d of %d bytes ends past the image (%d bytes)", lba, length, f.size)
		e.Path = path
		return 0, e
	}
	return off, nil
}

func (f *FS) detectSUSP() (bool, int, error) {
	off, err := f.extentRange(f.root.lba, f.root.size, "root directory", "/")
	if err != nil {
		return false, 0, err
	}
	first, err := f.readAt(off, min(int64(f.root.size), SectorSize), "root directory")
	if err != nil {
		return false, 0, err
	}
	if len(first) == 0 || int(first[0]) > len(first) || first[0] < 34 {
		return false, 0, errorf(off, "root \".\" record", ErrMalformed, "bad length")
	}
	rec := first[:first[0]]
	su := systemUse(rec)
	// SP: "SP", len 7, version 1, check bytes BE EF, LEN_SKP (SUSP 5.3).
	if !(len(su) >= 7 && su[0] == 'S' && su[1] == 'P' && su[2] == 7 && su[4] == 0xbe && su[5] == 0xef) {
		return false, 0, nil
	}
	// SUSP alone is not Rock Ridge: the root must carry an RRIP entry
	// (ER naming it, or PX/NM/RR), else Joliet names win.
	rr, err := f.parseSUSP(su, 0, off, "/")
	if err != nil {
		return false, 0, err
	}
	return rr.rrSeen, int(su[6]), nil
}
