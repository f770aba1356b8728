//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestDemo is `make demo` (scripts/demo.sh sets GLINT_DEMO=1): the main job on the emulated
// laptop, with the console shown as it goes. A laptop shipped by a vendor is made yours with a
// (simulated) security key: boot menu, R, the re-ownership wizard; the QR code and the TOTP
// code; the first boot of your firmware reaches the OS; then someone changes the kernel on
// /boot and glint refuses it, naming the file. 5 power-ons.
func TestDemo(t *testing.T) {
	if os.Getenv("GLINT_DEMO") == "" {
		t.Skip("the demo runs with make demo (GLINT_DEMO=1)")
	}
	needTools(t, CorebootTPM2)
	start := time.Now()
	Echo = os.Stdout
	defer func() { Echo = nil }()
	say := func(format string, a ...any) {
		fmt.Printf("\n\033[1;34m== %s\033[0m\n\n", fmt.Sprintf(format, a...))
	}
	m := NewMachine(t, CorebootTPM2, "demo")
	b := &bench{m: m}
	card := startCard(t, m)

	say("1/5  A vendor sets the laptop up and ships it: its key in the firmware, /boot signed, its TOTP secret in the TPM")
	vendorURI, _ := shipByVendor(t, b, "1-vendor-ships-it")

	say("2/5  You receive it. You plug in your security key (a simulated OpenPGP card) and a USB drive, and choose R in glint's menu")
	newOwnerPlugsIn(t, m, card)
	menuReown(t, b, vendorURI, "2-menu-R")

	say("3/5  The re-ownership wizard runs first thing at power-on: TPM reset, keys made on your card, your key into the firmware, /boot signed, a new TOTP secret for your phone")
	r := m.Boot(t, "3-wizard")
	_, fpr, _ := wizardKeysAndFirmware(t, r)
	answer(t, r, `Continue with step 5 .*\(yes\) `, "")
	wizardSignAndSeal(t, b, r, fpr, false)

	say("4/5  Your firmware's first boot: the code matches your phone (computed here with oathtool from the QR code's secret), /boot verifies with your key, the OS starts")
	r = m.Boot(t, "4-your-first-boot")
	firstBootAsNewOwner(t, b, r, vendorURI)

	say("5/5  An evil maid replaces one bit of the kernel on /boot: glint names the file and boots nothing")
	path := findBootFile(t, m.BootDir, "vmlinuz")
	orig := readFile(t, path)
	defer writeFile(t, path, orig)
	changed := bytes.Clone(orig)
	changed[len(changed)/2] ^= 0x01
	writeFile(t, path, changed)
	r = m.Boot(t, "5-kernel-tampered")
	expect(t, r, `glint: boot flow starting`, toGlint)
	b.expectTOTP(t, r)
	expect(t, r, `TAMPER: .*`+filepath.Base(path), toStep)
	expect(t, r, `glint> `, toStep)
	b.noKexec(t, r)
	r.Screenshot(t, "demo-kernel-refused")
	must(t, r.Send("p"))
	r.Wait(t, toStopped)

	Echo = nil
	say("Done in %s (5 power-ons of the emulated laptop)", time.Since(start).Round(time.Second))
	fmt.Printf("Transcripts of every boot (what glint printed, what was typed): %s/*.log\n", m.Dir)
	fmt.Printf("Screenshots of the laptop's screen:                         %s/*.png\n", filepath.Join(m.Top, "out", "e2e", "screens"))
	fmt.Printf("Try it yourself, every menu item, with the state kept:      make laptop\n")
}
