//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/glint-boot/glint/internal/card/cardsim"
)

// Re-ownership on the emulated laptop (issue 18): a machine "shipped" by a vendor (its key in
// the firmware, /boot signed, a TOTP secret sealed, the TPM owned with the vendor's key) is
// re-owned by a new owner with an OpenPGP card: the menu's R, the wizard at the next power-on,
// a power cut in the middle, the wizard continued; then the new firmware boots with the new
// owner's code, and the vendor's signature and TOTP secret are refused.
//
// The card is the project's simulator (internal/card/cardsim) on the host, behind QEMU's USB
// CCID reader (usb-ccid + ccid-card-passthru, VSCard protocol): glint in the guest reaches it
// over usbfs, as it would a Nitrokey. The flash chip is the ROM file itself, given to the guest
// as a virtio disk (flash.DiskChip; q35 has no SPI controller): what glint writes there is the
// next power-on's -bios. The new owner's USB drive (key backup, firmware backup) is a FAT stick
// on usb-storage.
//
// Boots: 1 vendor set-up + 1 menu R + 2 wizard (cut after step 4, continued) + 1 the new
// firmware to the OS + 1 the vendor's manifest and TOTP record put back = 6.

// ownBoots is the number of power-ons TestReown makes.
const ownBoots = 6

func TestReown(t *testing.T) {
	needTools(t, CorebootTPM2)
	m := NewMachine(t, CorebootTPM2, "own-tpm2")
	b := &bench{m: m}
	card := startCard(t, m)

	vendorURI, vendor := shipByVendor(t, b, "01-vendor-setup")
	newOwnerPlugsIn(t, m, card)
	menuReown(t, b, vendorURI, "02-menu-reown")

	// The wizard runs first thing at the next power-on. A power cut after step 4: the chip
	// holds the new owner's key, /boot is still the vendor's.
	r := m.Boot(t, "03-wizard")
	userPIN, fpr := wizardKeysAndFirmware(t, r)
	expect(t, r, `Continue with step 5 .*\(yes\) `, toStep)
	r.Stop(t)

	// The next power-on recognises the unfinished re-ownership and continues it.
	r = m.Boot(t, "04-wizard-continued")
	expect(t, r, `did not finish: it stopped after step 4`, toGlint)
	answer(t, r, `Continue or restart\? \[continue/restart\] \(continue\) `, "")
	answer(t, r, `Continue with step 5 .*\(yes\) `, "")
	answer(t, r, `user PIN for OpenPGP card .*: `, userPIN) // the owner wrote it down
	wizardSignAndSeal(t, b, r, fpr, true)

	// The new firmware: the new owner's code (not the vendor's), /boot verified, the OS boots.
	r = m.Boot(t, "05-new-owner-boot")
	firstBootAsNewOwner(t, b, r, vendorURI)

	// The vendor's manifest and sealed TOTP record put back: the vendor's signature is refused
	// (not an owner key any more), the vendor's TOTP secret is gone (the TPM was reset).
	now1 := snapshot(t, m.BootDir, "glint/manifest", "glint/manifest.sig", "glint/sealed/totp.json")
	restore(t, m.BootDir, vendor)
	defer restore(t, m.BootDir, now1)
	r = m.Boot(t, "06-vendor-state-refused")
	expect(t, r, `glint: boot flow starting`, toGlint)
	expect(t, r, `TOTP: unavailable: `, toStep)
	expect(t, r, `TAMPER: .*(?i:signature)`, toStep)
	expect(t, r, `glint> `, toStep)
	b.noKexec(t, r)
	r.Screenshot(t, "own-vendor-refused")
	must(t, r.Send("p"))
	r.Wait(t, toStopped)
	t.Logf("%d boots", ownBoots)
}

