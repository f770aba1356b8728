package reown

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/eddsa"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/glint-boot/glint/internal/card"
	"github.com/glint-boot/glint/internal/diceware"
	"github.com/glint-boot/glint/internal/manifest"
	"github.com/glint-boot/glint/internal/ownerauth"
	"github.com/glint-boot/glint/internal/safefile"
	"github.com/glint-boot/glint/internal/secret"
	"github.com/glint-boot/glint/internal/tpm"
)

// Where the owner's private key lives.
const (
	// WhereCard: made on the OpenPGP card; it never leaves it.
	WhereCard = "card"
	// WhereMemory: made in glint's memory, written to the card, and kept
	// as a passphrase-protected backup on a USB drive.
	WhereMemory = "memory"
	// WhereFile: no dongle; a passphrase-protected key file on a USB drive
	// (the key stick glint asks for when the owner must sign).
	WhereFile = "file"
)

// Key files the wizard writes to the backup directory; the boot flow looks
// for SecretKeyFile on USB drives when the owner signs with a key file.
const (
	SecretKeyFile = "owner-secret.asc"
	PublicKeyFile = "owner.asc"
)

// Strengths of what the wizard generates (package diceware).
const (
	userPINWords    = 2
	adminPINWords   = 3
	passphraseWords = 6
)

// keys is step 3: the owner's key (on the card, in memory then on the card
// with a backup, or in a key file), then the TPM's owner and lockout
// authorisations derived from it (package ownerauth). A run that stopped
// after the key was made reuses it; the authorisations are set once.
func (s *session) keys(ctx context.Context) error {
	if !s.j.Has(MarkKeysMade) {
		if err := s.makeKeys(); err != nil {
			return err
		}
		if err := s.markDone(MarkKeysMade); err != nil {
			return err
		}
	}
	return s.takeTPM()
}

// makeKeys asks where the key goes and makes it.
func (s *session) makeKeys() error {
	w := s.w
	def := WhereFile
	if w.OpenCard != nil {
		if c, _, err := w.OpenCard(); err == nil {
			c.Close()
			def = WhereCard
		}
	}
	w.say(`Where should your signing key live?
  card    made on your security key (Nitrokey, YubiKey, Librem Key, any
          OpenPGP card); it never leaves it. Lose the card, lose the key.
  memory  made here, copied to the card, and an encrypted backup written to a
          USB drive (keep the drive somewhere safe, away from the machine).
  file    no security key: a passphrase-protected key file on a USB drive.
`)
	a, err := w.UI.Ask(Question{Key: KeyKeys, Prompt: "Key on: ", Choices: []string{WhereCard, WhereMemory, WhereFile}, Default: def})
	if err != nil {
		return err
	}
	where := string(a)
	defType := "rsa3072"
	if where == WhereFile {
		defType = "ed25519" // made in this machine's memory: instant, where RSA takes long under emulation
	}
	types := []string{"rsa2048", "rsa3072", "rsa4096", "ed25519"}
	if where == WhereCard {
		types = append(types, "nistp256")
	}
	t, err := w.UI.Ask(Question{Key: KeyKeyType, Prompt: "Key type: ", Choices: types, Default: defType})
	if err != nil {
		return err
	}
	name, err := w.UI.Ask(Question{Key: KeyKeyName, Prompt: "Your name (in the key): ", Default: "glint owner"})
	if err != nil {
		return err
	}
	email, err := w.UI.Ask(Question{Key: KeyKeyEmail, Prompt: "Your e-mail (in the key, may stay empty): ", Default: "-"})
	if err != nil {
		return err
	}
	uid := string(name)
	if e := string(email); e != "-" && e != "" {
		uid += " <" + e + ">"
	}
	switch where {
	case WhereCard:
		err = s.cardKey(string(t), uid)
	case WhereMemory, WhereFile:
		err = s.softKey(where, string(t), uid)
	}
	if err != nil {
		return err
	}
	s.j.KeysWhere = where
	s.j.Fingerprint = hex.EncodeToString(s.keyring[0].PrimaryKey.Fingerprint)
	if err := w.writable(func() error {
		return safefile.Write(s.journalPath(OwnerKeyFile), s.ownerASC, 0o644)
	}); err != nil {
		return err
	}
	w.say("Owner key %X (%s, %s).\n", s.keyring[0].PrimaryKey.Fingerprint, t, where)
	return nil
}

