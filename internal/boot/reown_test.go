package boot

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/glint-boot/glint/internal/card"
	"github.com/glint-boot/glint/internal/flash"
	"github.com/glint-boot/glint/internal/otp"
	"github.com/glint-boot/glint/internal/reown"
	"github.com/glint-boot/glint/internal/rom"
	"github.com/glint-boot/glint/internal/rom/romtest"
	"github.com/glint-boot/glint/internal/tpm"
)

// ownMachine is the test machine with what re-owning needs: the flash chip
// (a file standing for the chip's disk: flash.DiskChip, as on the emulated
// laptop), a directory standing for a USB drive; no OpenPGP card, so the
// new owner takes a key file.
type ownMachine struct {
	*fakeMachine
	chip string
	usb  string
}

func (m *ownMachine) FlashChip() (flash.Device, error) { return &flash.DiskChip{Path: m.chip}, nil }
func (m *ownMachine) USBDrive() (string, func(), error) {
	return m.usb, func() {}, nil
}
func (m *ownMachine) OpenCard() (*card.Card, string, error) {
	return nil, "", errors.New("no card in this test")
}

// The menu item re-owns a machine set up by a previous owner: R asks and
// reboots; the next power-on runs the wizard before anything else (the
// questions answered at the console), writes the new owner's key into the
// chip, signs /boot, seals a new TOTP secret and reboots; the power-on
// after that (owner files read from the chip) shows the code the wizard
// showed and verifies /boot with the new key.
func TestFlowReownFromMenu(t *testing.T) {
	b := newBench(t, tpm.Version20)
	m := &ownMachine{fakeMachine: b.machine, chip: filepath.Join(t.TempDir(), "chip.img"), usb: t.TempDir()}
	b.machine.usb = ""
	img := romtest.Make(t, romtest.Spec{TPM: 20, PayloadSeed: 3, Owner: map[string][]byte{rom.OwnerKeyFile: b.pub}})
	must(t, os.WriteFile(m.chip, img, 0o644))

	// The previous owner's first boot (the usual set-up), then a boot into
	// the menu where R is chosen.
	out := b.powerWith(m, tpm.Version20, ownerPass+"\ny\n\n")
	if !strings.Contains(out, "Set-up complete") {
		t.Fatalf("previous owner's set-up:\n%s", out)
	}
	oldSecret := secretFromOutput(t, out)
	out = b.powerWith(m, tpm.Version20, "R\nyes\n")
	if !strings.Contains(out, "Rebooting into the re-ownership wizard") || m.reboots != 2 {
		t.Fatalf("menu R:\n%s", out)
	}
	if _, pending := reown.Pending(b.bootDir); !pending {
		t.Fatal("no request recorded")
	}

	// The wizard at the next power-on, answered at the console.
	answers := strings.Join([]string{
		"",                 // continue with step 2
		"reset everything", // confirm
		"", "", "",         // lockout settings: defaults
		"",     // continue with step 3
		"file", // key on
		"", "", "",
		"",     // backup dir: the USB drive
		"", "", // passphrase: generate (asked once, no repeat for generate)
		"yes",      // continue with step 4 ... (default yes)
		"yes",      // write the firmware
		"",         // continue with step 5
		"yes",      // sign
		"", "", "", // issuer, account, phone code: skip
		"",     // continue with step 6
		"done", // summary
		"",     // press Enter to reboot
	}, "\n") + "\n"
	out = b.powerWith(m, tpm.Version20, answers)
	wizardOut := out
	if !strings.Contains(out, "Re-ownership complete") {
		t.Fatalf("wizard at boot:\n%s", out)
	}
	shown := regexp.MustCompile(`TOTP code now: (\d{6})`).FindStringSubmatch(out)
	if shown == nil {
		t.Fatalf("no code shown:\n%s", out)
	}
	newImg, err := rom.FromFile(m.chip)
	must(t, err)
	files, err := rom.OwnerFiles(newImg)
	must(t, err)
	if string(files[rom.OwnerKeyFile]) == string(b.pub) {
		t.Fatal("the chip still holds the previous owner's key")
	}

	// The next power-on runs the new firmware: its owner files.
	b.pub = files[rom.OwnerKeyFile]
	out = b.powerWith(m, tpm.Version20, "p\n")
	g := regexp.MustCompile(`TOTP code: (\d{6})`).FindStringSubmatch(out)
	if g == nil || !strings.Contains(out, "/boot: verified") {
		t.Fatalf("first boot after the re-ownership:\n%s", out)
	}
	// The boot's code is the new secret's (the URI the wizard showed), and
	// not the previous owner's.
	newSecret := secretFromOutput(t, wizardOut)
	now := time.Now()
	var want []string
	for _, d := range []time.Duration{-30 * time.Second, 0, 30 * time.Second} {
		c, _ := otp.TOTP(otp.SHA1, newSecret, now.Add(d), 30*time.Second, 6)
		want = append(want, otp.FormatCode(c, 6))
	}
	if !slices.Contains(want, g[1]) {
		t.Fatalf("boot shows %s, the new secret gives %v", g[1], want)
	}
	old, _ := otp.TOTP(otp.SHA1, oldSecret, now, 30*time.Second, 6)
	if g[1] == otp.FormatCode(old, 6) {
		t.Fatal("the previous owner's code is still shown")
	}
}

// powerWith is power with a machine that can re-own.
func (b *bench) powerWith(m *ownMachine, v tpm.Version, input string) string {
	return b.powerMachine(m, v, input)
}
