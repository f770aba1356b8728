package card

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"time"

	"github.com/glint-boot/glint/internal/secret"
)

// PINRequest tells a PIN prompt what to ask for.
type PINRequest struct {
	PW    PW
	Tries int    // tries left before the PIN is blocked
	Card  string // "OpenPGP card 000F1234 (Nitrokey)", to show which card
	Retry bool   // the PIN given before was wrong
}

// Prompt is a one-line question for a console.
func (r PINRequest) Prompt() string {
	s := fmt.Sprintf("%s for %s (%d %s left)", r.PW, r.Card, r.Tries, plural(r.Tries, "try", "tries"))
	if r.Retry {
		s = "Wrong PIN. " + s
	}
	if r.Tries == 1 {
		s += " LAST TRY: a wrong PIN now blocks it"
	}
	return s + ": "
}

// PINPrompt asks the owner for a PIN. It returns an error to give up (the
// owner cancelled); the returned slice is wiped after use.
type PINPrompt func(PINRequest) ([]byte, error)

// FixedPIN answers with pin once and gives up when the card refuses it, so a
// PIN from a file or an answers file never burns more than one try.
func FixedPIN(pin []byte) PINPrompt {
	return func(r PINRequest) ([]byte, error) {
		if r.Retry {
			return nil, fmt.Errorf("wrong %s: %d %s left (a PIN given in advance is not tried twice)", r.PW, r.Tries, plural(r.Tries, "try", "tries"))
		}
		return append([]byte(nil), pin...), nil
	}
}

// ErrNoKey is returned when the card has no signature key yet.
var ErrNoKey = errors.New("the card has no signature key yet (glint card generate makes one)")

// Label names the card for prompts and messages: "OpenPGP card 000F1234
// (Nitrokey)", the serial as gpg prints it.
func (c *Card) Label() string {
	return fmt.Sprintf("OpenPGP card %s (%s)", c.app.AID.SerialString(), c.app.AID.ManufacturerName())
}

// Key builds the OpenPGP key of the card's signature slot from its public
// key and recorded creation time, and checks that its fingerprint is the
// one the card recorded (so a key from gpg's --card-edit generate comes out
// with the same fingerprint gpg gave it).
func (c *Card) Key() (*OpenPGPKey, error) {
	info := c.app.Keys[SlotSign]
	if !info.Present() {
		return nil, ErrNoKey
	}
	pk, err := c.ReadPublicKey(SlotSign)
	if err != nil {
		return nil, err
	}
	if info.Created.IsZero() {
		return nil, fmt.Errorf("the card records no creation time for its signature key, so its OpenPGP fingerprint %X cannot be rebuilt", info.Fingerprint)
	}
	k, err := NewOpenPGPKey(pk, info.Created)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(k.Fingerprint(), info.Fingerprint[:]) {
		return nil, fmt.Errorf("the card's signature key has fingerprint %X but the card records %X (made by a tool that encodes keys differently?)", k.Fingerprint(), info.Fingerprint)
	}
	return k, nil
}

// GenerateOptions are the owner's choices for a new key on the card.
type GenerateOptions struct {
	Algorithm Algorithm
	UserID    string // "Jane Doe <jane@example.org>"
	AdminPIN  []byte
	// Prompt asks for the user PIN, needed to self-sign the new key.
	Prompt PINPrompt
	// Now stamps the key and its self-signature; nil means time.Now.
	Now func() time.Time
}

