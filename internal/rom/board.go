package rom

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// What board an image is for, and how it was built, from what coreboot's
// build puts into CBFS:
//
//   - "build_info" (coreboot 4.13 on): COREBOOT_VERSION, MAINBOARD_VENDOR,
//     MAINBOARD_PART_NUMBER, one "KEY: value" per line;
//   - "config": the build's Kconfig (a minimal defconfig): CONFIG_BOARD_*
//     names the board, CONFIG_TPM1/TPM2, CONFIG_TPM_MEASURED_BOOT,
//     CONFIG_COREBOOT_ROMSIZE_KB_*, the payload and its command line.
//
// glint uses it to refuse flashing an image built for another board (wrong
// GPIOs or memory init brick a laptop), to know which TPM an image measures
// for, and to show the owner what they are about to flash.

// MaxConfigFile bounds the build_info and config files glint reads.
const MaxConfigFile = 1 << 20

// ErrNoBoard: the image carries no board identity (vendor firmware, or a
// coreboot image without build_info and config).
var ErrNoBoard = errors.New("no board identity in the image")

// Board is the mainboard an image was built for.
type Board struct {
	Vendor string // "LENOVO", "Emulation"
	Part   string // "ThinkPad X230", "QEMU x86 q35/ich9"
	// Kconfig is the board's Kconfig symbol without CONFIG_ ("BOARD_LENOVO_X230"),
	// when the config file names one.
	Kconfig string
}

func (b Board) String() string {
	switch {
	case b.Vendor != "" || b.Part != "":
		return strings.TrimSpace(b.Vendor + " " + b.Part)
	case b.Kconfig != "":
		return b.Kconfig
	}
	return "unknown board"
}

// Same reports whether two images are for the same board: vendor and part
// when both images name them, else the Kconfig board symbol.
func (b Board) Same(o Board) bool {
	if b.Vendor != "" && b.Part != "" && o.Vendor != "" && o.Part != "" {
		return b.Vendor == o.Vendor && b.Part == o.Part
	}
	return b.Kconfig != "" && b.Kconfig == o.Kconfig
}

// Build is what glint knows about how an image was built.
type Build struct {
	Board           Board
	CorebootVersion string
	// ROMSize is the flash size the build was configured for (0 if the
	// config does not say).
	ROMSize int64
	// TPM is the TPM family the image measures for (0 when the config has
	// neither CONFIG_TPM1 nor CONFIG_TPM2); MeasuredBoot is
	// CONFIG_TPM_MEASURED_BOOT.
	TPM          int // 12 or 20, as tpm.Version
	MeasuredBoot bool
	// RuntimeData is CONFIG_TPM_MEASURED_BOOT_RUNTIME_DATA: CBFS files
	// coreboot measures into PCR 3 instead of 2.
	RuntimeData []string
	// VBoot and CBFSVerification: the image verifies itself (vboot RW
	// slots, CBFS metadata hashes).
	VBoot, CBFSVerification bool
	Payload                 string // "Linux", "SeaBIOS", ... from CONFIG_PAYLOAD_*
	Cmdline                 string // CONFIG_LINUX_COMMAND_LINE
	// Config is every CONFIG_ setting of the config file, values unquoted.
	Config map[string]string
}

// Identify reads the build information of img. It returns ErrNoBoard when
// the image names no board.
func Identify(img *Image) (*Build, error) {
	b := &Build{Config: map[string]string{}}
	if data, err := smallFile(img, "config"); err == nil {
		b.Config = parseKconfig(data)
	}
	if data, err := smallFile(img, "build_info"); err == nil {
		info := parseKeyValues(data)
		b.Board.Vendor = info["MAINBOARD_VENDOR"]
		b.Board.Part = info["MAINBOARD_PART_NUMBER"]
		b.CorebootVersion = info["COREBOOT_VERSION"]
	}
	c := b.Config
	if b.Board.Vendor == "" && b.Board.Part == "" {
		b.Board.Vendor, b.Board.Part = c["CONFIG_MAINBOARD_VENDOR"], c["CONFIG_MAINBOARD_PART_NUMBER"]
	}
	for k, v := range c {
		sym := strings.TrimPrefix(k, "CONFIG_")
		switch {
		case v == "y" && strings.HasPrefix(sym, "BOARD_") && !strings.HasPrefix(sym, "BOARD_ROMSIZE") &&
			!strings.HasPrefix(sym, "BOARD_HAS") && !strings.HasPrefix(sym, "BOARD_SPECIFIC"):
			if b.Board.Kconfig == "" || sym < b.Board.Kconfig {
				b.Board.Kconfig = sym
			}
		case v == "y" && strings.HasPrefix(sym, "COREBOOT_ROMSIZE_KB_"):
			if kb, err := strconv.ParseInt(strings.TrimPrefix(sym, "COREBOOT_ROMSIZE_KB_"), 10, 32); err == nil {
				b.ROMSize = kb << 10
			}
		case v == "y" && strings.HasPrefix(sym, "PAYLOAD_") && sym != "PAYLOAD_NONE" && !strings.Contains(sym, "_OPTIONS"):
			b.Payload = payloadNames[sym]
		}
	}
	switch {
	case c["CONFIG_TPM2"] == "y":
		b.TPM = 20
	case c["CONFIG_TPM1"] == "y":
		b.TPM = 12
	}
	b.MeasuredBoot = c["CONFIG_TPM_MEASURED_BOOT"] == "y"
	if s := c["CONFIG_TPM_MEASURED_BOOT_RUNTIME_DATA"]; s != "" {
		b.RuntimeData = strings.Fields(s)
	}
	b.VBoot = c["CONFIG_VBOOT"] == "y"
	b.CBFSVerification = c["CONFIG_CBFS_VERIFICATION"] == "y"
	b.Cmdline = c["CONFIG_LINUX_COMMAND_LINE"]
	if b.Board == (Board{}) {
		return b, ErrNoBoard
	}
	return b, nil
}