// shipByVendor is the vendor's first-boot set-up with its key (the machine's key stick): the
// machine as shipped. It returns the vendor's enrolment URI and its /boot state.
func shipByVendor(t *testing.T, b *bench, scenario string) (string, map[string][]byte) {
	t.Helper()
	m := b.m
	r := m.Boot(t, scenario)
	expect(t, r, `OWNER SET-UP`, toGlint)
	expect(t, r, `Owner key passphrase:`, toStep)
	must(t, r.Send(m.Owner.Passphrase))
	b.confirmSign(t, r)
	uri := expect(t, r, `(otpauth://totp/\S+)\n`, toStep)[1]
	expect(t, r, `Set-up complete\. Press Enter to reboot\.`, toStep)
	must(t, r.Send(""))
	r.Wait(t, toStopped)
	return uri, snapshot(t, m.BootDir, "glint/manifest", "glint/manifest.sig", "glint/sealed/totp.json")
}

// newOwnerPlugsIn: the vendor's stick goes; the new owner's card and an empty USB drive come,
// and the flash chip is reachable (as on a real machine).
func newOwnerPlugsIn(t *testing.T, m *Machine, card string) {
	t.Helper()
	m.Stick = ""
	m.USB = filepath.Join(m.Dir, "usb-drive.img")
	buildUSBStick(t, m.USB)
	m.Card = card
	m.FlashDisk = true
}

// menuReown boots to the menu and chooses R: nothing is reset yet, the machine reboots into the
// wizard.
func menuReown(t *testing.T, b *bench, vendorURI, scenario string) {
	t.Helper()
	b.uri = vendorURI
	r := b.m.Boot(t, scenario)
	b.expectTOTP(t, r)
	expect(t, r, `press Enter for the menu`, toStep)
	must(t, r.Send(""))
	expect(t, r, `glint> `, toStep)
	must(t, r.Send("R"))
	expect(t, r, `Type "yes": `, toStep)
	must(t, r.Send("yes"))
	expect(t, r, `Rebooting into the re-ownership wizard`, toStep)
	r.Wait(t, toStopped)
}

// wizardKeysAndFirmware answers steps 1-4 of the wizard at the console: TPM reset, the key made
// on the card with generated PINs, the firmware written. It returns the user PIN (what the
// owner writes down) and the owner key's fingerprint.
func wizardKeysAndFirmware(t *testing.T, r *Run) (userPIN, fpr string) {
	t.Helper()
	expect(t, r, `RE-OWNERSHIP: the wizard runs before anything else`, toGlint)
	expect(t, r, `OpenPGP card: OpenPGP card \S+ \(test card\)`, toStep)
	answer(t, r, `Continue with step 2 .*\? \[yes/no\] \(yes\) `, "")
	answer(t, r, `Type "reset everything" to reset: `, "reset everything")
	expect(t, r, `TPM cleared\.`, toStep)
	answer(t, r, `Wrong PINs before the TPM locks: \(10\) `, "")
	answer(t, r, `One try comes back after: \(\S+\) `, "")
	answer(t, r, `blocks the reset until: \(reboot\) `, "")
	answer(t, r, `Continue with step 3 .*\(yes\) `, "")
	answer(t, r, `Key on: \[card/memory/file\] \(card\) `, "card")
	answer(t, r, `Key type: .*\(rsa3072\) `, "")
	answer(t, r, `Your name \(in the key\): \(glint owner\) `, "New Owner")
	answer(t, r, `Your e-mail .*\(-\) `, "owner@example.org")
	answer(t, r, `Factory-reset this card\? .*\[yes/no\] `, "yes")
	answer(t, r, `New admin PIN for the card \(Enter: generate one\): `, "")
	expect(t, r, `Your new card admin PIN: (\S+)`, toStep)
	answer(t, r, `New user PIN for the card \(Enter: generate one\): `, "")
	userPIN = expect(t, r, `Your new card user PIN: (\S+)`, toStep)[1]
	fpr = expect(t, r, `Owner key ([0-9A-F]{40}) \(rsa3072, card\)`, toStep)[1]
	expect(t, r, `The TPM now belongs to you`, toStep)
	r.Screenshot(t, "own-keys")
	answer(t, r, `Continue with step 4 .*\(yes\) `, "")
	expect(t, r, `The new firmware changes PCR 7`, toStep)
	answer(t, r, `Write the new firmware to .*\? \[yes/no\] `, "yes")
	expect(t, r, `Firmware written`, toStep)
	return userPIN, fpr
}

