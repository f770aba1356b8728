package chipset

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Live names where ReadLive finds the machine: a sysfs root (normally "/") and the physical
// memory device. Tests point both at files.
type Live struct {
	Root string // prefix for /sys
	Mem  string // /dev/mem
}

// System is the running machine.
var System = Live{Root: "/", Mem: "/dev/mem"}

// ErrNotRoot means the PCI configuration space past the first 64 bytes was refused: Linux
// shows it to root only.
var ErrNotRoot = errors.New("only root can read the chipset registers")

// ReadLive takes a Dump of the running machine: the configuration spaces of the host bridge,
// the ME interface and the LPC bridge from sysfs, and the SPI register window through
// /dev/mem when RCBA is enabled on a chipset glint knows. Functions that do not exist are left
// out; an SPI window that cannot be mapped leaves SPI nil (Decode then says why).
func (l Live) ReadLive() (*Dump, error) {
	d := &Dump{Source: "live", PCI: map[string][]byte{}}
	for _, fn := range []string{HostBridge, MEI, LPC} {
		cfg, err := l.readConfig(fn)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		d.PCI[fn] = cfg
	}
	lpc, ok := d.PCI[LPC]
	if !ok {
		return d, nil
	}
	if _, known := lookup(binary.LittleEndian.Uint16(lpc), binary.LittleEndian.Uint16(lpc[2:])); !known {
		return d, nil // never poke MMIO on a chipset whose layout glint does not know
	}
	rcba := binary.LittleEndian.Uint32(lpc[regRCBA:])
	if rcba&rcbaEnable == 0 {
		return d, nil
	}
	base := rcba&rcbaMask + spiBarInRCB
	win, err := readMMIO(l.Mem, int64(base), SPIWindow)
	if err != nil {
		return d, nil // Decode says "not read"; the PCI part is still worth judging
	}
	d.SPIBase, d.SPI = base, win
	return d, nil
}

// readConfig reads the first ConfigSize bytes of a bus-0 function's configuration space.
func (l Live) readConfig(fn string) ([]byte, error) {
	p := filepath.Join(l.Root, "sys/bus/pci/devices", "0000:"+fn, "config")
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, ConfigSize)
	n, err := io.ReadFull(f, buf)
	switch {
	case err == nil:
		return buf, nil
	case n == 64 || n == 0 && errors.Is(err, io.EOF):
		return nil, fmt.Errorf("%s: %w (Linux shows unprivileged users only the first 64 bytes)", p, ErrNotRoot)
	}
	return nil, fmt.Errorf("%s: read %d of %d bytes: %w", p, n, ConfigSize, err)
}

// KernelSPI is what Linux's SPI controller driver (spi-intel, 6.13 and later) says in sysfs.
type KernelSPI struct {
	Path string
	// Locked is intel_spi_locked: HSFS.FLOCKDN as the driver read it at probe time.
	Locked bool
}

// ReadKernelSPI looks for the spi-intel driver's sysfs attributes. Only intel_spi_locked is
// used: intel_spi_protected and intel_spi_bios_locked describe the driver's own write policy
// (they are set whenever the driver was loaded without writeable=1), not the chipset's.
func (l Live) ReadKernelSPI() (*KernelSPI, bool) {
	for _, bus := range []string{"platform", "pci"} {
		matches, _ := filepath.Glob(filepath.Join(l.Root, "sys/bus", bus, "devices/*/intel_spi_locked"))
		for _, m := range matches {
			b, err := os.ReadFile(m)
			if err != nil {
				continue
			}
			switch strings.TrimSpace(string(b)) {
			case "1":
				return &KernelSPI{Path: m, Locked: true}, true
			case "0":
				return &KernelSPI{Path: m, Locked: false}, true
			}
		}
	}
	return nil, false
}
