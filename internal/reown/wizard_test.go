package reown

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/glint-boot/glint/internal/card"
	"github.com/glint-boot/glint/internal/manifest"
	"github.com/glint-boot/glint/internal/otp"
	"github.com/glint-boot/glint/internal/ownerauth"
	"github.com/glint-boot/glint/internal/rom"
	"github.com/glint-boot/glint/internal/sealed"
	"github.com/glint-boot/glint/internal/tpm"
)

// The vendor's set-up of a machine it ships: its own key in a file, /boot
// signed, a TOTP secret sealed, the TPM owned with the vendor's key. It is
// made with the wizard itself (file keys), then an approval key of the
// vendor's is added to the firmware, as firmware updates use.
const vendorAnswers = `confirm = reset everything
keys = file
key.type = ed25519
key.name = Vendor
key.email = factory@vendor.example
key.passphrase = vendor passphrase 1234
backup.dir = %s
firmware.flash = yes
sign = yes
totp.account = vendor
summary = done
`

const cardAnswers = `resume = continue
confirm = reset everything
keys = card
key.type = rsa2048
key.name = New Owner
key.email = owner@example.org
card.reset = yes
card.user-pin = 246813
card.admin-pin = 97531864
firmware.config = keep
firmware.flash = yes
sign = yes
totp.account = my laptop
summary = done
`

type shipped struct {
	vendorASC  []byte
	vendorCode string
	vendorKey  *manifest.KeySigner
	manifest   []byte
	totpRecord []byte
}

// ship makes the bench a machine as a vendor ships it.
func (b *bench) ship() *shipped {
	b.t.Helper()
	vdir := filepath.Join(b.t.TempDir(), "vendor")
	os.MkdirAll(vdir, 0o755)
	log, err := b.run(strings.Replace(vendorAnswers, "%s", vdir, 1), false)
	if err != nil {
		b.t.Fatalf("vendor set-up: %v\n%s", err, log)
	}
	m := codeRE.FindStringSubmatch(log)
	if m == nil {
		b.t.Fatalf("no code shown:\n%s", log)
	}
	// The vendor's approval key among the owner files.
	img, err := rom.FromFile(b.rom)
	if err != nil {
		b.t.Fatal(err)
	}
	img, err = img.AddFile("COREBOOT", rom.OwnerFilePrefix+"approval.pem", []byte("-----BEGIN PUBLIC KEY-----\nvendor\n-----END PUBLIC KEY-----\n"), rom.AddOptions{})
	if err != nil {
		b.t.Fatal(err)
	}
	write(b.t, b.rom, img.Data)
	secret, err := os.ReadFile(filepath.Join(vdir, SecretKeyFile))
	if err != nil {
		b.t.Fatal(err)
	}
	k, err := manifest.NewKeySigner(secret, []byte("vendor passphrase 1234"))
	if err != nil {
		b.t.Fatal(err)
	}
	sh := &shipped{vendorASC: b.keyring(), vendorCode: m[1], vendorKey: k}
	sh.manifest, _ = os.ReadFile(filepath.Join(b.bootDir, "glint", "manifest"))
	sh.totpRecord, _ = os.ReadFile(filepath.Join(b.bootDir, "glint", "sealed", "totp.json"))
	if len(sh.manifest) == 0 || len(sh.totpRecord) == 0 {
		b.t.Fatal("the vendor's set-up left no manifest or TOTP record")
	}
	return sh
}

