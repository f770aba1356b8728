// Package qemutest proves internal/kexec's SystemLoader against a real
// kernel: a QEMU (TCG, q35, -cpu max) guest boots glint's payload kernel
// (out/kernel/bzImage, scripts/build-kernel.sh; Debian's when it is not built)
// with a tiny initramfs whose /init (stage1/, static Go) loads a second system
// (Debian's kernel) with
// kexec.NewSystemLoader() and kexecs into it. Stage 2 is a busybox
// initramfs whose /init prints markers and powers off; the disk-key style
// ExtraInitrd cpio (/secret.key, random per run) must show up in it.
//
// Cases (run in parallel, two at a time):
//
//	linux         SeaBIOS; kexec_file_load of the same kernel + stage 2 +
//	              key cpio; the second kernel's console=ttyS0 output must appear
//	xen           SeaBIOS; kexec_load of Debian's Xen 4.17 (Multiboot2,
//	              Qubes style: xen + dom0 vmlinuz + initrd as modules) through
//	              glint's segment plan and 64->32-bit trampoline; dom0 must run
//	              stage 2 under Xen and see the key
//	xen-coreboot  the same from glint's coreboot ROM (make rom), its payload
//	              swapped with cbfstool for the kernel + a small stage 1; the
//	              rest comes as a RAM bundle (QEMU -device loader, reserved
//	              with memmap=, read through /dev/mem), as the ROM is 16 MiB
//	xen-ovmf      the same under UEFI without a CSM (OVMF)
//
// Each case logs its timings: stage 1 /init (wall and guest uptime), the
// load call, and kexec to the stage 2 marker. On an idle 2-core machine:
// Linux /init 8.4 s, load 2.4 s, kexec->marker 9.2 s (20 s in all); Xen
// /init 8.2 s, load 0.8-1.2 s, kexec->dom0 /init 12.4 s (22-25 s); the
// whole test about 50 s. Under load from other jobs it grows 2-3x.
//
// Run (needs qemu-system-x86_64, busybox-static, the kernel cache from
// scripts/fetch-kernel.sh, Xen from internal/kexec/testdata/fetch-xen.sh,
// and for xen-coreboot out/coreboot-tpm2.rom + cbfstool; each missing part
// skips its cases with a message):
//
//	go test -tags qemu -count=1 -v ./internal/kexec/qemutest/
//
// GLINT_QEMU_KEEP=DIR keeps each guest's serial log (and stage1.cpio)
// there; GLINT_COREBOOT_ROM picks another ROM. For debugging by hand,
// stage 1 takes glint.test=linux|xen and glint.xen=opt1,opt2 (added to
// Xen's command line) on its kernel command line; QEMU's
// "-d int,cpu_reset -D FILE" and "-d in_asm,cpu,nochain -dfilter A..B"
// show where Xen's early code goes wrong (how the no-real-mode and BDA
// fixes in internal/kexec were found).
package qemutest
