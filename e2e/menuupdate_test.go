//go:build e2e

package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/rom"
	"github.com/glint-boot/glint/internal/tpm"
)

// The firmware update from glint's boot menu (issue 17, "update firmware from a USB stick"):
// the owner brings a stick with the publisher's update bundle, their key backup and their
// approval key, chooses w in the menu, sees what changes, authenticates, and the chip gets the
// new firmware; the next power-on runs it, shows the code the phone shows (the new PCR values
// were approved before the write: nothing sealed again, no re-enrolment), and PCR 2 in the
// guest is the value glint predicted and showed. A forged and a truncated bundle on the same
// stick are refused first, with the reason, and the chip's bytes stay as they were.
//
// The chip: QEMU q35 has no SPI controller, so the flash is the ROM file itself, given to the
// guest as a virtio disk (serial glint-flash, flash.DiskChip) as the re-ownership rows do;
// what glint writes there is the next power-on's -bios.
//
// TPM 2.0 approves the new values with the owner's approval key (at the next approval epoch);
// TPM 1.2 has no approvals, so glint seals the TOTP secret again to the values predicted for the
// image written, before writing it.
//
// Boots per TPM: 2 (set-up and first verified boot) + 1 (refusals and the update from the menu)
// + 1 (the new firmware) = 4.
func TestMenuFirmwareUpdate(t *testing.T) {
	parallel := os.Getenv("GLINT_E2E_SERIAL") == ""
	for _, fw := range []Firmware{CorebootTPM2, CorebootTPM1} {
		t.Run(string(fw), func(t *testing.T) {
			if parallel {
				t.Parallel()
			}
			menuUpdate(t, fw)
		})
	}
}