// checkReowned asserts everything the issue asks of a re-owned machine.
//
// The code shown must be the next boot's at one of the times given (the
// bench's clock when none).
func (b *bench) checkReowned(sh *shipped, log string, at ...time.Time) {
	t := b.t
	t.Helper()
	files := b.ownerFiles()
	if bytes.Equal(files[rom.OwnerKeyFile], sh.vendorASC) {
		t.Fatal("the firmware still holds the vendor's key")
	}
	if _, ok := files["approval.pem"]; ok {
		t.Fatal("the vendor's approval key is still in the firmware")
	}
	dev, st := b.nextBoot()
	// The owner's signature is accepted.
	if err := b.verifyBoot(dev); err != nil {
		t.Fatalf("/boot does not verify with the new owner's key: %v", err)
	}
	// The new code is the one shown, and not the vendor's.
	m := codeRE.FindAllStringSubmatch(log, -1)
	if m == nil {
		t.Fatalf("no code shown:\n%s", log)
	}
	shown := m[len(m)-1][1]
	rec, err := sealed.LoadTOTP(b.bootDir)
	if err != nil {
		t.Fatal(err)
	}
	sec, err := st.UnsealTOTP(rec)
	if err != nil {
		t.Fatalf("the TOTP secret does not unseal at the next boot: %v", err)
	}
	if len(at) == 0 {
		at = []time.Time{b.now}
	}
	var codes []string
	for _, when := range at {
		code, _ := otp.TOTP(otp.SHA1, sec, when, 30*time.Second, 6)
		codes = append(codes, otp.FormatCode(code, 6))
	}
	if !slices.Contains(codes, shown) {
		t.Fatalf("next boot's code %v, the wizard showed %s", codes, shown)
	}
	if shown == sh.vendorCode {
		t.Fatal("the new owner's code is the vendor's")
	}
	// The vendor's sealed secret is gone for good: its record, put back,
	// does not unseal.
	write(t, filepath.Join(b.bootDir, "glint", "sealed", "totp.json"), sh.totpRecord)
	if rec, err := sealed.LoadTOTP(b.bootDir); err == nil {
		if _, err := st.UnsealTOTP(rec); err == nil {
			t.Fatal("the vendor's TOTP secret still unseals")
		}
	}
	// The vendor's manifest, put back, is refused (the vendor's key is no
	// longer an owner key).
	good, _ := os.ReadFile(filepath.Join(b.bootDir, "glint", "manifest"))
	goodSig, _ := os.ReadFile(filepath.Join(b.bootDir, "glint", "manifest.sig"))
	vsig, err := sh.vendorKey.Sign(sh.manifest)
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(b.bootDir, "glint", "manifest"), sh.manifest)
	write(t, filepath.Join(b.bootDir, "glint", "manifest.sig"), vsig)
	if err := b.verifyBoot(dev); err == nil {
		t.Fatal("a manifest signed by the vendor's key verifies")
	}
	write(t, filepath.Join(b.bootDir, "glint", "manifest"), good)
	write(t, filepath.Join(b.bootDir, "glint", "manifest.sig"), goodSig)
	// The vendor's key no longer administers the TPM.
	id, err := dev.Identity()
	if err != nil {
		t.Fatal(err)
	}
	vsec, err := ownerauth.FromKeyFile(sh.vendorKey, id)
	if err != nil {
		t.Fatal(err)
	}
	vauth, err := ownerauth.Auth(vsec, id)
	if err != nil {
		t.Fatal(err)
	}
	dev.UseAuth(vauth)
	if err := administer(dev, 0x01804760); err == nil {
		t.Fatal("the vendor's key still administers the TPM")
	}
	// The journal says it is complete.
	if j, pending := Pending(b.bootDir); pending || j == nil || !j.Complete() {
		t.Fatalf("journal not complete: %+v", j)
	}
}

// TestReownWithCard: a vendor-shipped machine re-owned with an OpenPGP
// card (the simulator), TPM 2.0 and 1.2.
func TestReownWithCard(t *testing.T) {
	for _, v := range []tpm.Version{tpm.Version20, tpm.Version12} {
		t.Run(v.String(), func(t *testing.T) {
			b := newBench(t, v)
			sh := b.ship()
			log, err := b.run(cardAnswers, true)
			if err != nil {
				t.Fatalf("re-ownership: %v\n%s", err, log)
			}
			b.checkReowned(sh, log)
			if want := "The TPM now belongs to you: " + ownedWhat(v); !strings.Contains(log, want) {
				t.Errorf("the wizard does not say %q:\n%s", want, log)
			}
			if tpm12 := strings.Contains(log, "TPM 1.2: the dictionary-attack lockout is fixed"); tpm12 != (v == tpm.Version12) || strings.Contains(log, "Wrong PINs before the TPM locks") == tpm12 {
				t.Errorf("TPM %s: the PIN-lockout questions are not asked exactly on TPM 2.0:\n%s", v, log)
			}
			// The card administers the TPM in a later session.
			dev := b.openTPM()
			c, err := card.Open(b.sim.Transport(true))
			if err != nil {
				t.Fatal(err)
			}
			s, err := card.NewSigner(c, card.FixedPIN([]byte("246813")))
			if err != nil {
				t.Fatal(err)
			}
			id, _ := dev.Identity()
			sec, err := ownerauth.FromCard(s, id, nil)
			if err != nil {
				t.Fatal(err)
			}
			auth, _ := ownerauth.Auth(sec, id)
			dev.UseAuth(auth)
			if err := administer(dev, 0x01804761); err != nil {
				t.Fatalf("the new owner's card does not administer the TPM: %v", err)
			}
			if strings.Contains(log, "246813") {
				t.Fatal("a PIN from the answers file was echoed")
			}
		})
	}
}

