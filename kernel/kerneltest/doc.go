// Package kerneltest boots glint's payload kernel (scripts/build-kernel.sh, out/kernel/bzImage)
// on the emulated laptop and proves what the payload needs from it, built in: the TPM (TIS,
// TPM 2.0 and 1.2 through swtpm), the firmware's event log (securityfs on UEFI and SeaBIOS,
// cbmem through /dev/mem on coreboot), /dev/port, efivarfs on UEFI, the disks (virtio, AHCI,
// NVMe, USB storage), USB HID with hidraw, uhid, usbfs (a CCID reader appears under
// /dev/bus/usb), loop, the NICs (e1000e, virtio-net) and packet sockets.
//
// The guest's /init is a busybox script that runs glint's platform checks (glint host dump,
// host check --json, host lock) and prints them between markers. The register dumps it
// prints are the "recorded in QEMU" dumps internal/hostcheck tests with; GLINT_UPDATE=1
// rewrites internal/hostcheck/testdata/qemu-*.dump from a run.
//
// Machines (each one boot):
//
//	seabios   QEMU's SeaBIOS, direct kernel boot, TPM 2.0
//	ovmf      OVMF (UEFI), direct kernel boot, TPM 2.0
//	coreboot  glint's coreboot 4.15 q35 ROM (make rom), its payload swapped for this kernel and
//	          initramfs with cbfstool, TPM 1.2: the measurement log comes from cbmem
//
// Run (needs the kernel, qemu-system-x86_64, swtpm, busybox-static; coreboot needs
// out/coreboot-tpm1.rom and cbfstool):
//
//	go test -tags qemu -count=1 -v ./kernel/kerneltest/
package kerneltest
