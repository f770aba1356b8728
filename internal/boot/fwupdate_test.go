package boot

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/approval"
	"github.com/glint-boot/glint/internal/flash"
	"github.com/glint-boot/glint/internal/manifest"
	"github.com/glint-boot/glint/internal/rom"
	"github.com/glint-boot/glint/internal/rom/romtest"
	"github.com/glint-boot/glint/internal/sealed"
	"github.com/glint-boot/glint/internal/tpm"
)

// fwBench is a machine set up with a publisher key and an approval key in
// its firmware, its chip a file (flash.DiskChip, as on the emulated laptop)
// and a directory standing for the USB stick.
type fwBench struct {
	*bench
	m        *ownMachine
	chip     []byte // the chip as set up
	next     []byte // the publisher's next release (no owner files)
	pubSign  *manifest.KeySigner
	akFile   string // the approval key's private half (not yet on the stick)
	akPublic []byte
}

func newFWBench(t *testing.T, v tpm.Version, withApprovalKey bool) *fwBench {
	b := newBench(t, v)
	pubKey, pubSec := ownerKeys(t) // the publisher's release key
	s, err := manifest.NewKeySigner(pubSec, []byte(ownerPass))
	must(t, err)
	fb := &fwBench{bench: b, pubSign: s}
	b.ownerFiles = map[string][]byte{flash.PublisherKeyFile: pubKey}
	if withApprovalKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(t, err)
		fb.akFile = filepath.Join(t.TempDir(), ApprovalKeyFile)
		must(t, approval.WriteKeyFile(fb.akFile, k))
		fb.akPublic, err = approval.PEMPublic(k.Public())
		must(t, err)
		b.ownerFiles[approval.ApprovalPEMFile] = fb.akPublic
	}
	tpmV := 20
	if v == tpm.Version12 {
		tpmV = 12
	}
	fb.chip = romtest.Make(t, romtest.Spec{TPM: tpmV, PayloadSeed: 1, Owner: b.firmwareFiles()})
	fb.next = romtest.Make(t, romtest.Spec{TPM: tpmV, PayloadSeed: 2})
	fb.m = &ownMachine{fakeMachine: b.machine, chip: filepath.Join(t.TempDir(), "chip.img"), usb: t.TempDir()}
	b.machine.usb = ""
	must(t, os.WriteFile(fb.m.chip, fb.chip, 0o644))
	out := b.powerMachine(fb.m, v, ownerPass+"\ny\n\n")
	if !strings.Contains(out, "Set-up complete") {
		t.Fatalf("set-up:\n%s", out)
	}
	// The next power-ons stop at the menu of a verified boot (Enter
	// interrupts the countdown).
	b.countdown = 5
	return fb
}

func (fb *fwBench) bundle(t *testing.T, image []byte, board string, s manifest.Signer) []byte {
	t.Helper()
	raw, err := flash.BuildBundle(image, board, "next", s)
	must(t, err)
	return raw
}

func (fb *fwBench) onStick(t *testing.T, name string, data []byte) {
	t.Helper()
	must(t, os.WriteFile(filepath.Join(fb.m.usb, name), data, 0o644))
}

func (fb *fwBench) chipNow(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(fb.m.chip)
	must(t, err)
	return b
}

