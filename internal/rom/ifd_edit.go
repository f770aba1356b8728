package rom

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Descriptor edits. Each function takes a whole flash image, leaves it
// untouched and returns a new one (or an error and nothing), so a caller can
// never end up with half an edit. They do what `ifdtool` does, byte for byte
// where ifdtool's result is sound (the tests compare): -n (new layout), -l
// (lock), -u (unlock), -M (ME disable strap). Where ifdtool would lose data
// or change the image size, these refuse instead.

// ErrDataLoss is returned when an edit would drop firmware bytes.
var ErrDataLoss = errors.New("would discard data")

// RegionSpan is where a region should lie: Base is 4 KiB aligned, Limit is
// its last byte (ends in 0xfff). Limit < Base marks a region unused.
type RegionSpan struct{ Base, Limit uint32 }

// Size is the span's length in bytes (0 if unused).
func (s RegionSpan) Size() int64 {
	if s.Limit < s.Base {
		return 0
	}
	return int64(s.Limit) - int64(s.Base) + 1
}

// encodeRegion is ifdtool's set_region: 15-bit fields on both versions.
func encodeRegion(s RegionSpan) uint32 {
	return ((s.Limit>>12)&0x7fff)<<16 | (s.Base>>12)&0x7fff
}

// parseForEdit parses image's descriptor and refuses images whose region
// table does not fit the image: an edit must start from a sane table. A
// 4 KiB image is a descriptor on its own (the blob coreboot's build takes
// with CONFIG_IFD_BIN_PATH): its regions are checked against the flash
// size it declares instead.
func parseForEdit(image []byte) (*Descriptor, error) {
	d, err := ParseDescriptor(image)
	if err != nil {
		return nil, err
	}
	if err := d.checkSections(); err != nil {
		return nil, err
	}
	size := flashExtent(d, image)
	for _, r := range d.Regions {
		if r.Used() && int64(r.Limit) >= size {
			return nil, fmt.Errorf("rom: the %s region (0x%x-0x%x) ends past the %d-byte flash: refusing to edit a descriptor that does not match its image", r.ID, r.Base, r.Limit, size)
		}
	}
	return d, nil
}

// checkSections refuses a descriptor whose sections overlap each other or
// its header: writing one would then overwrite another (a crafted FMBA
// pointing at the signature, say).
func (d *Descriptor) checkSections() error {
	nm := 3
	if d.Version == IFDv2 {
		nm = 5
	}
	type span struct {
		name     string
		from, to int64
	}
	spans := []span{
		{"header", d.Offset, d.Offset + 16},
		{"FCBA", d.FCBA, d.FCBA + 12},
		{"FRBA", d.FRBA, d.FRBA + 4*int64(len(d.Regions))},
		{"FMBA", d.FMBA, d.FMBA + 4*int64(nm)},
		{"FPSBA", d.FPSBA, d.FPSBA + 4*int64(len(d.PCHStraps))},
	}
	for i, a := range spans {
		for _, b := range spans[i+1:] {
			if a.from < b.to && b.from < a.to {
				return errorf(a.from, "ifd", ErrFormat, "the %s and %s sections overlap: refusing to edit this descriptor", a.name, b.name)
			}
		}
	}
	return nil
}

// flashExtent is the size the regions must fit: the image, or for a
// descriptor on its own the flash it declares.
func flashExtent(d *Descriptor, image []byte) int64 {
	if len(image) == descriptorSize {
		if fs := d.FlashSize(); fs > 0 {
			return fs
		}
		return MaxImageSize
	}
	return int64(len(image))
}