// cardKey factory-resets the card, sets new PINs and generates the key on
// the card.
func (s *session) cardKey(alg, uid string) error {
	w := s.w
	a, err := card.ParseAlgorithmName(alg)
	if err != nil {
		return err
	}
	c, err := s.resetCard()
	if err != nil {
		return err
	}
	if a.ID == card.AlgRSA && a.RSABits >= 4096 {
		w.say("Generating an RSA-4096 key on the card: real tokens take from 20 seconds to several minutes. Leave it plugged in.\n")
	} else {
		w.say("Generating the %s key on the card...\n", a)
	}
	user := s.cardUserPIN()
	_, pub, err := c.GenerateOwnerKey(card.GenerateOptions{Algorithm: a, UserID: uid, AdminPIN: s.adminPIN, Prompt: card.FixedPIN(user), Now: w.Now})
	if err != nil {
		return fmt.Errorf("generate the key on the card: %w", err)
	}
	return s.useCard(c, pub)
}

// resetCard factory-resets the owner's card (after asking) and sets the
// new user and admin PINs.
func (s *session) resetCard() (*card.Card, error) {
	w := s.w
	if w.OpenCard == nil {
		return nil, errors.New("this glint cannot reach OpenPGP cards")
	}
	c, where, err := w.OpenCard()
	if err != nil {
		return nil, fmt.Errorf("no OpenPGP card: %w", err)
	}
	st, err := c.Status()
	if err != nil {
		c.Close()
		return nil, err
	}
	w.say("Card: %s on %s; %s\n", c.Label(), where, describeCardKeys(st))
	ok, err := yes(w.UI, KeyCardReset, "Factory-reset this card? Its keys and PINs are erased for good: ", "")
	if err == nil && !ok {
		err = fmt.Errorf("%w: the card was not reset", ErrDeclined)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	// Without the old admin PIN: both PINs are blocked on purpose first,
	// as gpg's factory-reset does, so a card whose PINs nobody knows is
	// reset too.
	if err := c.FactoryReset(nil); err != nil {
		c.Close()
		return nil, fmt.Errorf("factory-reset the card: %w", err)
	}
	s.j.CardSerial = c.App().AID.SerialString()
	pw, _ := c.PINStatus()
	admin, err := s.newSecret(Question{Key: KeyCardAdminPIN, Prompt: "New admin PIN for the card (Enter: generate one): "}, "card admin PIN", adminPINWords, card.MinPW3Length, pw.MaxPW3)
	if err != nil {
		c.Close()
		return nil, err
	}
	user, err := s.newSecret(Question{Key: KeyCardUserPIN, Prompt: "New user PIN for the card (Enter: generate one): "}, "card user PIN", userPINWords, card.MinPW1Length, pw.MaxPW1)
	if err != nil {
		secret.Wipe(admin)
		c.Close()
		return nil, err
	}
	defer secret.Wipe(user)
	if err := c.ChangePIN(card.PW3, card.DefaultPW3, admin); err != nil {
		c.Close()
		return nil, fmt.Errorf("set the admin PIN: %w", err)
	}
	if err := c.ChangePIN(card.PW1Sign, card.DefaultPW1, user); err != nil {
		c.Close()
		return nil, fmt.Errorf("set the user PIN: %w", err)
	}
	s.adminPIN = admin
	s.userPIN = bytes.Clone(user)
	w.say("Card reset; new PINs set.\n")
	return c, nil
}

func describeCardKeys(st *card.Status) string {
	if st.Keys[card.SlotSign].Present() {
		return fmt.Sprintf("it holds a signature key %X", st.Keys[card.SlotSign].Fingerprint)
	}
	return "it holds no signature key"
}

// cardUserPIN is the user PIN this run set or was given.
func (s *session) cardUserPIN() []byte { return s.userPIN }

// useCard makes the card's key the owner key of this run.
func (s *session) useCard(c *card.Card, pub []byte) error {
	kr, err := manifest.ReadKeyring(pub)
	if err != nil {
		return fmt.Errorf("the card's public key: %w", err)
	}
	sig, err := card.NewSigner(c, s.cardPINPrompt())
	if err != nil {
		return err
	}
	s.cardConn, s.cardSig, s.ownerASC, s.keyring = c, sig, pub, kr
	return nil
}

// cardPINPrompt gives the card the user PIN known to this run, else asks
// (a resumed run: the owner types the PIN they wrote down).
func (s *session) cardPINPrompt() card.PINPrompt {
	return func(r card.PINRequest) ([]byte, error) {
		if s.userPIN != nil && !r.Retry {
			return bytes.Clone(s.userPIN), nil
		}
		v, err := s.w.UI.Ask(Question{Key: KeyCardUserPIN, Prompt: r.Prompt(), Secret: true})
		if err != nil {
			return nil, err
		}
		if string(v) == keyValueGenerate {
			return nil, errors.New("the card's user PIN was generated by an earlier, interrupted run and shown then: give it (card.user-pin in the answers file), or restart the wizard")
		}
		secret.Wipe(s.userPIN)
		s.userPIN = bytes.Clone(v)
		return v, nil
	}
}

// softKey makes the key in memory (RSA or Ed25519), writes the encrypted
// backup and the public key to a USB drive and, for WhereMemory, puts the
// key on the card.
func (s *session) softKey(where, alg, uid string) error {
	w := s.w
	cfg, err := softKeyConfig(alg)
	if err != nil {
		return err
	}
	dir, err := s.backupDir()
	if err != nil {
		return err
	}
	if strings.HasPrefix(alg, "rsa") {
		w.say("Making a %s key (this takes a while on slow or emulated machines)...\n", alg)
	}
	cfg.Rand = w.Rand
	cfg.Time = w.Now
	name, email := splitUID(uid)
	e, err := openpgp.NewEntity(name, "", email, cfg)
	if err != nil {
		return fmt.Errorf("make the key: %w", err)
	}
	priv, err := cardSigner(e)
	if err != nil {
		return err
	}
	pass, err := s.newSecret(Question{Key: KeyPassphrase, Prompt: "Passphrase for the key file (Enter: generate one): "}, "key file passphrase", passphraseWords, 12, 0)
	if err != nil {
		return err
	}
	defer secret.Wipe(pass)
	pub, err := armorPublic(e)
	if err != nil {
		return err
	}
	if where == WhereMemory {
		c, err := s.resetCard()
		if err != nil {
			return err
		}
		if err := c.Verify(card.PW3, s.adminPIN); err != nil {
			c.Close()
			return err
		}
		if err := c.ImportKey(card.SlotSign, priv); err != nil {
			c.Close()
			return fmt.Errorf("copy the key to the card: %w", err)
		}
		if err := c.WriteKeyMetadata(card.SlotSign, e.PrimaryKey.Fingerprint, e.PrimaryKey.CreationTime); err != nil {
			c.Close()
			return err
		}
		if err := s.useCard(c, pub); err != nil {
			c.Close()
			return err
		}
	}
	if err := e.EncryptPrivateKeys(pass, nil); err != nil {
		return err
	}
	backup, err := armorPrivate(e)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
		perm os.FileMode
	}{{SecretKeyFile, backup, 0o600}, {PublicKeyFile, pub, 0o644}} {
		if err := safefile.Write(filepath.Join(dir, f.name), f.data, f.perm); err != nil {
			return fmt.Errorf("write %s to %s: %w", f.name, dir, err)
		}
	}
	s.j.BackupDir = dir
	w.say("Wrote %s (your key, encrypted with the passphrase) and %s (public) to %s.\n", SecretKeyFile, PublicKeyFile, dir)
	if where == WhereFile {
		ks, err := manifest.NewKeySigner(backup, pass)
		if err != nil {
			return fmt.Errorf("the key file just written does not open: %w", err)
		}
		s.fileSig = ks
		s.ownerASC = pub
		s.keyring, err = manifest.ReadKeyring(pub)
		return err
	}
	return nil
}

