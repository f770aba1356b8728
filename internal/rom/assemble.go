package rom

import (
	"bytes"
	"errors"
	"fmt"
)

// Assembling a full-chip image for external flashing: the owner's own
// descriptor, ME and GbE regions (from the backup of their chip: the GbE
// region holds the laptop's MAC address, the ME its firmware) with a new
// coreboot build in the BIOS region. scripts/build-board.sh builds coreboot
// for a whole ThinkPad chip with 0xff outside the BIOS region; internal
// updates write only that region, but a first installation with a clip, or
// a "maximized" layout, needs the whole chip.

// Assemble returns a copy of full (a full-chip image with a descriptor,
// usually the owner's backup) whose BIOS region is replaced by coreboot's:
// bios is a whole-chip image of the same size, as coreboot builds for
// boards with a descriptor (only its BIOS region is used; anything but 0xff
// outside it must equal full). It must be laid out for full's descriptor:
// its SI_BIOS area (when its flash map names one) must be the descriptor's
// BIOS region, and the flash map must agree with the descriptor.
func Assemble(full, bios *Image) (*Image, error) {
	d := full.Descriptor
	if d == nil {
		return nil, errors.New("rom: assemble: the full image has no flash descriptor (use a backup of the whole chip)")
	}
	r, ok := d.Region(RegionBIOS)
	if !ok || !r.Used() || int64(r.Limit) >= int64(len(full.Data)) {
		return nil, errors.New("rom: assemble: the descriptor has no BIOS region inside the image")
	}
	if bios.FMAP == nil {
		return nil, errors.New("rom: assemble: the BIOS image has no coreboot flash map")
	}
	if len(bios.Data) != len(full.Data) {
		return nil, &MismatchError{Field: "image size", Current: fmt.Sprintf("%d bytes", len(full.Data)), New: fmt.Sprintf("%d bytes", len(bios.Data))}
	}
	if a, ok := bios.FMAP.Area("SI_BIOS"); ok && (int64(a.Offset) != int64(r.Base) || int64(a.Size) != r.Size()) {
		return nil, &MismatchError{Field: "BIOS region", Current: r.String(), New: fmt.Sprintf("coreboot built for SI_BIOS 0x%x+0x%x", a.Offset, a.Size)}
	}
	for _, span := range [][2]int64{{0, int64(r.Base)}, {int64(r.Limit) + 1, int64(len(full.Data))}} {
		outside := bios.Data[span[0]:span[1]]
		if !erased(outside) && !bytes.Equal(outside, full.Data[span[0]:span[1]]) {
			return nil, fmt.Errorf("rom: assemble: the coreboot image holds data outside the descriptor's BIOS region 0x%x-0x%x (its own descriptor or ME?): build it for this layout, or flash it whole", r.Base, r.Limit)
		}
	}
	out := bytes.Clone(full.Data)
	copy(out[r.Base:], bios.Data[r.Base:int64(r.Limit)+1])
	img, err := FromBytes(out)
	if err != nil {
		return nil, fmt.Errorf("rom: assemble: the result does not parse: %w", err)
	}
	if img.FMAP == nil {
		return nil, errors.New("rom: assemble: the result has no coreboot flash map")
	}
	if probs := CheckFMAPAgainstDescriptor(img.FMAP, img.Descriptor); len(probs) > 0 {
		return nil, &MismatchError{Field: "layout", Current: "the descriptor's regions", New: probs[0]}
	}
	img.Source = "assembled"
	return img, nil
}
