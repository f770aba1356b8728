package flash

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/glint-boot/glint/internal/rom"
)

// Board identifies the mainboard a coreboot image was built for, from the
// image's own CBFS: "build_info" (MAINBOARD_VENDOR / MAINBOARD_PART_NUMBER,
// written by coreboot's build since 4.13) or else the "config" file's
// CONFIG_MAINBOARD_VENDOR / CONFIG_MAINBOARD_PART_NUMBER. Writing an image
// built for another board bricks the machine (wrong GPIOs, memory init), so
// glint refuses it before anything is written.
type Board struct {
	Vendor string
	Part   string
}

func (b Board) String() string { return b.Vendor + " " + b.Part }

// ErrNoBoard: the image carries no board identity glint can read (vendor
// firmware, or a coreboot image without build_info/config).
var ErrNoBoard = errors.New("no board identity in the image")

// maxBoardField bounds a vendor or part name; real ones are under 40.
const maxBoardField = 64

// BoardOf reads the board an image was built for.
func BoardOf(img *rom.Image) (Board, error) {
	if f, err := img.File("COREBOOT", "build_info"); err == nil {
		if data, err := f.Contents(); err == nil {
			b := Board{Vendor: keyValue(data, "MAINBOARD_VENDOR: "), Part: keyValue(data, "MAINBOARD_PART_NUMBER: ")}
			if b.Vendor != "" && b.Part != "" {
				return b, nil
			}
		}
	}
	if f, err := img.File("COREBOOT", "config"); err == nil {
		if data, err := f.Contents(); err == nil {
			b := Board{Vendor: unquote(keyValue(data, "CONFIG_MAINBOARD_VENDOR=")), Part: unquote(keyValue(data, "CONFIG_MAINBOARD_PART_NUMBER="))}
			if b.Vendor != "" && b.Part != "" {
				return b, nil
			}
			// A saved defconfig names the board by its Kconfig symbol only.
			if sym := boardSymbol(data); sym != "" {
				return Board{Vendor: "Kconfig", Part: sym}, nil
			}
		}
	}
	return Board{}, ErrNoBoard
}

// BoardOfBytes is BoardOf on raw image bytes.
func BoardOfBytes(untrusted []byte) (Board, error) {
	img, err := rom.FromBytes(untrusted)
	if err != nil {
		return Board{}, fmt.Errorf("%w: %v", ErrNoBoard, err)
	}
	return BoardOf(img)
}

func keyValue(data []byte, key string) string {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), 4096)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key); ok {
			v = printable(strings.TrimSpace(v))
			if len(v) > maxBoardField {
				v = v[:maxBoardField]
			}
			return v
		}
	}
	return ""
}

func unquote(s string) string { return strings.Trim(s, `"`) }

// boardSymbol finds "CONFIG_BOARD_<VENDOR>_<BOARD>=y" in a defconfig,
// skipping the generic CONFIG_BOARD_* options that are not a board choice.
func boardSymbol(data []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), 4096)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "CONFIG_BOARD_") || !strings.HasSuffix(line, "=y") {
			continue
		}
		sym := strings.TrimSuffix(strings.TrimPrefix(line, "CONFIG_"), "=y")
		if strings.HasPrefix(sym, "BOARD_ROMSIZE") || strings.HasPrefix(sym, "BOARD_HAS") || strings.HasPrefix(sym, "BOARD_SPECIFIC") {
			continue
		}
		if len(sym) > maxBoardField {
			sym = sym[:maxBoardField]
		}
		return printable(sym)
	}
	return ""
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
