// Package chipset reads and explains the Intel chipset registers that decide whether the
// firmware can be rewritten from the running system: the SPI flash controller's lock and
// protected ranges, the BIOS control register, the flash descriptor's region permissions, the
// SMRAM lock and the Management Engine's status.
//
// The threat: malware with root in the OS (or an evil maid with a USB stick and a shell)
// rewrites the flash, and the next boot measures a firmware that measures whatever it likes.
// A coreboot machine is protected when, before the OS runs, the SPI controller's protected
// ranges (PR0-PR4) cover the BIOS region with write protection and the controller's
// configuration is locked (HSFS.FLOCKDN), so neither can be undone until the next reset.
// coreboot programs the ranges early in ramstage (CONFIG_BOOTMEDIA_LOCK_CONTROLLER) and sets
// FLOCKDN in its SMM handler when the payload asks (APM_CNT_FINALIZE, 0xcb written to I/O port
// 0xb2), which is what Heads' lock_chip does before kexec and what Lock does here.
//
// Register facts come from the datasheets and are kept per chipset in tables.go:
//
//   - Intel 7 Series / C216 Chipset Family PCH datasheet (326776): LPC D31:F0 BIOS_CNTL (0xDC),
//     RCBA (0xF0); SPI registers at RCBA+0x3800 (HSFS 0x04, FRAP 0x50, FREG0-4 0x54, PR0-4
//     0x74); MEI D22:F0 HFS (0x40). The 6 Series (Cougar Point) PCH has the same layout.
//   - 3rd Gen Intel Core processor datasheet vol. 2 (326765): host bridge SMRAMC (0x88, D_LCK).
//   - Intel I/O Controller Hub 9 datasheet (316972) and 3 Series chipset (MCH) datasheet
//     (316966), which QEMU's q35 machine models: BIOS_CNTL (0xDC), RCBA (0xF0), SMRAM (0x9D).
//
// A Dump is the raw material: the PCI configuration space of the host bridge, the LPC bridge and
// the ME interface, plus the SPI register window. It is read from the live machine
// (ReadLive: sysfs and /dev/mem) or from a file in a small text format (ParseDump), so the same
// Decode runs on a laptop, in QEMU and in tests with recorded and synthetic dumps.
//
// Example:
//
//	d, err := chipset.ReadLive("/")
//	if err != nil { ... }
//	st, err := chipset.Decode(d)
//	fmt.Println(st.SPI.Locked, st.SPI.BIOSWriteProtected())
package chipset