// backupDir asks where the key files go.
func (s *session) backupDir() (string, error) {
	w := s.w
	a, err := w.UI.Ask(Question{Key: KeyBackupDir, Prompt: "Directory on a USB drive for the key files: ", Default: w.DefaultBackupDir})
	if err != nil {
		return "", err
	}
	dir := string(a)
	if err := probeWrite(dir); err != nil {
		return "", fmt.Errorf("the key files cannot be written to %s: %w", dir, err)
	}
	os.Remove(filepath.Join(dir, JournalDir))
	os.Remove(filepath.Join(dir, "glint"))
	return dir, nil
}

func softKeyConfig(alg string) (*packet.Config, error) {
	switch alg {
	case "rsa2048", "rsa3072", "rsa4096":
		bits := map[string]int{"rsa2048": 2048, "rsa3072": 3072, "rsa4096": 4096}[alg]
		return &packet.Config{Algorithm: packet.PubKeyAlgoRSA, RSABits: bits, DefaultHash: crypto.SHA256}, nil
	case "ed25519":
		return &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, Curve: packet.Curve25519, DefaultHash: crypto.SHA256}, nil
	}
	return nil, fmt.Errorf("a key made in memory is RSA or Ed25519, not %s (its TPM authorisation must come from a deterministic signature: package ownerauth)", alg)
}