// The update from the menu on a TPM 2.0 with an approval key: the owner
// sees what changes, authenticates, and the chip gets the publisher's
// image with the owner's files carried; the new values are approved at the
// next approval epoch before the write; the backup is on the stick.
func TestMenuFirmwareUpdateTPM2Approved(t *testing.T) {
	fb := newFWBench(t, tpm.Version20, true)
	const board = "Emulation QEMU x86 q35/ich9"
	fb.onStick(t, "update"+BundleExt, fb.bundle(t, fb.next, board, fb.pubSign))
	ak, err := os.ReadFile(fb.akFile)
	must(t, err)
	fb.onStick(t, ApprovalKeyFile, ak)

	// The epoch counter before the update.
	out := fb.powerMachine(fb.m, tpm.Version20, "\nw\n"+ownerPass+"\nyes\nno\n")
	for _, want := range []string{
		"signature verified: publisher key",
		"=== firmware update from the USB stick: update" + BundleExt,
		"board:          " + board,
		"files changed:  fallback/payload",
		"PCR 2 (sha256): ",
		"approved with key file",
		"the chip holds the new image",
		"FIRMWARE UPDATED",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the menu did not say %q:\n%s", want, out)
		}
	}
	chip := fb.chipNow(t)
	if bytes.Equal(chip, fb.chip) {
		t.Fatal("the chip did not change")
	}
	// The owner's files came along (the publisher's image has none).
	img, err := rom.FromBytes(chip)
	must(t, err)
	files, err := rom.OwnerFiles(img)
	must(t, err)
	if !bytes.Equal(files[rom.OwnerKeyFile], fb.pub) || !bytes.Equal(files[approval.ApprovalPEMFile], fb.akPublic) {
		t.Errorf("owner files after the update: %v", keys(files))
	}
	// The approval: for the TOTP secret, at the epoch after the counter,
	// for exactly the values predicted from the image written.
	list, errs := approval.Load(filepath.Join(fb.bootDir, "glint", "approvals"), approval.PurposeTOTP)
	if len(list) != 1 || len(errs) != 0 {
		t.Fatalf("approvals %v %v", list, errs)
	}
	pol, _, err := approval.Predicted(chip, approval.PurposeTOTP, tpm.SHA256, nil)
	must(t, err)
	a := list[0]
	if a.Policy.Epoch == nil || a.Policy.Epoch.Index != approval.EpochIndex || !bytes.Equal(a.Policy.Values[2], pol.Values[2]) {
		t.Errorf("approval %s, want PCR 2 %x at the next epoch", approval.Describe(a), pol.Values[2])
	}
	// The backup: the chip as it was, on the stick.
	bk, _ := filepath.Glob(filepath.Join(fb.m.usb, "glint-firmware-backups", "*"))
	found := false
	for _, p := range bk {
		if b, err := os.ReadFile(p); err == nil && bytes.Equal(b, fb.chip) {
			found = true
		}
	}
	if !found {
		t.Errorf("no backup of the old chip on the stick: %v", bk)
	}
}

