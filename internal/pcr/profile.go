// Package pcr says which PCR holds what on the platform glint runs on, what
// glint itself measures, and computes PCR values before they happen
// (prediction).
//
// Sealing a secret to "the PCRs as they are now" is not enough: the boot-mode
// PCR must be sealed at the value it has in a NORMAL boot, so the same secret
// never unseals in a recovery shell or after glint has handed over to the OS
// (both extend the boot-mode PCR first). Heads does this with its
// calcfuturepcr; glint replays the measurements that lead there (Extend,
// Replay, ReplayOnto), and package sealed seals to the result.
//
// Files:
//
//	profile.go  platform profiles (Coreboot, UEFI), extend arithmetic
//	owner.go    what glint measures of the owner's firmware files into
//	            PCR 7 (OwnerFiles): the boot flow extends exactly these, and
//	            glint rom predict replays them for a new image
//	values.go   PCR values as text: Linux's sysfs files, "BANK INDEX HEX"
//	            lines (ParseValues, fuzzed)
//
// Profiles (documented for owners in docs/pcrs.md):
//
//	PCR  coreboot (Heads-class laptop)            UEFI (OVMF, stock laptops)
//	 0   unused by coreboot's Linux payload path  firmware code (SRTM, CRTM)
//	 1   unused                                   firmware configuration
//	 2   coreboot stages, FMAP and the payload    option ROMs, firmware blobs
//	 3   unused                                   option ROM configuration
//	 4   boot mode (glint)                        boot manager code + boot mode (glint)
//	 5   kernel modules glint loads (glint)       GPT/boot variables + modules (glint)
//	 6   LUKS headers (glint)                     LUKS headers (glint)
//	 7   owner files from CBFS (glint)            Secure Boot policy + owner files (glint)
//	 9   unused                                   kernel EFI stub: glint's initrd, command line
//
// The TOTP/HOTP secret is sealed to 0-4 and 7, and 9 on UEFI (PCR 4 at its predicted normal
// value; 5 and 6 are left out so loading a USB driver or adding a LUKS
// passphrase does not break the daily check). The disk key adds 5 and 6.
// The same glint binary runs on both profiles: glint's own measurements go
// to the same PCR numbers, after whatever the firmware put there.
package pcr

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"os"
	"sort"

	"github.com/glint-boot/glint/internal/tpm"
)

// PCR indices glint itself extends.
const (
	BootMode = 4 // "normal", "recovery", "forced", "leaving-glint"
	Modules  = 5 // kernel modules glint loads
	LUKS     = 6 // LUKS headers measured before the disk key is unsealed
	Config   = 7 // owner files (keys, config) from the firmware image
)

// Boot-mode events, extended into PCR 4. Any of them makes the TOTP and disk
// secrets unavailable for the rest of this boot, which is the point.
const (
	ModeRecovery = "glint: recovery shell"
	ModeForced   = "glint: forced boot (tampering ignored by the owner)"
	ModeLeaving  = "glint: leaving glint (kexec)"
	ModeUSB      = "glint: external media boot"
)

// Profile is a platform's PCR plan.
type Profile struct {
	Name string
	// Firmware lists the PCRs the firmware fills, with what they hold.
	Firmware map[int]string
	// OTP is the set the TOTP/HOTP secret is sealed to.
	OTP []int
	// Disk is the set the disk unlock key is sealed to.
	Disk []int
}

// Coreboot is the profile of a Heads-class machine: coreboot with a Linux payload.
var Coreboot = Profile{
	Name: "coreboot",
	Firmware: map[int]string{
		2: "coreboot: FMAP, bootblock, romstage, postcar, ramstage, payload (kernel + glint)",
	},
	OTP:  []int{0, 1, 2, 3, 4, 7},
	Disk: []int{0, 1, 2, 3, 4, 5, 6, 7},
}

// UEFI is the profile of a machine whose UEFI firmware starts the glint kernel.
var UEFI = Profile{
	Name: "uefi",
	Firmware: map[int]string{
		0: "firmware code",
		1: "firmware configuration (NVRAM, SMBIOS)",
		2: "option ROMs and firmware drivers",
		3: "option ROM configuration",
		4: "boot loader / kernel image loaded by the firmware",
		5: "boot variables and GPT",
		7: "Secure Boot policy (PK, KEK, db, dbx) and authorities",
		9: "the kernel's EFI stub: glint's initramfs (\"Linux initrd\") and the kernel command line",
	},
	// PCR 9 is where the kernel's EFI stub measures the initrd it loads
	// (Linux 5.17+, LoadFile2: EV_EVENT_TAG "Linux initrd") and the command
	// line: on UEFI the firmware measures only the kernel image into PCR 4,
	// so without PCR 9 another initramfs (glint's plus an appended cpio)
	// would get the genuine code. An initramfs built into the kernel image
	// is covered by PCR 4 instead.
	OTP:  []int{0, 1, 2, 3, 4, 7, 9},
	Disk: []int{0, 1, 2, 3, 4, 5, 6, 7, 9},
}

// Describe says in words what a PCR holds on this profile.
func (p Profile) Describe(index int) string {
	var s string
	switch index {
	case BootMode:
		s = "boot mode (normal, recovery shell, forced boot, hand-over to the OS)"
	case Modules:
		s = "kernel modules loaded by glint"
	case LUKS:
		s = "LUKS disk headers"
	case Config:
		s = "owner keys and configuration from the firmware image"
	}
	if fw, ok := p.Firmware[index]; ok {
		if s == "" {
			return fw
		}
		return fw + "; " + s
	}
	if s == "" {
		return "not used on this platform"
	}
	return s
}

// Detect picks the profile of the running machine: coreboot exposes its
// tables under /sys/bus/coreboot (Linux coreboot_table driver) or /sys/firmware
// has no efi directory; UEFI machines have /sys/firmware/efi.
func Detect() Profile {
	if _, err := os.Stat("/sys/firmware/efi"); err == nil {
		return UEFI
	}
	return Coreboot
}

// ByName returns the profile called name ("coreboot" or "uefi").
func ByName(name string) (Profile, error) {
	switch name {
	case "coreboot":
		return Coreboot, nil
	case "uefi":
		return UEFI, nil
	}
	return Profile{}, fmt.Errorf("unknown platform profile %q (want coreboot or uefi)", name)
}

// Measure returns the digest of data in a bank's algorithm, which is what
// extending "a measurement of data" puts into the PCR.
func Measure(bank tpm.Alg, data []byte) []byte {
	h := newHash(bank)
	h.Write(data)
	return h.Sum(nil)
}

// Extend returns PCR_new = H(PCR_old || digest), the TPM's extend operation.
func Extend(bank tpm.Alg, old, digest []byte) []byte {
	h := newHash(bank)
	h.Write(old)
	h.Write(digest)
	return h.Sum(nil)
}

// Zero is a PCR's value after reset.
func Zero(bank tpm.Alg) []byte { return make([]byte, bank.Size()) }

// newHash is the bank's hash. glint only measures into banks tpm.ChooseBank
// picked (SHA-1, SHA-256); anything else hashes as SHA-256, as before.
func newHash(bank tpm.Alg) hash.Hash {
	if h, err := bank.Hash(); err == nil {
		return h.New()
	}
	return sha256.New()
}

// Replay folds digests into a PCR starting from zero.
func Replay(bank tpm.Alg, digests ...[]byte) []byte {
	v := Zero(bank)
	for _, d := range digests {
		v = Extend(bank, v, d)
	}
	return v
}

// Sorted returns the keys of a PCR map in order.
func Sorted(m map[int][]byte) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	return keys
}