// cardSigner is the primary key as the card's key import takes it.
func cardSigner(e *openpgp.Entity) (crypto.Signer, error) {
	switch k := e.PrivateKey.PrivateKey.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *eddsa.PrivateKey:
		return ed25519.NewKeyFromSeed(k.D), nil
	}
	return nil, fmt.Errorf("unexpected key type %T", e.PrivateKey.PrivateKey)
}

func splitUID(uid string) (name, email string) {
	name = uid
	if i := strings.Index(uid, " <"); i >= 0 && strings.HasSuffix(uid, ">") {
		name, email = uid[:i], uid[i+2:len(uid)-1]
	}
	return name, email
}

func armorPublic(e *openpgp.Entity) ([]byte, error) {
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		return nil, err
	}
	if err := e.Serialize(w); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

func armorPrivate(e *openpgp.Entity) ([]byte, error) {
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PrivateKeyType, nil)
	if err != nil {
		return nil, err
	}
	if err := e.SerializePrivateWithoutSigning(w, nil); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// newSecret asks for a new PIN or passphrase; "generate" (the default)
// makes one of words Diceware words, or digits when words would not fit
// the card's maximum (0: no maximum). A generated one is shown at once and
// again in the summary.
func (s *session) newSecret(q Question, what string, words, minLen, maxLen int) ([]byte, error) {
	q.Secret, q.Default, q.Twice = true, keyValueGenerate, true
	for try := 0; try < 3; try++ {
		v, err := s.w.UI.Ask(q)
		if err != nil {
			return nil, err
		}
		generated := string(v) == keyValueGenerate
		if generated {
			secret.Wipe(v)
			if v, err = diceware.Words(s.w.Rand, words); err != nil {
				return nil, err
			}
			if maxLen > 0 && len(v) > maxLen {
				secret.Wipe(v)
				if v, err = diceware.Digits(s.w.Rand, max(minLen, 8)); err != nil {
					return nil, err
				}
			}
			s.w.say("Your new %s: %s\n  (write it down now; the summary shows it again)\n", what, v)
		}
		if len(v) < minLen || (maxLen > 0 && len(v) > maxLen) {
			s.w.say("A %s has %d to %d characters.\n", what, minLen, maxLen)
			secret.Wipe(v)
			continue
		}
		if generated {
			s.keep(what, v)
		} else {
			// Chosen by the owner (typed, or in the answers file): the
			// summary names it without showing it again.
			s.keep(what, []byte("(the one you chose)"))
		}
		return v, nil
	}
	return nil, fmt.Errorf("no acceptable %s", what)
}