// Relayout moves regions to new places (ifdtool -n): the descriptor's
// region table is rewritten and each region's contents are copied to its
// new place. A region that grows keeps its contents at its start, except
// BIOS, whose contents stay at the top (the reset vector is at the end of
// the BIOS region). A region that shrinks keeps its start (BIOS: its top).
// Regions not in changes stay where they are.
//
// Unlike ifdtool, Relayout keeps the image size (ifdtool rounds it up to a
// power of two, turning a 12 MiB ThinkPad image into 16 MiB), refuses to
// cut off bytes that are not erased (0xff), and refuses to move the
// descriptor itself.
func Relayout(image []byte, changes map[RegionID]RegionSpan) ([]byte, error) {
	d, err := parseForEdit(image)
	if err != nil {
		return nil, err
	}
	maxAddr := uint32(ifdV1BaseMask)<<12 | 0xfff
	if d.Version == IFDv2 {
		maxAddr = uint32(ifdV2BaseMask)<<12 | 0xfff
	}
	newSpans := make([]RegionSpan, len(d.Regions))
	for i, r := range d.Regions {
		newSpans[i] = RegionSpan{r.Base, r.Limit}
	}
	for id, s := range changes {
		if id < 0 || int(id) >= len(d.Regions) {
			return nil, fmt.Errorf("rom: relayout: the IFD v%d descriptor has no region %d", d.Version, int(id))
		}
		if id == RegionDescriptor && (s.Base != d.Regions[0].Base || s.Limit != d.Regions[0].Limit) {
			return nil, errors.New("rom: relayout: the flash descriptor region cannot move")
		}
		if s.Size() > 0 {
			if s.Base%0x1000 != 0 || s.Limit%0x1000 != 0xfff {
				return nil, fmt.Errorf("rom: relayout: %s 0x%x-0x%x: regions start on a 4 KiB boundary and end on one (limit ...fff)", id, s.Base, s.Limit)
			}
			if s.Limit > maxAddr {
				return nil, fmt.Errorf("rom: relayout: %s ends at 0x%x, past what an IFD v%d descriptor can address (0x%x)", id, s.Limit, d.Version, maxAddr)
			}
			if int64(s.Limit) >= flashExtent(d, image) {
				return nil, fmt.Errorf("rom: relayout: %s ends at 0x%x, past the %d-byte flash (glint does not change the image size)", id, s.Limit, flashExtent(d, image))
			}
		}
		newSpans[id] = s
	}
	for i := range newSpans {
		for j := i + 1; j < len(newSpans); j++ {
			a, b := newSpans[i], newSpans[j]
			if a.Size() > 0 && b.Size() > 0 && a.Base <= b.Limit && b.Base <= a.Limit {
				return nil, fmt.Errorf("rom: relayout: regions %s and %s would overlap", RegionID(i), RegionID(j))
			}
		}
	}

	out := bytes.Repeat([]byte{0xff}, len(image))
	descOnly := len(image) == descriptorSize
	if descOnly {
		copy(out, image)
	}
	for i, cur := range d.Regions {
		if descOnly {
			break
		}
		nw := newSpans[i]
		if nw.Size() == 0 || !cur.Used() {
			continue
		}
		copySize := min(nw.Size(), cur.Size())
		var fromOff, toOff int64
		if nw.Size() > cur.Size() && RegionID(i) == RegionBIOS {
			toOff = nw.Size() - cur.Size()
		}
		if nw.Size() < cur.Size() && RegionID(i) == RegionBIOS {
			fromOff = cur.Size() - nw.Size()
		}
		old := image[int64(cur.Base) : int64(cur.Limit)+1]
		kept := old[fromOff : fromOff+copySize]
		if dropped := len(old) - len(kept); dropped > 0 {
			lost := append(append([]byte(nil), old[:fromOff]...), old[fromOff+copySize:]...)
			if !erased(lost) {
				hint := ""
				if RegionID(i) == RegionME {
					hint = " (neuter and truncate the ME first, e.g. me_cleaner -S -r -t; glint rom inspect shows how much of the region it then uses)"
				}
				return nil, fmt.Errorf("rom: relayout: %s shrinks from %d to %d KiB and the %d bytes it would lose are not erased%s: %w", RegionID(i), cur.Size()>>10, nw.Size()>>10, dropped, hint, ErrDataLoss)
			}
		}
		copy(out[int64(nw.Base)+toOff:], kept)
	}
	// ifdtool rewrites every FLREG after the first with set_region's 15-bit
	// encoding; so does glint, for identical bytes.
	for i := 1; i < len(newSpans); i++ {
		binary.LittleEndian.PutUint32(out[d.FRBA+4*int64(i):], encodeRegion(newSpans[i]))
	}
	return checkEdit(out)
}