var payloadNames = map[string]string{
	"PAYLOAD_LINUX": "Linux", "PAYLOAD_SEABIOS": "SeaBIOS", "PAYLOAD_TIANOCORE": "TianoCore",
	"PAYLOAD_GRUB2": "GRUB2", "PAYLOAD_ELF": "ELF", "PAYLOAD_LINUXBOOT": "LinuxBoot",
	"PAYLOAD_DEPTHCHARGE": "Depthcharge", "PAYLOAD_FILO": "FILO",
}

// smallFile reads a small CBFS file from the COREBOOT area.
func smallFile(img *Image, name string) ([]byte, error) {
	f, err := img.File("COREBOOT", name)
	if err != nil {
		return nil, err
	}
	if f.DecompressedSize > MaxConfigFile || len(f.Data) > MaxConfigFile {
		return nil, errorf(f.Offset, "cbfs", ErrTooLarge, "%s is larger than %d bytes", name, MaxConfigFile)
	}
	return f.Contents()
}

// parseKeyValues reads "KEY: value" lines (build_info).
func parseKeyValues(data []byte) map[string]string {
	out := map[string]string{}
	s := bufio.NewScanner(bytes.NewReader(data))
	s.Buffer(nil, 4096)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), ":"); ok {
			out[strings.TrimSpace(k)] = cName([]byte(strings.TrimSpace(v)))
		}
	}
	return out
}

// parseKconfig reads CONFIG_X=value lines; quoted strings are unquoted
// (Kconfig escapes only \" and \\).
func parseKconfig(data []byte) map[string]string {
	out := map[string]string{}
	s := bufio.NewScanner(bytes.NewReader(data))
	s.Buffer(nil, 4096)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		k, v, ok := strings.Cut(line, "=")
		if !ok || !strings.HasPrefix(k, "CONFIG_") {
			continue
		}
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(v[1 : len(v)-1])
		}
		out[k] = cName([]byte(v))
	}
	return out
}

// MismatchError says why an image does not fit the machine it would be
// flashed onto.
type MismatchError struct {
	Field        string // "board", "image size", "BIOS region", ...
	Current, New string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("the %s differs: the chip holds %s, the new image has %s", e.Field, e.Current, e.New)
}

// CheckUpdate says whether next may replace current (the image the chip
// holds, read whole): same size, same board, and, when the chip has a
// descriptor, a new image whose descriptor (if any) has the same regions
// and whose BIOS region holds a coreboot image fitting that region (internal
// flashing writes the BIOS region only, so a new image that expects
// another layout would be cut). It returns nil or *MismatchError / an error
// saying what is missing.
func CheckUpdate(current, next *Image) error {
	if len(current.Data) != len(next.Data) {
		return &MismatchError{"image size", fmt.Sprintf("%d bytes", len(current.Data)), fmt.Sprintf("%d bytes", len(next.Data))}
	}
	nb, err := Identify(next)
	if err != nil {
		return fmt.Errorf("the new image: %w", err)
	}
	cb, err := Identify(current)
	if err != nil {
		return fmt.Errorf("the chip's firmware: %w (not coreboot? a first installation over vendor firmware cannot be checked)", err)
	}
	if !cb.Board.Same(nb.Board) {
		return &MismatchError{"board", cb.Board.String(), nb.Board.String()}
	}
	if cb.TPM != 0 && nb.TPM != 0 && cb.TPM != nb.TPM {
		// A build for the other TPM family measures nothing on this one.
		return &MismatchError{"TPM family the build measures for", tpmName(cb.TPM), tpmName(nb.TPM)}
	}
	if cd, nd := current.Descriptor, next.Descriptor; cd != nil {
		if nd != nil {
			for i, r := range cd.Regions {
				if i < len(nd.Regions) && (r.Base != nd.Regions[i].Base || r.Limit != nd.Regions[i].Limit) {
					return &MismatchError{r.ID.String() + " region", r.String(), nd.Regions[i].String()}
				}
			}
		}
		if next.FMAP != nil {
			bios, _ := cd.Region(RegionBIOS)
			if a, ok := next.FMAP.Area("SI_BIOS"); ok && (int64(a.Offset) != int64(bios.Base) || int64(a.Size) != bios.Size()) {
				return &MismatchError{"BIOS region", bios.String(), fmt.Sprintf("coreboot built for SI_BIOS 0x%x+0x%x", a.Offset, a.Size)}
			}
		}
	}
	return nil
}

// BIOSRegion is the span internal flashing writes: the descriptor's BIOS
// region, or the whole image when it has no descriptor.
func (img *Image) BIOSRegion() (offset, size int64) {
	if img.Descriptor != nil {
		if r, ok := img.Descriptor.Region(RegionBIOS); ok && r.Used() && int64(r.Limit) < int64(len(img.Data)) {
			return int64(r.Base), r.Size()
		}
	}
	return 0, int64(len(img.Data))
}

func tpmName(v int) string {
	switch v {
	case 20:
		return "TPM 2.0"
	case 12:
		return "TPM 1.2"
	}
	return "no TPM"
}
