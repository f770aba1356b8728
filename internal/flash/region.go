package flash

import (
	"fmt"

	"github.com/glint-boot/glint/internal/rom"
)

// BoardOf reads the board an image was built for (internal/rom's
// Identify: CBFS build_info, else the config's board symbol). Writing an
// image built for another board bricks the machine (wrong GPIOs, memory
// init), so glint refuses it before anything is written.
func BoardOf(untrusted []byte) (rom.Board, error) {
	img, err := rom.FromBytes(untrusted)
	if err != nil {
		return rom.Board{}, fmt.Errorf("%w: %v", rom.ErrNoBoard, err)
	}
	b, err := rom.Identify(img)
	if err != nil {
		return rom.Board{}, err
	}
	return b.Board, nil
}

// Span is a byte range of the chip.
type Span struct {
	Offset int64
	Size   int64
}

// BIOSRegionOf returns the flash descriptor's BIOS region (internal/rom's
// descriptor parser), or ok=false when the image has no descriptor (the
// whole chip is the BIOS).
func BIOSRegionOf(untrusted []byte) (span Span, ok bool, err error) {
	if _, found := rom.FindDescriptor(untrusted); !found {
		return Span{}, false, nil
	}
	d, err := rom.ParseDescriptor(untrusted)
	if err != nil {
		return Span{}, true, fmt.Errorf("flash descriptor: %w", err)
	}
	r, ok := d.Region(rom.RegionBIOS)
	if !ok || !r.Used() || int64(r.Limit) >= int64(len(untrusted)) {
		return Span{}, true, fmt.Errorf("flash descriptor: the BIOS region is unused or outside the %d-byte image", len(untrusted))
	}
	return Span{Offset: int64(r.Base), Size: r.Size()}, true, nil
}