// TPM 1.2 (no approvals): the TOTP secret is sealed to the values
// predicted for the image written, before the write.
func TestMenuFirmwareUpdateTPM12Resealed(t *testing.T) {
	fb := newFWBench(t, tpm.Version12, false)
	fb.onStick(t, "update"+BundleExt, fb.bundle(t, fb.next, "Emulation QEMU x86 q35/ich9", fb.pubSign))
	before, err := sealed.LoadTOTP(fb.bootDir)
	must(t, err)
	out := fb.powerMachine(fb.m, tpm.Version12, "\nw\n"+ownerPass+"\nyes\nno\n")
	for _, want := range []string{"the TOTP secret is sealed to the new values before writing", "the TOTP secret is sealed to the new firmware's predicted PCR values", "FIRMWARE UPDATED"} {
		if !strings.Contains(out, want) {
			t.Errorf("the menu did not say %q:\n%s", want, out)
		}
	}
	rec, err := sealed.LoadTOTP(fb.bootDir)
	must(t, err)
	p, err := predictImage(fb.chipNow(t))
	must(t, err)
	want, _ := p.PCR(2)
	if bytes.Equal(rec.PCRs[2], before.PCRs[2]) || !bytes.Equal(rec.PCRs[2], want.Values[rec.Bank]) {
		t.Errorf("TOTP sealed to PCR 2 %x (before %x), predicted %x", rec.PCRs[2], before.PCRs[2], want.Values[rec.Bank])
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Bad updates are refused with the reason before the owner is asked, and
// the chip keeps its bytes: a forged signature, a truncated file, an image
// for another board; so is an update whose approval key is missing, and
// any update in restricted mode.
func TestMenuFirmwareUpdateRefusals(t *testing.T) {
	fb := newFWBench(t, tpm.Version20, true)
	ak, err := os.ReadFile(fb.akFile)
	must(t, err)
	const board = "Emulation QEMU x86 q35/ich9"
	good := fb.bundle(t, fb.next, board, fb.pubSign)
	_, forgerSec := ownerKeys(t)
	forger, err := manifest.NewKeySigner(forgerSec, []byte(ownerPass))
	must(t, err)
	otherImg, err := rom.FromBytes(fb.next)
	must(t, err)
	otherImg, err = otherImg.RemoveFile(rom.OwnerArea, "build_info")
	must(t, err)
	otherImg, err = otherImg.AddFile(rom.OwnerArea, "build_info", []byte("COREBOOT_VERSION: test\nMAINBOARD_VENDOR: Emulation\nMAINBOARD_PART_NUMBER: QEMU x86 i440fx/piix4\n"), rom.AddOptions{})
	must(t, err)
	cases := []struct {
		name, bundle string
		data         []byte
		akOnStick    bool
		want         string
	}{
		{"forged", "forged", fb.bundle(t, fb.next, board, forger), true, "signature does not verify: made by a key that is not the publisher key"},
		{"truncated", "truncated", good[:len(good)*2/3], true, "truncated download or copy"},
		{"another board", "other", fb.bundle(t, otherImg.Data, "Emulation QEMU x86 i440fx/piix4", fb.pubSign), true, `the chip holds firmware for "Emulation QEMU x86 q35/ich9", the image is for "Emulation QEMU x86 i440fx/piix4"`},
		{"no approval key", "update", good, false, "put its private half on the stick as " + ApprovalKeyFile},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ents, _ := os.ReadDir(fb.m.usb)
			for _, e := range ents {
				os.RemoveAll(filepath.Join(fb.m.usb, e.Name()))
			}
			fb.onStick(t, c.bundle+BundleExt, c.data)
			if c.akOnStick {
				fb.onStick(t, ApprovalKeyFile, ak)
			}
			// Whatever follows "w" is typed at the menu, not used as a
			// passphrase: the refusal comes before any question.
			out := fb.powerMachine(fb.m, tpm.Version20, "\nw\n"+ownerPass+"\nyes\n")
			if !strings.Contains(out, "firmware update refused, nothing was written: ") || !strings.Contains(out, c.want) {
				t.Errorf("want a refusal naming %q:\n%s", c.want, out)
			}
			if strings.Contains(out, "Owner key passphrase") {
				t.Errorf("the owner was asked before the update was checked:\n%s", out)
			}
			if !bytes.Equal(fb.chipNow(t), fb.chip) {
				t.Fatal("the chip changed")
			}
			if _, err := os.Stat(filepath.Join(fb.m.usb, "glint-firmware-backups")); err == nil {
				t.Error("a refused update kept a backup")
			}
		})
	}

	t.Run("restricted mode", func(t *testing.T) {
		fb.ownerFiles[rom.OwnerConfigFile] = []byte("boot.policy = restricted\n")
		defer delete(fb.ownerFiles, rom.OwnerConfigFile)
		fb.onStick(t, "update"+BundleExt, good)
		fb.onStick(t, ApprovalKeyFile, ak)
		out := fb.powerMachine(fb.m, tpm.Version20, "\nw\n")
		if !strings.Contains(out, "boot.policy = restricted) allows no flashing from the boot menu") {
			t.Errorf("restricted mode:\n%s", out)
		}
		if sum := sha256.Sum256(fb.chipNow(t)); sum != sha256.Sum256(fb.chip) {
			t.Fatal("the chip changed")
		}
	})
}
