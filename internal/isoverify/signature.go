package isoverify

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

const (
	// MaxSignatureSize bounds a detached signature file (a few hundred
	// bytes each; a file may hold several).
	MaxSignatureSize = 64 << 10
	// MaxSignaturePackets bounds the signatures one file may hold.
	MaxSignaturePackets = 16
)

// detached is a signature file decoded to its packets, with the first
// signature a trusted key made.
type detached struct {
	file     string
	raw      []byte    // OpenPGP packets (armor removed)
	signedAt time.Time // creation time of the trusted signature
	issuers  []uint64  // every issuer named, for "unknown key" messages
	trusted  bool      // a signature by a key in the keyring is present
}

// readDetached decodes an armored or binary detached signature and finds
// the issuers. A signature glint cannot read is an error; one by no trusted
// key is returned with trusted false.
func readDetached(file string, untrustedSig []byte, kr *Keyring) (*detached, error) {
	if len(untrustedSig) > MaxSignatureSize {
		return nil, fmt.Errorf("%d bytes, more than %d", len(untrustedSig), MaxSignatureSize)
	}
	d := &detached{file: file, raw: untrustedSig}
	if bytes.Contains(untrustedSig, []byte("-----BEGIN PGP SIGNATURE-----")) {
		block, err := armor.Decode(bytes.NewReader(untrustedSig))
		if err != nil {
			return nil, fmt.Errorf("armor: %w", err)
		}
		if block.Type != openpgp.SignatureType {
			return nil, fmt.Errorf("armored block is %q, not a signature", block.Type)
		}
		raw, err := io.ReadAll(io.LimitReader(block.Body, MaxSignatureSize+1))
		if err != nil {
			return nil, fmt.Errorf("armor: %w", err)
		}
		d.raw = raw
	}
	pr := packet.NewReader(bytes.NewReader(d.raw))
	for n := 0; ; n++ {
		if n >= MaxSignaturePackets {
			return nil, fmt.Errorf("more than %d packets", MaxSignaturePackets)
		}
		p, err := pr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("signature packet: %w", err)
		}
		sig, ok := p.(*packet.Signature)
		if !ok {
			return nil, fmt.Errorf("packet %d is %T, not a signature", n, p)
		}
		if sig.IssuerKeyId == nil {
			continue
		}
		d.issuers = append(d.issuers, *sig.IssuerKeyId)
		if !d.trusted && kr.knows(*sig.IssuerKeyId) {
			d.trusted, d.signedAt = true, sig.CreationTime
		}
	}
	if len(d.issuers) == 0 {
		return nil, errors.New("no signature names its key")
	}
	return d, nil
}

// check verifies d over signed (streamed) and returns the trusted key that
// made it. Key validity (expiry, revocation) is judged at the signature's
// creation time, not by the clock: a coreboot machine with a flat RTC
// battery boots in 1970, and a distribution key that expired after signing
// an image still vouches for it (as for the owner's manifest,
// internal/manifest). A key revoked as compromised is refused whatever the
// time (go-crypto's rule).
func (d *detached) check(kr *Keyring, signed io.Reader) (*TrustedKey, error) {
	cfg := &packet.Config{Time: func() time.Time { return d.signedAt }}
	_, signer, err := openpgp.VerifyDetachedSignature(kr.entities(), signed, bytes.NewReader(d.raw), cfg)
	if err != nil {
		return nil, err
	}
	k := kr.lookup(signer)
	if k == nil {
		return nil, errors.New("signer not in the keyring") // cannot happen: go-crypto found it there
	}
	return k, nil
}

func keyIDs(ids []uint64) string {
	var s []string
	for _, id := range ids {
		s = append(s, fmt.Sprintf("%016X", id))
	}
	return strings.Join(s, ", ")
}

// isBadSignature tells a signature that does not match its data (the data
// or the signature was changed) from a key problem (expired, revoked).
func isBadSignature(err error) bool {
	var se pgperrors.SignatureError
	return errors.As(err, &se) || errors.Is(err, pgperrors.ErrSignatureOlderThanKey)
}
