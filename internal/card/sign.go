package card

import (
	"crypto"
	"errors"
	"fmt"
)

// digestInfoPrefix is the DER DigestInfo header that PKCS#1 v1.5 puts before
// the hash (RFC 8017 section 9.2 note 1); the card adds the padding.
var digestInfoPrefix = map[crypto.Hash][]byte{
	crypto.SHA256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA384: {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}

// SignDigest signs a hash with the signature key (PSO: COMPUTE DIGITAL
// SIGNATURE, spec 3.4 section 7.2.10); the user PIN (PW1, 81) must have
// been verified. It returns the raw signature: for RSA the PKCS#1 v1.5
// signature, for ECDSA and EdDSA r||s.
func (c *Card) SignDigest(h crypto.Hash, digest []byte) ([]byte, error) {
	if len(digest) != h.Size() {
		return nil, fmt.Errorf("digest of %d bytes for %v", len(digest), h)
	}
	alg := c.app.Keys[SlotSign].Algorithm
	input := digest
	switch alg.ID {
	case AlgRSA:
		prefix, ok := digestInfoPrefix[h]
		if !ok {
			return nil, fmt.Errorf("hash %v not supported for RSA signatures", h)
		}
		input = append(append([]byte(nil), prefix...), digest...)
	case AlgECDSA, AlgEdDSA:
	default:
		return nil, fmt.Errorf("the signature key is %s, which cannot sign", alg)
	}
	sig, err := c.transmit(Command{INS: insPSO, P1: 0x9E, P2: 0x9A, Data: input, Ne: MaxExtendedNe})
	if err != nil {
		var se *StatusError
		if errors.As(err, &se) && se.SW == SWSecurityStatus {
			return nil, fmt.Errorf("the card wants the user PIN before signing: %w", err)
		}
		return nil, fmt.Errorf("sign on the card: %w", err)
	}
	if want := sigSize(alg); want > 0 && len(sig) != want {
		return nil, parseErrorf("signature", "length", 0, "%d bytes from a %s key, want %d", len(sig), alg, want)
	}
	return sig, nil
}

// sigSize is the length of a raw signature for alg (0: not fixed).
func sigSize(a Algorithm) int {
	switch a.ID {
	case AlgRSA:
		return a.RSABits / 8
	case AlgECDSA, AlgEdDSA:
		return 64 // P-256 and Ed25519: 32-byte r and s
	}
	return 0
}
