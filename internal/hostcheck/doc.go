// Package hostcheck judges whether this machine's platform is locked the way a measured boot
// needs: the firmware flash cannot be rewritten from the running system, SMRAM is locked, the
// Management Engine is not in a mode that opens the flash, the TPM holds the firmware's
// measurements and its log replays to them, devices cannot DMA at will, and the OS kernel keeps
// root out of its memory.
//
// It checks what fwupd's Host Security ID (HSI) and CHIPSEC check, judged the way a coreboot
// machine is built. Those tools expect a vendor BIOS: they fail a coreboot ThinkPad for a clear
// BIOS_CNTL.BLE or SMM_BWP although its protected ranges, frozen by FLOCKDN, block every write
// through the SPI controller whatever BIOS_CNTL says; and they expect PCRs 0-7 to be filled,
// where coreboot 4.15 measures itself into PCR 2 only. hostcheck accepts either protection and
// asks of each firmware only what it measures.
//
// Phase-aware: in glint's payload before it locks the flash (PhasePayload), an unlocked SPI
// controller is expected, because glint locks it just before starting the OS; after glint
// locked (PhaseLocked) and in the OS (PhaseOS) the same state is a finding.
//
// Each Result is pass, fail, not applicable or cannot tell here, with what was seen and, when
// something is wrong, one action in plain words. Report is the same for the console and for
// JSON (scripts, the attestation server).
//
// The register rules live in internal/chipset (per-chipset tables: 7-series for the X230/T430,
// ICH9 for QEMU's q35); this package reads sysfs, securityfs and the TPM's PCRs besides.
//
// Example:
//
//	r := hostcheck.Run(hostcheck.System(), hostcheck.PhaseOS)
//	fmt.Print(r.Text())
//	if r.Failed() > 0 { ... }
package hostcheck