// TestReownGeneratesSecrets: PINs and the backup passphrase made by the
// wizard (Diceware words) appear in the summary; the key made in memory
// is on the card and in the encrypted backup, which opens with the
// generated passphrase and administers the TPM like the card.
func TestReownGeneratesSecrets(t *testing.T) {
	b := newBench(t, tpm.Version20)
	b.ship()
	answers := strings.NewReplacer("keys = card", "keys = memory", "card.user-pin = 246813", "card.user-pin = generate",
		"card.admin-pin = 97531864", "card.admin-pin = generate", "key.type = rsa2048", "key.type = rsa2048\nkey.passphrase = generate\nbackup.dir = "+b.usb).Replace(cardAnswers)
	log, err := b.run(answers, true)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	sum := log[strings.LastIndex(log, "This machine is yours."):]
	var pass []byte
	for _, what := range []string{"card admin PIN", "card user PIN", "key file passphrase"} {
		i := strings.Index(sum, what+":")
		if i < 0 {
			t.Fatalf("the summary does not show the %s:\n%s", what, sum)
		}
		v := strings.Fields(sum[i+len(what)+1:])[0]
		if strings.Count(v, "-") < 1 {
			t.Fatalf("%s %q is not Diceware words", what, v)
		}
		if what == "key file passphrase" {
			pass = []byte(v)
		}
	}
	backup, err := os.ReadFile(filepath.Join(b.usb, SecretKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	k, err := manifest.NewKeySigner(backup, pass)
	if err != nil {
		t.Fatalf("the backup does not open with the generated passphrase: %v", err)
	}
	dev := b.openTPM()
	id, _ := dev.Identity()
	sec, err := ownerauth.FromKeyFile(k, id)
	if err != nil {
		t.Fatal(err)
	}
	auth, _ := ownerauth.Auth(sec, id)
	dev.UseAuth(auth)
	if err := administer(dev, 0x01804762); err != nil {
		t.Fatalf("the backup does not administer the TPM the card took: %v", err)
	}
}

// TestDeclinedResetChangesNothing: the owner does not type the phrase; the
// TPM, /boot and the firmware are as they were.
func TestDeclinedResetChangesNothing(t *testing.T) {
	b := newBench(t, tpm.Version20)
	sh := b.ship()
	romBefore, _ := os.ReadFile(b.rom)
	dev := b.openTPM()
	idBefore, _ := dev.Identity()
	log, err := b.run(strings.Replace(cardAnswers, "confirm = reset everything", "confirm = no", 1), true)
	if !errors.Is(err, ErrDeclined) {
		t.Fatalf("want ErrDeclined, got %v\n%s", err, log)
	}
	romAfter, _ := os.ReadFile(b.rom)
	idAfter, _ := dev.Identity()
	if !bytes.Equal(romBefore, romAfter) || idBefore.String() != idAfter.String() {
		t.Fatal("something changed")
	}
	if m, _ := os.ReadFile(filepath.Join(b.bootDir, "glint", "manifest")); !bytes.Equal(m, sh.manifest) {
		t.Fatal("the manifest changed")
	}
}

func TestAnswersMissingKeyNamesIt(t *testing.T) {
	b := newBench(t, tpm.Version20)
	log, err := b.run("confirm = reset everything\nkeys = card\n", true)
	if !errors.Is(err, ErrNoAnswer) || !strings.Contains(err.Error(), KeyCardReset) {
		t.Fatalf("want a missing-answer error naming %s, got %v\n%s", KeyCardReset, err, log)
	}
}

// administer runs a command that needs the TPM owner's authorisation:
// defining an NV index (TPM 2.0 owner hierarchy, which is not guarded
// against guessing), resetting the lockout (TPM 1.2 owner secret).
func administer(dev tpm.TPM, index uint32) error {
	if dev.Version() == tpm.Version12 {
		return dev.ResetLockout()
	}
	return dev.NVDefine(tpm.NVSpace{Index: index, Size: 8})
}
