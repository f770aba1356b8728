package card

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/glint-boot/glint/internal/secret"
)

// SetAlgorithm chooses the key type of a slot before generating or
// importing (PUT DATA C1/C2/C3; admin PIN verified; spec 3.4 section
// 4.4.3.9). Cards that cannot change it answer 6A80 or 6D00.
func (c *Card) SetAlgorithm(s Slot, a Algorithm) error {
	if c.app != nil && c.app.Keys[s].Algorithm.Equal(a) && c.app.Keys[s].Algorithm.ImportFormat == a.ImportFormat {
		return nil
	}
	if err := c.PutData(s.attrTag(), a.Bytes()); err != nil {
		var se *StatusError
		if errors.As(err, &se) && (se.SW == SWIncorrectData || se.SW == SWWrongP1P2 || se.SW == SWINSNotSupported) {
			return fmt.Errorf("this card does not offer %s for its %s key: %w", a, s, err)
		}
		return err
	}
	return c.Refresh()
}

// Generate makes a new key pair in slot s on the card (GENERATE ASYMMETRIC
// KEY PAIR P1=80; admin PIN verified). The private key never leaves the card.
// RSA-4096 takes 10 s to several minutes on real cards; the CCID transport
// keeps waiting through the reader's time extensions.
//
// Generate does not record the fingerprint and creation time: NewOpenPGPKey
// and WriteKeyMetadata do, once the OpenPGP key is built (the fingerprint
// depends on the creation time).
func (c *Card) Generate(s Slot) (*PublicKey, error) {
	raw, err := c.transmit(Command{INS: insGenerateAsymmetric, P1: 0x80, Data: []byte{s.crt(), 0x00}, Ne: MaxExtendedNe})
	if err != nil {
		return nil, fmt.Errorf("generate the %s key: %w", s, err)
	}
	return ParsePublicKey(raw, c.app.Keys[s].Algorithm)
}

// ReadPublicKey reads the public key of slot s (P1=81; no PIN needed).
func (c *Card) ReadPublicKey(s Slot) (*PublicKey, error) {
	raw, err := c.transmit(Command{INS: insGenerateAsymmetric, P1: 0x81, Data: []byte{s.crt(), 0x00}, Ne: MaxExtendedNe})
	if err != nil {
		var se *StatusError
		if errors.As(err, &se) && (se.SW == SWDataNotFound || se.SW == SWConditionsOfUse || se.SW == SWFileNotFound) {
			return nil, fmt.Errorf("the card has no %s key: %w", s, err)
		}
		return nil, fmt.Errorf("read the %s public key: %w", s, err)
	}
	return ParsePublicKey(raw, c.app.Keys[s].Algorithm)
}

// WriteKeyMetadata records a slot's OpenPGP fingerprint and creation time
// (PUT DATA C7-C9 and CE-D0; admin PIN verified), as gpg does after
// generating, so gpg --card-status and glint find the key by fingerprint.
func (c *Card) WriteKeyMetadata(s Slot, fingerprint []byte, created time.Time) error {
	if len(fingerprint) != 20 {
		return fmt.Errorf("fingerprint of %d bytes, want 20 (OpenPGP v4)", len(fingerprint))
	}
	if err := c.PutData(s.fprTag(), fingerprint); err != nil {
		return fmt.Errorf("record the %s key's fingerprint: %w", s, err)
	}
	ts := binary.BigEndian.AppendUint32(nil, uint32(created.Unix()))
	if err := c.PutData(s.genTimeTag(), ts); err != nil {
		return fmt.Errorf("record the %s key's creation time: %w", s, err)
	}
	return c.Refresh()
}

// SetName writes the cardholder name (DO 5B; admin PIN verified), in
// gpg's "Surname<<Given" form.
func (c *Card) SetName(name string) error {
	if len(name) > 39 {
		return errors.New("cardholder name longer than 39 characters")
	}
	return c.PutData(tagName, []byte(name))
}

// ImportKey writes a private key into slot s (PUT DATA odd, 3FFF, with an
// extended header list; spec 3.4 section 4.4.3.12; admin PIN verified), for
// the wizard's "generate in memory, keep an encrypted backup, copy to the
// card" path. The slot's algorithm attributes are set to match first.
func (c *Card) ImportKey(s Slot, priv crypto.Signer) error {
	if !c.app.ExtCaps.KeyImport {
		return errors.New("this card does not support key import")
	}
	var tpl, key []byte
	var alg Algorithm
	put := func(tag uint16, v []byte) {
		tpl = append(tpl, byte(tag))
		tpl = appendLength(tpl, len(v))
		key = append(key, v...)
	}
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		if len(k.Primes) != 2 {
			return errors.New("RSA key with more than two primes")
		}
		bits := k.N.BitLen()
		alg = Algorithm{ID: AlgRSA, RSABits: bits, RSAExpBits: 32}
		size := bits / 16
		// Standard format (import format 00): e, p, q (spec 3.4 4.4.3.12).
		put(0x91, big.NewInt(int64(k.E)).FillBytes(make([]byte, 4)))
		put(0x92, k.Primes[0].FillBytes(make([]byte, size)))
		put(0x93, k.Primes[1].FillBytes(make([]byte, size)))
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return errors.New("only P-256 ECDSA keys can be imported")
		}
		alg = NISTP256
		d, err := k.Bytes()
		if err != nil {
			return err
		}
		put(0x92, d)
		secret.Wipe(d)
	case ed25519.PrivateKey:
		alg = Ed25519
		put(0x92, k.Seed())
	default:
		return fmt.Errorf("cannot import a %T", priv)
	}
	defer secret.Wipe(key)
	if err := c.SetAlgorithm(s, alg); err != nil {
		return err
	}
	var hdr []byte
	hdr = append(hdr, s.crt(), 0x00)
	hdr = AppendTLV(hdr, tagCardholderCertTpl, tpl)
	hdr = AppendTLV(hdr, tagKeyData, key)
	data := AppendTLV(nil, tagExtendedHeader, hdr)
	defer secret.Wipe(data)
	if _, err := c.transmit(Command{INS: insPutDataOdd, P1: 0x3F, P2: 0xFF, Data: data}); err != nil {
		return fmt.Errorf("import the %s key: %w", s, err)
	}
	return nil
}

// appendLength encodes a BER length (used inside the 7F48 template, where
// only lengths appear).
func appendLength(dst []byte, l int) []byte {
	switch {
	case l < 0x80:
		return append(dst, byte(l))
	case l <= 0xFF:
		return append(dst, 0x81, byte(l))
	}
	return append(dst, 0x82, byte(l>>8), byte(l))
}
