// Package e2e is glint's end-to-end bench: an emulated laptop (QEMU q35 under TCG, real
// coreboot 4.15 or OVMF, swtpm as TPM 2.0 or 1.2, a Debian kernel, a /boot disk and the
// owner's key stick) driven over its serial line through the scenario table of the issue:
// set-up, tampering with /boot, firmware and TPM, recovery, updates, wrong clock.
//
// The tests carry the build tag e2e and need `make rom payload` first:
//
//	make e2e            # = go test -tags e2e -count=1 -timeout 40m -v ./e2e/
//
// How the disks, the TPM state and the transcripts are kept: README.md in this directory.
package e2e
