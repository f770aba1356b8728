package rom

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/glint-boot/glint/internal/physmem"
)

// Image is a firmware image with its flash map.
type Image struct {
	// Data is the whole image. Files and areas returned by this package
	// alias it.
	Data []byte
	// FMAP is coreboot's flash map; nil for an image without one (vendor
	// firmware, a descriptor-only file).
	FMAP *FMAP
	// Descriptor is the Intel Flash Descriptor of a full-chip image; nil
	// for images of the BIOS region alone and for non-Intel boards.
	Descriptor *Descriptor
	// Source says where the image came from.
	Source string
}

// FromBytes parses an image held in memory: a coreboot image with a flash
// map, with or without an Intel Flash Descriptor in front (a full-chip
// image), or a full-chip image without a flash map (vendor firmware, whose
// descriptor and ME glint can still report).
func FromBytes(untrusted []byte) (*Image, error) {
	if len(untrusted) > MaxImageSize {
		return nil, errorf(0, "image", ErrTooLarge, "%d bytes, limit %d", len(untrusted), MaxImageSize)
	}
	img := &Image{Data: untrusted}
	if _, ok := FindDescriptor(untrusted); ok {
		d, err := ParseDescriptor(untrusted)
		if err != nil {
			return nil, err
		}
		img.Descriptor = d
	}
	f, err := FindFMAP(untrusted)
	if err != nil {
		if img.Descriptor != nil && errors.Is(err, ErrNotFound) {
			return img, nil
		}
		return nil, err
	}
	if uint64(f.Size) != uint64(len(untrusted)) {
		return nil, errorf(f.Offset+18, "fmap.size", ErrFormat, "the flash map describes %d bytes, the image has %d", f.Size, len(untrusted))
	}
	img.FMAP = f
	return img, nil
}

// FromFile reads an image file (a ROM built by coreboot or read by flashrom).
func FromFile(path string) (*Image, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > MaxImageSize {
		return nil, fmt.Errorf("%s: %d bytes is larger than any flash chip glint knows (%d): is this a firmware image?", path, st.Size(), MaxImageSize)
	}
	b, err := io.ReadAll(io.LimitReader(fh, MaxImageSize+1))
	if err != nil {
		return nil, err
	}
	img, err := FromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	img.Source = path
	return img, nil
}

// flashSizes are tried largest first: on x86 the SPI flash (or its BIOS
// region) is memory-mapped so that it ends at 4 GiB.
var flashSizes = []int64{16 << 20, 8 << 20, 4 << 20, 2 << 20, 1 << 20}

// FromMemory reads the flash as the chipset maps it below 4 GiB, from mem
// (the physical address space: /dev/mem, or a test's ReaderAt). The size is
// found by reading the largest window and accepting the FMAP whose size
// matches the window it was found in.
//
// On boards with an Intel descriptor only the BIOS region is mapped (its
// end at 4 GiB), while coreboot's flash map describes the whole chip: a
// ThinkPad X230's 12 MiB with a 7 MiB BIOS region. Then the image is
// rebuilt at its full size with the mapped BIOS region in place and 0xff
// where the descriptor, ME and GbE regions are (they cannot be read from
// here).
func FromMemory(mem io.ReaderAt) (*Image, error) {
	var errs []error
	var largest []byte
	for _, size := range flashSizes {
		buf := make([]byte, size)
		n, err := mem.ReadAt(buf, (1<<32)-size)
		if int64(n) != size {
			errs = append(errs, fmt.Errorf("%d MiB window: read %d bytes: %v", size>>20, n, err))
			continue
		}
		if largest == nil {
			largest = buf
		}
		img, err := FromBytes(buf)
		if err != nil {
			errs = append(errs, fmt.Errorf("%d MiB window: %w", size>>20, err))
			continue
		}
		img.Source = fmt.Sprintf("flash mapped at 0x%x", (1<<32)-size)
		return img, nil
	}
	if largest != nil {
		img, err := fromBIOSWindow(largest)
		if err == nil {
			img.Source = fmt.Sprintf("BIOS region mapped below 4 GiB (%d KiB of a %d KiB chip)", len(largest)>>10, len(img.Data)>>10)
			return img, nil
		}
		errs = append(errs, fmt.Errorf("as a BIOS region of a larger chip: %w", err))
	}
	return nil, fmt.Errorf("rom: no coreboot image with a flash map below 4 GiB: %w", errors.Join(errs...))
}

