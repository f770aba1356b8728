//go:build e2e

package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/glint-boot/glint/internal/card"
	"github.com/glint-boot/glint/internal/card/cardsim"
	"github.com/glint-boot/glint/internal/manifest"
	"github.com/glint-boot/glint/internal/ownerauth"
	"github.com/glint-boot/glint/internal/tpm"
)

// Re-ownership on the emulated laptop (issue 18): a machine "shipped" by a vendor (its key in
// the firmware, /boot signed, a TOTP secret sealed, the TPM owned with the vendor's key) is
// re-owned by a new owner with an OpenPGP card: the menu's R, the wizard at the next power-on,
// a power cut in the middle, the wizard continued; then the new firmware boots with the new
// owner's code, and the vendor's signature, TOTP secret and TPM authorisations are refused.
//
// The card is the project's simulator (internal/card/cardsim) on the host, behind QEMU's USB
// CCID reader (usb-ccid + ccid-card-passthru, VSCard protocol): glint in the guest reaches it
// over usbfs, as it would a Nitrokey. The flash chip is the ROM file itself, given to the guest
// as a virtio disk (flash.DiskChip; q35 has no SPI controller): what glint writes there is the
// next power-on's -bios. The new owner's USB drive (key backup, firmware backup) is a FAT stick
// on usb-storage.
//
// Boots: 1 vendor set-up + 1 menu R + 2 wizard (cut after step 4, continued) + 1 the new
// firmware to the OS + 1 the vendor's manifest and TOTP record put back = 6. The TPM
// authorisations are tried on the host against the laptop's TPM while it is off (no boot).
//
// The story runs on both laptops: TestReown on coreboot with a TPM 2.0, TestReownTPM12 on
// coreboot with a TPM 1.2 (the X230/T430 class), 6 boots each. Every boot touches something
// that differs by TPM version, so the TPM 1.2 run keeps the whole story: the reset (TPM 2.0
// TPM2_Clear; TPM 1.2 TPM_OwnerClear or TPM_ForceClear under physical presence, then
// ownership taken again with a new SRK), the owner secret set from the card (TPM 1.2
// TPM_ChangeAuthOwner), the power cut after step 4 (the continued run must derive the TPM 1.2
// owner secret again from the card to define the counter and seal: TPM 1.2 cannot say whether
// it was changed), the sealing (SHA-1 PCRs, TPM_Seal under the new SRK), the vendor's sealed
// secret refused (the old SRK is gone) and the vendor's owner secret refused on the host.
// Covered only on TPM 2.0: the dictionary-attack settings the owner chooses (a TPM 1.2's are
// fixed by its maker: the wizard only says so, and the test checks that it does) and the
// separate lockout hierarchy (TPM 1.2 has one owner secret, which also authorises the lockout
// reset: the test tries the owner secret and, with the new owner's value only, the reset,
// because one wrong TPM_ResetLockValue blocks the right one until the next power-on).

// ownBoots is the number of power-ons each re-ownership story makes.
const ownBoots = 6

func TestReown(t *testing.T) { reownStory(t, CorebootTPM2, "own-tpm2") }

func TestReownTPM12(t *testing.T) { reownStory(t, CorebootTPM1, "own-tpm1") }

// reownStory is the re-ownership story on the laptop with firmware fw.
func reownStory(t *testing.T, fw Firmware, name string) {
	needTools(t, fw)
	if os.Getenv("GLINT_E2E_SERIAL") == "" {
		t.Parallel() // one machine: it shares the two QEMU slots with the other tables
	}
	m := NewMachine(t, fw, name)
	b := &bench{m: m}
	card := startCard(t, m)

	vendorURI, vendor := shipByVendor(t, b, "01-vendor-setup")
	// The vendor's TPM authorisations as the vendor knows them (derived from its key and the
	// TPM as shipped); they work now.
	vendorAuths := []tpm.HierarchyAuth{shippedAuth(t, m)}
	newOwnerPlugsIn(t, m, card)
	menuReown(t, b, vendorURI, "02-menu-reown")

	// The wizard runs first thing at the next power-on. A power cut after step 4: the chip
	// holds the new owner's key, /boot is still the vendor's.
	shipped := readFile(t, m.ROM)
	r := m.Boot(t, "03-wizard")
	userPIN, fpr, backup := wizardKeysAndFirmware(t, r)
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
	expect(t, r, `TOTP: unavailable: .*the TPM was cleared since sealing`, toStep)
	expect(t, r, `TAMPER: .*(?i:signature)`, toStep)
	expect(t, r, `glint> `, toStep)
	b.noKexec(t, r)
	r.Screenshot(t, "own-vendor-refused")
	must(t, r.Send("p"))
	r.Wait(t, toStopped)

	ownerAuthsAfterReown(t, m, userPIN, vendorAuths)

	// The chip's previous contents (the vendor's firmware) are on the new owner's USB drive.
	got := filepath.Join(t.TempDir(), "backup.rom")
	must(t, run("mcopy", "-i", m.USB+"@@1M", "::/"+backup, got))
	if !bytes.Equal(readFile(t, got), shipped) {
		t.Errorf("the firmware backup %s on the USB drive is not the chip as shipped", backup)
	}
	t.Logf("%d boots", ownBoots)
}