func erased(b []byte) bool {
	for _, c := range b {
		if c != 0xff {
			return false
		}
	}
	return true
}

// MaxLayoutSize bounds a layout file: a few lines per region.
const MaxLayoutSize = 64 << 10

// ParseFlashromLayout reads a flashrom/ifdtool layout file ("00003000:004fffff
// me" per line) into region spans. Lines naming a region the descriptor
// format does not know are an error, not skipped: a typo must not leave a
// region where it was.
func ParseFlashromLayout(untrusted []byte) (map[RegionID]RegionSpan, error) {
	if len(untrusted) > MaxLayoutSize {
		return nil, fmt.Errorf("rom: layout file of %d bytes is larger than %d", len(untrusted), MaxLayoutSize)
	}
	out := map[RegionID]RegionSpan{}
	s := bufio.NewScanner(bytes.NewReader(untrusted))
	n := 0
	for s.Scan() {
		n++
		line := strings.TrimSpace(s.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("rom: layout line %d: %q is not \"base:limit name\"", n, line)
		}
		id, ok := RegionByName(f[1])
		if !ok {
			return nil, fmt.Errorf("rom: layout line %d: unknown region %q (fd, bios, me, gbe, pd, ec)", n, f[1])
		}
		b, l, ok := strings.Cut(f[0], ":")
		base, err1 := strconv.ParseUint(b, 16, 32)
		limit, err2 := strconv.ParseUint(l, 16, 32)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("rom: layout line %d: %q is not two hex addresses base:limit", n, f[0])
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("rom: layout line %d: region %s given twice", n, id.Short())
		}
		out[id] = RegionSpan{uint32(base), uint32(limit)}
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("rom: layout: %w", err)
	}
	return out, nil
}

// editMasters applies f to a copy of image's FLMSTR registers.
func editMasters(image []byte, f func(d *Descriptor, reg []uint32)) ([]byte, error) {
	d, err := parseForEdit(image)
	if err != nil {
		return nil, err
	}
	n := 3
	if d.Version == IFDv2 {
		n = 5
	}
	reg := make([]uint32, n)
	for i := range reg {
		reg[i] = binary.LittleEndian.Uint32(image[d.FMBA+4*int64(i):])
	}
	f(d, reg)
	out := bytes.Clone(image)
	for i, v := range reg {
		binary.LittleEndian.PutUint32(out[d.FMBA+4*int64(i):], v)
	}
	return checkEdit(out)
}

// checkEdit re-reads an edited image: an edit must leave a descriptor
// that parses and can be edited again.
func checkEdit(out []byte) ([]byte, error) {
	if _, err := parseForEdit(out); err != nil {
		return nil, fmt.Errorf("rom: the edited descriptor does not parse: %w", err)
	}
	return out, nil
}