// fromBIOSWindow rebuilds a full-chip image from a window whose top maps
// the top of the chip (its BIOS region). The flash map must say so: its
// FMAP area must be where the window puts it, and SI_BIOS (if named) must
// end at the end of the chip. Only the BIOS region is taken from the
// window; the rest of the image is 0xff.
func fromBIOSWindow(window []byte) (*Image, error) {
	f, err := FindFMAP(window)
	if err != nil {
		return nil, err
	}
	size, w := int64(f.Size), int64(len(window))
	if size > MaxImageSize || size == 0 {
		return nil, errorf(f.Offset+18, "fmap.size", ErrFormat, "the flash map describes %d bytes", size)
	}
	at := size - w // flash offset of the window's first byte (negative: the window is larger)
	if a, ok := f.Area("FMAP"); !ok || int64(a.Offset) != at+f.Offset {
		return nil, errorf(f.Offset, "fmap", ErrFormat, "the flash map is not where a BIOS region at the top of a %d-byte chip puts it", size)
	}
	start := max(at, 0)
	if bios, ok := f.Area("SI_BIOS"); ok {
		if int64(bios.Offset)+int64(bios.Size) != size {
			return nil, errorf(f.Offset, "fmap_area", ErrFormat, "SI_BIOS does not end at the top of the chip")
		}
		start = max(start, int64(bios.Offset))
	}
	img := bytes.Repeat([]byte{0xff}, int(size))
	copy(img[start:], window[start-at:])
	return FromBytes(img)
}

// FromDevMem is FromMemory on this machine's physical memory (needs root;
// on kernels with STRICT_DEVMEM it works because the flash window is not
// RAM). The window is mapped, not read: see package physmem.
func FromDevMem() (*Image, error) {
	m, err := physmem.Open()
	if err != nil {
		return nil, fmt.Errorf("rom: %w", err)
	}
	defer m.Close()
	return FromMemory(m)
}

// AreaData returns the bytes of a named FMAP area.
func (img *Image) AreaData(name string) ([]byte, error) {
	if img.FMAP == nil {
		return nil, errorf(0, "fmap", ErrNotFound, "the image has no coreboot flash map, so no area %q", name)
	}
	a, ok := img.FMAP.Area(name)
	if !ok {
		return nil, errorf(img.FMAP.Offset, "fmap", ErrNotFound, "no area %q in the flash map", name)
	}
	end := uint64(a.Offset) + uint64(a.Size)
	if end > uint64(len(img.Data)) {
		return nil, errorf(int64(a.Offset), "fmap_area", ErrTruncated, "area %q ends past the image", name)
	}
	return img.Data[a.Offset:end:end], nil
}

// CBFS lists the files of the CBFS in an FMAP area ("COREBOOT" for the
// main one; "FW_MAIN_A"/"FW_MAIN_B" on vboot images).
func (img *Image) CBFS(area string) ([]File, error) {
	b, err := img.AreaData(area)
	if err != nil {
		return nil, err
	}
	a, _ := img.FMAP.Area(area)
	return ParseCBFS(b, int64(a.Offset))
}

// File finds one file by name in an area's CBFS.
func (img *Image) File(area, name string) (*File, error) {
	files, err := img.CBFS(area)
	if err != nil {
		return nil, err
	}
	for i := range files {
		if files[i].Name == name && !files[i].Empty() {
			return &files[i], nil
		}
	}
	return nil, errorf(0, "cbfs", ErrNotFound, "no file %q in %s", name, area)
}