// GenerateOwnerKey makes the owner's signing key on the card: admin PIN,
// key type, GENERATE, fingerprint and creation time recorded on the card,
// then the self-signed public key (owner.asc, armored) signed by the card.
// On slow cards RSA-4096 takes minutes: say so before calling.
func (c *Card) GenerateOwnerKey(opts GenerateOptions) (*OpenPGPKey, []byte, error) {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	if err := c.Verify(PW3, opts.AdminPIN); err != nil {
		return nil, nil, err
	}
	if err := c.SetAlgorithm(SlotSign, opts.Algorithm); err != nil {
		return nil, nil, err
	}
	pk, err := c.Generate(SlotSign)
	if err != nil {
		return nil, nil, err
	}
	created := now().Truncate(time.Second)
	k, err := NewOpenPGPKey(pk, created)
	if err != nil {
		return nil, nil, err
	}
	if err := c.WriteKeyMetadata(SlotSign, k.Fingerprint(), created); err != nil {
		return nil, nil, err
	}
	s := &Signer{card: c, key: k, prompt: opts.Prompt, now: now}
	defer s.Close()
	pub, err := k.Certify(opts.UserID, created, s)
	if err != nil {
		return nil, nil, err
	}
	return k, pub, nil
}

// Export self-signs the card's existing signature key for uid (user PIN
// needed) and returns owner.asc. A key gpg made on the card comes out with
// gpg's fingerprint; the self-signature is glint's own.
func (c *Card) Export(uid string, prompt PINPrompt) ([]byte, error) {
	s, err := NewSigner(c, prompt)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.key.Certify(uid, s.now(), s)
}

// Signer signs with the card's signature key, asking for the user PIN
// through a prompt that shows the tries left; it implements manifest.Signer
// (Sign, String) and DigestSigner.
type Signer struct {
	card   *Card
	key    *OpenPGPKey
	prompt PINPrompt
	// pin is kept for cards that want the PIN before every signature
	// (PW status byte 1 = 00, the default) and wiped by Close.
	pin []byte
	now func() time.Time
}

// NewSigner reads the card's signature key (no PIN yet: it is asked on the
// first signature).
func NewSigner(c *Card, prompt PINPrompt) (*Signer, error) {
	k, err := c.Key()
	if err != nil {
		return nil, err
	}
	return &Signer{card: c, key: k, prompt: prompt, now: time.Now}, nil
}

// Key is the OpenPGP key the signer signs with.
func (s *Signer) Key() *OpenPGPKey { return s.key }

func (s *Signer) String() string {
	return fmt.Sprintf("%s, key %X", s.card.Label(), s.key.Fingerprint())
}

// Sign makes an armored detached signature over message (manifest.Signer).
func (s *Signer) Sign(message []byte) ([]byte, error) {
	return s.key.DetachSign(message, s.now(), s)
}

// SignDigest verifies the user PIN if needed, then signs on the card.
func (s *Signer) SignDigest(h crypto.Hash, digest []byte) ([]byte, error) {
	if err := s.unlock(); err != nil {
		return nil, err
	}
	return s.card.SignDigest(h, digest)
}

// unlock presents the user PIN for signing (PW1, 81): the kept one if any,
// else asking; a wrong PIN asks again with the tries left, a blocked PIN
// is explained.
func (s *Signer) unlock() error {
	retry := false
	for {
		st, err := s.card.PINStatus()
		if err != nil {
			return err
		}
		if st.PW1Tries == 0 {
			return &BlockedError{PW: PW1Sign}
		}
		pin := s.pin
		if pin == nil {
			if s.prompt == nil {
				return errors.New("the card needs the user PIN and no way to ask for it was given")
			}
			pin, err = s.prompt(PINRequest{PW: PW1Sign, Tries: st.PW1Tries, Card: s.card.Label(), Retry: retry})
			if err != nil {
				return err
			}
		}
		err = s.card.Verify(PW1Sign, pin)
		var pe *PINError
		switch {
		case err == nil:
			s.pin = pin
			return nil
		case errors.As(err, &pe):
			secret.Wipe(pin)
			s.pin = nil
			retry = true
			continue
		default:
			secret.Wipe(pin)
			s.pin = nil
			return err
		}
	}
}

// Close wipes the kept PIN.
func (s *Signer) Close() {
	secret.Wipe(s.pin)
	s.pin = nil
}