// wizardSignAndSeal answers steps 5-6: /boot signed after the list is shown, the TOTP secret
// sealed and shown (its code checked as the phone would compute it, with oathtool), the summary;
// then the machine reboots into the new firmware. b.uri becomes the new owner's.
func wizardSignAndSeal(t *testing.T, b *bench, r *Run, fpr string, resumed bool) {
	t.Helper()
	expect(t, r, `What will be signed`, toStep)
	answer(t, r, `Sign /boot as listed above\? \[yes/no\] `, "yes")
	expect(t, r, `/boot signed: \d+ files, rollback counter \d+`, toStep)
	answer(t, r, `\(issuer\): \(glint\) `, "")
	answer(t, r, `Account \(which machine\): \(-\) `, "my laptop")
	b.uri = expect(t, r, `(otpauth://totp/\S+)\n`, toStep)[1]
	shown := expect(t, r, `TOTP code now: (\d{6})`, toStep)[1]
	r.Screenshot(t, "own-totp")
	phone, err := totpCodes(b.uri, time.Now())
	must(t, err)
	if !slices.Contains(phone, shown) {
		t.Errorf("the wizard shows %s, the phone (oathtool) %v", shown, phone)
	}
	answer(t, r, `Type the code your phone shows .*\(skip\) `, phone[1])
	expect(t, r, `The phone shows the right code\.`, toStep)
	answer(t, r, `Continue with step 6 .*\(yes\) `, "")
	expect(t, r, `This machine is yours\.`, toStep)
	if resumed {
		expect(t, r, `made by the interrupted run and shown then`, toStep)
	} else {
		expect(t, r, `card user PIN: +\S+`, toStep)
	}
	r.Screenshot(t, "own-summary")
	answer(t, r, `Type 'done' when you have written them down: `, "done")
	expect(t, r, `Re-ownership complete \(owner key `+fpr+`\)`, toStep)
	must(t, r.Send(""))
	r.Wait(t, toStopped)
}

// firstBootAsNewOwner: the new firmware shows the new owner's code (oathtool on the wizard's
// URI), not the vendor's, verifies /boot and boots the OS.
func firstBootAsNewOwner(t *testing.T, b *bench, r *Run, vendorURI string) {
	t.Helper()
	expect(t, r, `glint: boot flow starting`, toGlint)
	g := expect(t, r, `TOTP code: (\d{6,8})\s`, toStep)
	now := time.Now()
	want, err := totpCodes(b.uri, now)
	must(t, err)
	old, err := totpCodes(vendorURI, now)
	must(t, err)
	if !slices.Contains(want, g[1]) {
		t.Errorf("the first boot shows %s; the new owner's phone %v", g[1], want)
	}
	if slices.Contains(old, g[1]) {
		t.Errorf("the vendor's code %s is still shown", g[1])
	}
	expect(t, r, `/boot: verified`, toStep)
	r.Screenshot(t, "own-first-boot")
	expect(t, r, `glint: kexec `, toStep)
	expect(t, r, markerOS, toOS)
	expect(t, r, `E2E-OS-DONE`, toStep)
	r.Wait(t, toStopped)
}

// answer waits for a prompt and types the answer.
func answer(t *testing.T, r *Run, prompt, line string) {
	t.Helper()
	expect(t, r, prompt, toStep)
	must(t, r.Send(line))
}

// startCard serves a simulated OpenPGP card (state kept in the machine's directory, so it
// survives power cycles like a token) to QEMU's usb-ccid reader over a unix socket, one
// connection per power-on. It returns the socket.
func startCard(t *testing.T, m *Machine) string {
	t.Helper()
	sim, err := cardsim.New(cardsim.Options{Path: filepath.Join(m.Dir, "card.json"), ATR: cardsim.ATRT0()})
	must(t, err)
	sock := filepath.Join(m.Dir, "card.sock")
	os.Remove(sock)
	l, err := net.Listen("unix", sock)
	must(t, err)
	var wg sync.WaitGroup
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				if err := sim.ServeVSCard(c); err != nil {
					fmt.Fprintf(os.Stderr, "card simulator: %v\n", err)
				}
				sim.PowerOff()
			}()
		}
	}()
	t.Cleanup(func() { l.Close(); wg.Wait() })
	return sock
}