// ensureOwner loads the owner key of an earlier run of step 3 (a resumed
// run): the public key from the journal's directory, and a signer: the
// card holding that key, or the key file with its passphrase.
func (s *session) ensureOwner() error {
	if s.keyring != nil {
		return nil
	}
	w := s.w
	pub, err := safefile.ReadCapped(s.journalPath(OwnerKeyFile), 1<<20)
	if err != nil {
		return fmt.Errorf("the owner key made by the interrupted run (%s): %w; restart the wizard", s.journalPath(OwnerKeyFile), err)
	}
	kr, err := manifest.ReadKeyring(pub)
	if err != nil || len(kr) == 0 {
		return fmt.Errorf("the owner key made by the interrupted run cannot be read (%v); restart the wizard", err)
	}
	if hex.EncodeToString(kr[0].PrimaryKey.Fingerprint) != s.j.Fingerprint {
		return errors.New("the owner key on /boot is not the one the journal names: restart the wizard")
	}
	s.ownerASC, s.keyring = pub, kr
	switch s.j.KeysWhere {
	case WhereCard, WhereMemory:
		if w.OpenCard == nil {
			return errors.New("the owner key is on a card, and this glint cannot reach cards")
		}
		c, _, err := w.OpenCard()
		if err != nil {
			return fmt.Errorf("plug in the card holding owner key %X: %w", kr[0].PrimaryKey.Fingerprint, err)
		}
		sig, err := card.NewSigner(c, s.cardPINPrompt())
		if err == nil && !bytes.Equal(sig.Key().Fingerprint(), kr[0].PrimaryKey.Fingerprint) {
			err = fmt.Errorf("this card holds key %X, not the owner key %X made by the interrupted run", sig.Key().Fingerprint(), kr[0].PrimaryKey.Fingerprint)
		}
		if err != nil {
			c.Close()
			return err
		}
		s.cardConn, s.cardSig = c, sig
	case WhereFile:
		b, err := safefile.ReadCapped(filepath.Join(s.j.BackupDir, SecretKeyFile), 1<<20)
		if err != nil {
			a, aerr := w.UI.Ask(Question{Key: KeyBackupDir, Prompt: "Directory holding " + SecretKeyFile + ": ", Default: w.DefaultBackupDir})
			if aerr != nil {
				return fmt.Errorf("%v; %w", err, aerr)
			}
			if b, err = safefile.ReadCapped(filepath.Join(string(a), SecretKeyFile), 1<<20); err != nil {
				return err
			}
		}
		pass, err := w.UI.Ask(Question{Key: KeyPassphrase, Prompt: "Passphrase of the key file: ", Secret: true})
		if err != nil {
			return err
		}
		defer secret.Wipe(pass)
		ks, err := manifest.NewKeySigner(b, pass)
		if err != nil {
			return err
		}
		if !bytes.Equal(ks.Fingerprint(), kr[0].PrimaryKey.Fingerprint) {
			wipeKey(ks)
			return errors.New("that key file holds another key than the owner key made by the interrupted run")
		}
		s.fileSig = ks
	default:
		return fmt.Errorf("the journal names no key location (%q): restart the wizard", s.j.KeysWhere)
	}
	return nil
}

// signer is the owner's signer for /boot.
func (s *session) signer() manifest.Signer {
	if s.cardSig != nil {
		return s.cardSig
	}
	return s.fileSig
}

// takeTPM sets the TPM's owner and lockout authorisations from the owner
// key (or, resumed after that, gives the TPM handle the same values). The
// TPM must be the one step 2 reset.
func (s *session) takeTPM() error {
	w := s.w
	if err := s.ensureOwner(); err != nil {
		return err
	}
	id, err := w.TPM.Identity()
	if err != nil {
		return fmt.Errorf("read the TPM's identity: %w", err)
	}
	if id.String() != s.j.TPMIdentity {
		return fmt.Errorf("this TPM (%s) is not the one step 2 reset (%s): it was reset or replaced since; restart the wizard", id.Short(), s.j.TPMIdentity)
	}
	sec, method, err := s.ownerSecret(id)
	if err != nil {
		return err
	}
	auth, err := ownerauth.Auth(sec, id)
	if err != nil {
		return err
	}
	s.auth = auth
	if s.j.Has(MarkKeysTPM) {
		w.TPM.UseAuth(auth)
		return nil
	}
	// The method first, durably: a run resumed after the authorisations
	// were set must ask for the same passphrase, not make a new one.
	s.j.AuthMethod = method
	if err := s.w.writable(func() error { return s.j.save(w.BootDir, w.now()) }); err != nil {
		return err
	}
	if marks, err := w.TPM.SetupMarks(manifest.DefaultCounterIndex); err == nil && (marks.OwnerAuth || marks.LockoutAuth) {
		// Set already: by an interrupted run of this step, from this key
		// (or a passphrase typed again). Prove it with the owner
		// hierarchy, which is not guarded against guessing, before the
		// lockout hierarchy is touched (a wrong guess there blocks it).
		w.TPM.UseAuth(auth)
		if err := probeOwnerAuth(w.TPM); err != nil {
			return fmt.Errorf("the TPM's authorisations were set by an interrupted run, and not from this key (%v): restart the wizard, which resets the TPM again", err)
		}
	}
	err = w.TPM.SetHierarchyAuth(auth)
	if errors.Is(err, tpm.ErrAuthFail) && w.TPM.Version() == tpm.Version12 {
		// TPM 1.2 cannot say whether the owner secret was changed already.
		w.TPM.UseAuth(auth)
		err = w.TPM.SetHierarchyAuth(auth)
	}
	if err != nil {
		return fmt.Errorf("set the TPM's owner authorisations: %w", err)
	}
	w.say("The TPM now belongs to you: %s from %s.\n", ownedWhat(w.TPM.Version()), methodWords(method))
	return nil
}