// LockDescriptor sets the master permissions ifdtool -l sets (the default
// platforms; on IFD v2 the Sky Lake to Alder Lake rules): the host CPU may
// read the descriptor and BIOS and write only BIOS (and GbE/platform data
// where present), the ME only its own region. After flashing it, internal
// updates can write the BIOS region and nothing else.
func LockDescriptor(image []byte) ([]byte, error) {
	return editMasters(image, func(d *Descriptor, reg []uint32) {
		rd, wr := uint(flmstrRdShiftV1), uint(flmstrWrShiftV1)
		if d.Version == IFDv2 {
			rd, wr = flmstrRdShiftV2, flmstrWrShiftV2
			reg[0] &= 0xff
			reg[1] &= 0xff
			reg[2] &= 0xff
			reg[4] &= 0xff
		} else {
			reg[0], reg[1], reg[2] = 0, 0, 0x118 // GbE requester ID
		}
		bit := func(r RegionID, shift uint) uint32 { return 1 << r << shift }
		used := func(r RegionID) bool {
			x, ok := d.Region(r)
			return ok && x.Base < x.Limit && x.Size() > 0
		}
		reg[0] |= bit(RegionDescriptor, rd) | bit(RegionBIOS, rd) | bit(RegionBIOS, wr)
		reg[1] |= bit(RegionDescriptor, rd) | bit(RegionME, rd) | bit(RegionME, wr)
		if d.Version == IFDv2 {
			if used(RegionGbE) {
				reg[0] |= bit(RegionGbE, rd) | bit(RegionGbE, wr)
				reg[1] |= bit(RegionGbE, rd)
				reg[2] |= bit(RegionDescriptor, rd) | bit(RegionGbE, rd) | bit(RegionGbE, wr)
			}
			if used(RegionPlatformData) {
				reg[0] |= bit(RegionPlatformData, rd) | bit(RegionPlatformData, wr)
			}
			if used(RegionEC) {
				reg[0] |= bit(RegionEC, rd)
				reg[4] |= bit(RegionDescriptor, rd) | bit(RegionEC, rd) | bit(RegionEC, wr)
			}
			return
		}
		if used(RegionGbE) {
			reg[0] |= bit(RegionGbE, rd) | bit(RegionGbE, wr)
			reg[1] |= bit(RegionGbE, rd) | bit(RegionGbE, wr)
			reg[2] |= bit(RegionGbE, rd) | bit(RegionGbE, wr)
		}
	})
}

// UnlockDescriptor gives every master read and write access to every
// region, as ifdtool -u does (what coreboot builds for boards flashed
// externally): internal flashing can then rewrite the whole chip.
func UnlockDescriptor(image []byte) ([]byte, error) {
	return editMasters(image, func(d *Descriptor, reg []uint32) {
		if d.Version == IFDv2 {
			for _, i := range []int{0, 1, 2, 4} {
				reg[i] = 0xffffff00 | reg[i]&0xff
			}
			return
		}
		reg[0] = 0xffff0000
		reg[1] = 0xffff0000
		reg[2] = 0x08080000 | reg[2]&0xffff
	})
}

// SetMEDisable sets or clears the soft strap that asks the ME to disable
// itself after platform initialisation (ifdtool -M; me_cleaner -S): HAP on
// IFD v2, AltMeDisable on 5-9 series PCHs, the three MeDisable bits on
// ICH8-10.
func SetMEDisable(image []byte, disable bool) ([]byte, error) {
	d, err := parseForEdit(image)
	if err != nil {
		return nil, err
	}
	out := bytes.Clone(image)
	set := func(off int64, bit uint, field string) error {
		if off < 0 || off+4 > descriptorSize {
			return errorf(off, field, ErrFormat, "strap outside the descriptor")
		}
		v := binary.LittleEndian.Uint32(out[off:])
		if disable {
			v |= 1 << bit
		} else {
			v &^= 1 << bit
		}
		binary.LittleEndian.PutUint32(out[off:], v)
		return nil
	}
	if !d.MEDisable.Present {
		return nil, fmt.Errorf("rom: the descriptor has %d PCH straps, too few to hold the %s bit", len(d.PCHStraps), d.MEDisable.Name)
	}
	switch {
	case d.Version == IFDv2:
		err = set(d.FPSBA, 16, "ifd.pchstrp0")
	case d.isICH():
		if err = set(d.FMSBA, 0, "ifd.fmsba"); err == nil {
			if err = set(d.FMSBA, 7, "ifd.fmsba"); err == nil {
				err = set(d.FPSBA, 0, "ifd.pchstrp0")
			}
		}
	default:
		err = set(d.FPSBA+40, 7, "ifd.pchstrp10")
	}
	if err != nil {
		return nil, err
	}
	return checkEdit(out)
}