// scratchNV is an NV index the host checks define and delete to try the owner hierarchy
// (TPM 2.0: in the owner range). A TPM 1.2 refuses it (TPM_BADINDEX: bits 24-27 of a TPM 1.2
// index are reserved, Main Part 2, 19.1.1), so there scratchNV12, an owner-defined index with
// purview 0 like tpmtotp's 0x4d47.
const (
	scratchNV   = 0x01800F17
	scratchNV12 = 0x00000F17
)

// tryOwner uses a on the owner hierarchy (defines and deletes a scratch index: nothing stays).
func tryOwner(dev tpm.TPM, a tpm.HierarchyAuth) error {
	dev.UseAuth(a)
	idx := uint32(scratchNV)
	if dev.Version() != tpm.Version20 {
		idx = scratchNV12
	}
	if err := dev.NVDefine(tpm.NVSpace{Index: idx, Size: 8}); err != nil {
		return err
	}
	return dev.NVUndefine(idx)
}

// shippedAuth is the vendor's TPM authorisation on the laptop as shipped: derived from the
// vendor's key file and the TPM's identity (ownerauth, as glint does at set-up). It must open
// the owner and lockout hierarchies now, or the refusal afterwards would prove nothing.
// Host-side, no boot.
func shippedAuth(t *testing.T, m *Machine) tpm.HierarchyAuth {
	t.Helper()
	port, stop := hostTPM(t, m)
	defer stop()
	dev, err := tpm.Open("swtpm:tcp:127.0.0.1:" + port)
	must(t, err)
	defer dev.Close()
	id, err := dev.Identity()
	must(t, err)
	a := vendorAuth(t, m, id)
	if err := tryOwner(dev, a); err != nil {
		t.Fatalf("the vendor's own TPM owner authorisation does not work on the shipped laptop: %v", err)
	}
	if err := dev.ResetLockout(); err != nil {
		t.Fatalf("the vendor's own lockout authorisation does not work on the shipped laptop: %v", err)
	}
	return a
}

// vendorAuth derives the vendor's TPM authorisations for the TPM with identity id from the
// vendor's key file (the previous owner still has it).
func vendorAuth(t *testing.T, m *Machine, id *tpm.Identity) tpm.HierarchyAuth {
	t.Helper()
	key, err := os.ReadFile(m.Owner.SecretFile)
	must(t, err)
	k, err := manifest.NewKeySigner(key, []byte(m.Owner.Passphrase))
	must(t, err)
	defer k.Wipe()
	s, err := ownerauth.FromKeyFile(k, id)
	must(t, err)
	a, err := ownerauth.Auth(s, id)
	must(t, err)
	return a
}