// ownedWhat names what takeTPM set: a TPM 1.2 has one owner secret, which
// also authorises its lockout reset (TPM_ResetLockValue), and no lockout
// authorisation of its own.
func ownedWhat(v tpm.Version) string {
	if v == tpm.Version12 {
		return "its owner secret (on a TPM 1.2 the only one: it also resets the PIN lockout) comes"
	}
	return "its owner and lockout authorisations come"
}

// ownerSecret makes the owner secret with the method the key calls for.
func (s *session) ownerSecret(id *tpm.Identity) ([]byte, string, error) {
	w := s.w
	if s.fileSig != nil {
		m, err := ownerauth.MethodOf(s.fileSig.Algorithm(), false)
		if err != nil {
			return nil, "", err
		}
		sec, err := ownerauth.FromKeyFile(s.fileSig, id)
		return sec, methodName(m), err
	}
	pub := s.cardSig.Key().Public
	m, err := ownerauth.MethodOf(pub.PubKeyAlgo, true)
	if err != nil {
		return nil, "", err
	}
	if m == ownerauth.Signature && !s.j.Has(MarkKeysTPM) {
		if err := ownerauth.CheckDeterministic(s.cardSig, id); err != nil {
			return nil, "", err
		}
	}
	sec, err := ownerauth.FromCard(s.cardSig, id, func() ([]byte, error) {
		if s.j.Has(MarkKeysTPM) || s.resumedPassphrase() {
			return w.UI.Ask(Question{Key: KeyTPMPassphrase, Prompt: "TPM owner passphrase: ", Secret: true})
		}
		w.say("Your card's key is an ECDSA key, whose signatures are random: it cannot be the source of the TPM's authorisations. They come from a TPM owner passphrase instead; it is asked when the TPM must be administered (PIN lockout reset, ...).\n")
		return s.newSecret(Question{Key: KeyTPMPassphrase, Prompt: "TPM owner passphrase (Enter: generate one): "}, "TPM owner passphrase", passphraseWords, ownerauth.MinPassphraseLen, 0)
	})
	return sec, methodName(m), err
}

// resumedPassphrase: a run that stopped in step 3 after setting the
// authorisations from a passphrase the owner now types again.
func (s *session) resumedPassphrase() bool { return s.j.AuthMethod == methodName(ownerauth.Passphrase) }

func methodName(m ownerauth.Method) string {
	switch m {
	case ownerauth.Signature:
		return "signature"
	case ownerauth.KeyMaterial:
		return "key"
	case ownerauth.Passphrase:
		return "passphrase"
	}
	return ""
}

func methodWords(name string) string {
	switch name {
	case "signature":
		return "your key's signature over a challenge bound to this TPM (the key, and its PIN or passphrase, give them back whenever glint needs them)"
	case "key":
		return "your key file's private key"
	case "passphrase":
		return "the TPM owner passphrase"
	}
	return name
}

// probeIndex is an NV index in glint's owner range used only to prove the
// owner authorisation (defined and deleted at once). A TPM 1.2 refuses it
// (TPM_BADINDEX: bits 24-27 of a TPM 1.2 index are reserved, Main Part 2,
// 19.1.1), so there probeIndex12, an owner-defined index with purview 0
// (tpmtotp's is 0x4d47).
const (
	probeIndex   = 0x0180474e
	probeIndex12 = 0x0000474e
)

// probeOwnerAuth proves the TPM handle's owner authorisation: defining an
// NV index needs it (TPM 2.0 owner hierarchy, TPM 1.2 owner secret).
func probeOwnerAuth(t tpm.TPM) error {
	idx := uint32(probeIndex)
	if t.Version() == tpm.Version12 {
		idx = probeIndex12
	}
	_ = t.NVUndefine(idx) // a leftover of an interrupted probe
	if err := t.NVDefine(tpm.NVSpace{Index: idx, Size: 8}); err != nil {
		return err
	}
	return t.NVUndefine(idx)
}

// wipeKey overwrites an unlocked key file's secret material where the
// signer offers it.
func wipeKey(k *manifest.KeySigner) {
	if w, ok := any(k).(interface{ Wipe() }); ok {
		w.Wipe()
	}
}
