package chipset

import "encoding/binary"

// Synthetic 7-series dumps, built from the datasheets (not recorded from a machine): the
// register values a ThinkPad X230 (QM77 PCH 8086:1e55, Ivy Bridge host bridge 8086:0154,
// MEI 8086:1e3a) shows in the states glint must tell apart. Offsets and bits: Intel 7 Series
// PCH datasheet 326776 (BIOS_CNTL 13.1.x, SPI 21.1), 3rd Gen Core datasheet vol. 2 (SMRAMC),
// coreboot's bd82x6x/me.h for the ME status layout.

type synth struct {
	biosCntl byte
	rcba     uint32
	hsfs     uint16
	frap     uint32
	freg     [5]uint32
	pr       [5]uint32
	smramc   byte
	meHFS    uint32 // 0 = MEI function hidden
	noSPI    bool
}

// x230Stock: Lenovo's layout (descriptor 4 KiB, GbE 8 KiB, ME 5 MiB, BIOS 7 MiB at 0x500000).
var x230StockRegions = [5]uint32{
	0x00000000, // descriptor 0x0-0xfff
	0x0BFF0500, // BIOS 0x500000-0xbfffff
	0x04FF0003, // ME 0x3000-0x4fffff
	0x00020001, // GbE 0x1000-0x2fff
	0x00001FFF, // platform data: unused (base > limit)
}

// x230Maximized: Heads-style, ME shrunk to 0x3000-0x20fff, BIOS grown to 0x21000-0xbfffff.
var x230MaximizedRegions = [5]uint32{0x00000000, 0x0BFF0021, 0x00200003, 0x00020001, 0x00001FFF}

const (
	hsfsDescriptor = hsfsFDV | hsfsFDOPSS // descriptor valid, no override strap
	// coreboot's spi_flash_protect(0, 12 MiB - 1, WRITE_PROTECT): base 0, limit 0xbff, WPE.
	prWholeChip12M = 0x8BFF0000
	// FRAP of a locked descriptor: host reads descriptor, BIOS, GbE; writes BIOS and GbE.
	frapLocked = 0x00000A0B
	// FRAP after `ifdtool --unlock`: every region readable and writable by the host.
	frapUnlocked = 0x0000FFFF
	// ME 8 firmware status: full firmware running (working state normal, M0 with UMA, init done).
	hfsRunning = 0x1E000245
	// ME stopped in bring-up as me_cleaner leaves it (intelmetool: "Initializing", "Bring up",
	// init complete NO, no error).
	hfsNeutered = 0x00000181
)

// corebootPayloadBeforeLock: coreboot with CONFIG_BOOTMEDIA_LOCK_CONTROLLER programmed PR0 over
// the whole chip in ramstage; the payload has not sent the finalize SMI yet, so FLOCKDN is
// clear. D_LCK was set by coreboot's SMM setup.
func corebootPayloadBeforeLock() synth {
	return synth{biosCntl: 0x00, rcba: 0xFED1C001, hsfs: hsfsDescriptor, frap: frapLocked,
		freg: x230MaximizedRegions, pr: [5]uint32{prWholeChip12M}, smramc: 0x1A, meHFS: hfsNeutered}
}

func (s synth) dump() *Dump {
	cfg := func(vendor, device uint16) []byte {
		b := make([]byte, ConfigSize)
		binary.LittleEndian.PutUint16(b[0:], vendor)
		binary.LittleEndian.PutUint16(b[2:], device)
		return b
	}
	lpc := cfg(0x8086, 0x1E55)
	lpc[regBIOSCntl] = s.biosCntl
	binary.LittleEndian.PutUint32(lpc[regRCBA:], s.rcba)
	hb := cfg(0x8086, 0x0154)
	hb[0x88] = s.smramc
	d := &Dump{Source: "synthetic: 7-series datasheet values", PCI: map[string][]byte{LPC: lpc, HostBridge: hb}}
	if s.meHFS != 0 {
		mei := cfg(0x8086, 0x1E3A)
		binary.LittleEndian.PutUint32(mei[regMEHFS:], s.meHFS)
		d.PCI[MEI] = mei
	}
	if !s.noSPI {
		w := make([]byte, SPIWindow)
		binary.LittleEndian.PutUint16(w[spiHSFS:], s.hsfs)
		binary.LittleEndian.PutUint32(w[spiFRAP:], s.frap)
		for i, v := range s.freg {
			binary.LittleEndian.PutUint32(w[spiFREG+4*i:], v)
		}
		for i, v := range s.pr {
			binary.LittleEndian.PutUint32(w[spiPR+4*i:], v)
		}
		d.SPIBase, d.SPI = s.rcba&rcbaMask+spiBarInRCB, w
	}
	return d
}