func menuUpdate(t *testing.T, fw Firmware) {
	needTools(t, fw)
	for _, tool := range []string{"mcopy", "mkfs.vfat", "gpg", "cbfstool"} {
		if _, err := exec.LookPath(tool); err != nil {
			if _, err := os.Stat("/usr/sbin/" + tool); err != nil {
				t.Skipf("%s not installed (scripts/install-deps.sh)", tool)
			}
		}
	}
	m := NewMachine(t, fw, "menuupdate-"+string(fw))
	m.FlashDisk = true
	work := filepath.Join(m.Dir, "update")
	must(t, os.MkdirAll(work, 0o755))

	// The owner's approval key (P-256, kept offline: here on the update stick) and the
	// publisher's release key, both public halves in the firmware as glint rom personalize
	// puts them.
	stickFiles := map[string]string{"owner-secret.asc": m.Owner.SecretFile, "owner.asc": m.Owner.PublicFile}
	keys := releaseKeys(t, m, work, fw.TPM2())
	if fw.TPM2() {
		stickFiles["approval-key.pem"] = keys.approvalKey
	}

	b := &bench{m: m}
	if !t.Run("01-set-up", func(t *testing.T) { rowFirstBoot(t, b) }) {
		t.Fatal("set-up failed")
	}

	good, forged, truncated := nextRelease(t, m, fw, work, keys)

	// The update stick: the bundles (listed sorted: 1 forged, 2 truncated, 3 update), the
	// owner's key backup and the approval key (TPM 2.0). It replaces the key stick.
	stick := filepath.Join(work, "update-stick.img")
	stickFiles["forged.glintupd"] = forged
	stickFiles["truncated.glintupd"] = truncated
	stickFiles["update.glintupd"] = good
	buildFlashStick(t, stick, stickFiles)
	m.Stick = stick
	current := readFile(t, m.ROM)
	chipSum := func() string { return hex.EncodeToString(sha256Of(readFile(t, m.ROM))) }
	before := chipSum()
	var shown string // the PCR 2 value the menu showed for the new firmware
	bank, secrets := tpm.SHA256, "approved with key file"
	if !fw.TPM2() {
		bank, secrets = tpm.SHA1, "the TOTP secret is sealed to the new firmware's predicted PCR values"
	}

	if !t.Run("02-refusals-then-update-from-the-menu", func(t *testing.T) {
		r := m.Boot(t, "02-menu-update")
		b.expectTOTP(t, r)
		expect(t, r, `press Enter for the menu`, toStep)
		must(t, r.Send(""))
		for _, c := range []struct{ choice, reason string }{
			{"1", `forged\.glintupd: update bundle: signature at byte \d+: the publisher's signature does not verify: made by a key that is not the publisher key`},
			{"2", `truncated\.glintupd: update bundle: image at byte \d+: the file ends early: truncated download or copy`},
		} {
			expect(t, r, `glint> `, toStep)
			must(t, r.Send("w"))
			expect(t, r, `Which one\? `, toStep)
			must(t, r.Send(c.choice))
			g := expect(t, r, `firmware update refused, nothing was written: ([^\n]*)\n`, toStep)
			if !regexp.MustCompile(c.reason).MatchString(g[1]) {
				t.Errorf("bundle %s refused for another reason: %s", c.choice, g[1])
			}
			// The guest has the chip as a virtio disk on the ROM file: what it wrote would
			// be in the host's file now.
			if now := chipSum(); now != before {
				t.Fatalf("the refused bundle %s changed the chip", c.choice)
			}
		}
		expect(t, r, `glint> `, toStep)
		must(t, r.Send("w"))
		expect(t, r, `Which one\? `, toStep)
		must(t, r.Send("3"))
		mark := r.Mark()
		expect(t, r, `signature verified: publisher key`, toStep)
		shown = expect(t, r, `PCR 2 \(`+bank.String()+`\): ([0-9a-f]+)  CHANGES`, toStep)[1]
		expect(t, r, `Owner key passphrase:`, toStep)
		must(t, r.Send(m.Owner.Passphrase))
		expect(t, r, `Write the new firmware now\? Type "yes": `, toStep)
		must(t, r.Send("yes"))
		expect(t, r, `FIRMWARE UPDATED`, 5*toStep)
		expect(t, r, `Reboot into the new firmware now\? Type "yes": `, toStep)
		said := r.Since(mark)
		for _, s := range []string{"files changed:  fallback/payload", "owner files carried from the current firmware", secrets, "the chip holds the new image"} {
			if !strings.Contains(said, s) {
				t.Errorf("the menu did not say %q:\n%s", s, said)
			}
		}
		r.Screenshot(t, "menu-update-done")
		must(t, r.Send("yes"))
		r.Wait(t, toStopped)
	}) {
		t.Fatal("the update from the menu failed")
	}

	chip := readFile(t, m.ROM)
	if bytes.Equal(chip, current) {
		t.Fatal("the update did not change the chip")
	}
	img, err := rom.FromBytes(chip)
	must(t, err)
	pred, err := rom.Predict(img, rom.PredictOptions{})
	must(t, err)
	p2, _ := pred.PCR(2)
	want2 := hex.EncodeToString(p2.Values[bank])
	if shown != want2 {
		t.Errorf("the menu showed PCR 2 %s, the image written predicts %s", shown, want2)
	}

	t.Run("03-new-firmware-same-totp", func(t *testing.T) {
		r := m.Boot(t, "03-new-firmware")
		expect(t, r, `glint: boot flow starting`, toGlint)
		if fw.TPM2() {
			// coreboot's serial log: one "PCR-2 <sha256> SHA256 [...]" line per measurement,
			// replayed, is the prediction (the new payload was measured: the new firmware runs).
			replayed, n := corebootPCR2(r.All())
			if n == 0 || hex.EncodeToString(replayed) != want2 {
				t.Errorf("coreboot's %d PCR 2 measurements replay to %x, glint predicted %s before flashing", n, replayed, want2)
			}
		}
		// The code the phone shows: nothing was enrolled again.
		b.expectTOTP(t, r)
		expect(t, r, `/boot: verified`, toStep)
		expect(t, r, `press Enter for the menu`, toStep)
		must(t, r.Send(""))
		// PCR 2 as the TPM holds it, read by glint (menu e), is the prediction.
		expect(t, r, `glint> `, toStep)
		must(t, r.Send("e"))
		g := expect(t, r, `PCR\[ 2\] (sha1|sha256) ([0-9a-f]+)\s`, toStep) // \s: the whole value, not where a read ended
		if g[1] != bank.String() || g[2] != want2 {
			t.Errorf("PCR 2 in the guest is %s %s, glint predicted %s %s before flashing", g[1], g[2], bank, want2)
		}
		expect(t, r, `glint> `, toStep)
		must(t, r.Send("d"))
		expect(t, r, `glint: kexec `, toStep)
		expect(t, r, markerOS, toOS)
		expect(t, r, `E2E-OS-DONE`, toStep)
		r.Wait(t, toStopped)
	})
}

func sha256Of(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}