// ownerAuthsAfterReown: after the re-ownership, on the host against the laptop's TPM (what the
// previous owner could try with its key, on the machine or after stealing it): the new owner's
// authorisations (the card signs the TPM's challenge with the user PIN) open the owner and
// lockout hierarchies; the vendor's as it knew them, the vendor's derived for the new TPM
// identity, and the factory's empty ones are refused. No boot.
func ownerAuthsAfterReown(t *testing.T, m *Machine, userPIN string, vendorAuths []tpm.HierarchyAuth) {
	t.Helper()
	port, stop := hostTPM(t, m)
	defer stop()
	dev, err := tpm.Open("swtpm:tcp:127.0.0.1:" + port)
	must(t, err)
	defer dev.Close()
	id, err := dev.Identity()
	must(t, err)

	sim, err := cardsim.New(cardsim.Options{Path: filepath.Join(m.Dir, "card.json")})
	must(t, err)
	c, err := card.Open(sim.Transport(true))
	must(t, err)
	s, err := card.NewSigner(c, card.FixedPIN([]byte(userPIN)))
	must(t, err)
	sec, err := ownerauth.FromCard(s, id, nil)
	must(t, err)
	mine, err := ownerauth.Auth(sec, id)
	must(t, err)
	if err := tryOwner(dev, mine); err != nil {
		t.Errorf("the new owner's TPM owner authorisation (from the card) is refused: %v", err)
	}
	// the lockout hierarchy first with the right value: a wrong one blocks it until the TPM restarts
	if err := dev.ResetLockout(); err != nil {
		t.Errorf("the new owner's lockout authorisation (from the card) is refused: %v", err)
	}

	others := map[string]tpm.HierarchyAuth{"factory empty": {Owner: []byte{}, Lockout: []byte{}},
		"vendor's for the new TPM identity": vendorAuth(t, m, id)}
	for i, a := range vendorAuths {
		others[fmt.Sprintf("vendor's as shipped #%d", i+1)] = a
	}
	for name, a := range others {
		var he *tpm.HierarchyAuthError
		if err := tryOwner(dev, a); !errors.As(err, &he) {
			t.Errorf("the %s owner authorisation: %v, want refused for its authorisation", name, err)
		}
		if !m.Firmware.TPM2() {
			// TPM 1.2: the lockout reset takes the owner secret just refused, and one wrong
			// TPM_ResetLockValue would refuse every later one until the next power-on.
			continue
		}
		dev.UseAuth(a)
		if err := dev.ResetLockout(); !errors.As(err, &he) {
			t.Errorf("the %s lockout authorisation: %v, want refused", name, err)
		}
	}
	t.Logf("TPM: the new owner's authorisations work, the vendor's and the factory's are refused")
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
// owner writes down), the owner key's fingerprint and where on the USB drive the chip's
// previous contents were kept. A TPM 2.0's dictionary-attack settings are the owner's choice;
// a TPM 1.2's are fixed by its maker, and the wizard says so.
func wizardKeysAndFirmware(t *testing.T, r *Run) (userPIN, fpr, backup string) {
	t.Helper()
	expect(t, r, `RE-OWNERSHIP: the wizard runs before anything else`, toGlint)
	expect(t, r, `OpenPGP card: OpenPGP card \S+ \(test card\)`, toStep)
	answer(t, r, `Continue with step 2 .*\? \[yes/no\] \(yes\) `, "")
	answer(t, r, `Type "reset everything" to reset: `, "reset everything")
	expect(t, r, `TPM cleared\.`, toStep)
	if r.m.Firmware.TPM2() {
		answer(t, r, `Wrong PINs before the TPM locks: \(10\) `, "")
		answer(t, r, `One try comes back after: \(\S+\) `, "")
		answer(t, r, `blocks the reset until: \(reboot\) `, "")
	} else {
		expect(t, r, `TPM 1\.2: the dictionary-attack lockout is fixed by the TPM's maker`, toStep)
	}
	answer(t, r, `Continue with step 3 .*\(yes\) `, "")
	answer(t, r, `Key on: \[card/memory/file\] \(card\) `, "card")
	answer(t, r, `Key type: .*\(rsa3072\) `, "")
	answer(t, r, `Your name \(in the key\): \(glint owner\) `, "New Owner")
	answer(t, r, `Your e-mail .*\(-\) `, "owner@example.org")
	answer(t, r, `Factory-reset this card\? .*\[yes/no\] `, "yes")
	answer(t, r, `New admin PIN for the card \(Enter: generate one\): `, "")
	expect(t, r, `Your new card admin PIN: (\S+)\s`, toStep)
	answer(t, r, `New user PIN for the card \(Enter: generate one\): `, "")
	userPIN = expect(t, r, `Your new card user PIN: (\S+)\s`, toStep)[1]
	fpr = expect(t, r, `Owner key ([0-9A-F]{40}) \(rsa3072, card\)`, toStep)[1]
	if r.m.Firmware.TPM2() {
		expect(t, r, `The TPM now belongs to you: its owner and lockout authorisations come from`, toStep)
	} else {
		expect(t, r, `The TPM now belongs to you: its owner secret \(on a TPM 1\.2 the only one`, toStep)
	}
	r.Screenshot(t, "own-keys")
	answer(t, r, `Continue with step 4 .*\(yes\) `, "")
	expect(t, r, `The new firmware changes PCR 7`, toStep)
	answer(t, r, `Write the new firmware to .*\? \[yes/no\] `, "yes")
	backup = expect(t, r, `backup kept: /run/glint/usb/(glint-firmware-backups/\S+\.rom) `, toStep)[1]
	expect(t, r, `Firmware written`, toStep)
	return userPIN, fpr, backup
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
