package card

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"math/big"
)

// PublicKey is a slot's public key as GENERATE ASYMMETRIC KEY PAIR returns
// it in DO 7F49 (spec 3.4 section 7.2.14).
type PublicKey struct {
	Algorithm Algorithm
	N, E      []byte // RSA modulus and exponent, big-endian, no leading zeros
	// Point is the ECC public key: 04||X||Y for NIST curves, the 32-byte
	// encoding for Ed25519.
	Point []byte
}

// maxPublicKeyDO caps DO 7F49: an RSA-8192 modulus is 1024 bytes.
const maxPublicKeyDO = 2048

// ParsePublicKey decodes DO 7F49 (with or without its 7F49 wrapper) for a
// slot whose algorithm is alg.
func ParsePublicKey(untrusted []byte, alg Algorithm) (*PublicKey, error) {
	const f = "public key"
	if len(untrusted) > maxPublicKeyDO {
		return nil, parseErrorf(f, "length", 0, "%d bytes: %w", len(untrusted), ErrTooLarge)
	}
	body := untrusted
	if v, ok, err := FindTLV(untrusted, tagPublicKey); err != nil {
		return nil, err
	} else if ok {
		body = v
	}
	tlvs, err := ParseTLVs(body)
	if err != nil {
		return nil, err
	}
	get := func(tag uint16) []byte {
		for _, t := range tlvs {
			if t.Tag == tag {
				return t.Value
			}
		}
		return nil
	}
	pk := &PublicKey{Algorithm: alg}
	switch alg.ID {
	case AlgRSA:
		n, e := trimZeros(get(0x81)), trimZeros(get(0x82))
		if len(n) == 0 || len(e) == 0 {
			return nil, parseErrorf(f, "RSA", 0, "modulus (81) or exponent (82) missing")
		}
		if bits := new(big.Int).SetBytes(n).BitLen(); bits != alg.RSABits {
			return nil, parseErrorf(f, "RSA modulus", 0, "%d bits, the slot says %d", bits, alg.RSABits)
		}
		if len(e) > 4 || new(big.Int).SetBytes(e).Bit(0) == 0 {
			return nil, parseErrorf(f, "RSA exponent", 0, "% X is not a usable public exponent", e)
		}
		pk.N, pk.E = append([]byte(nil), n...), append([]byte(nil), e...)
	case AlgECDSA, AlgECDH:
		p := get(0x86)
		if !bytes.Equal(alg.OID, OIDNISTP256) {
			return nil, parseErrorf(f, "curve", 0, "%s is not supported by glint", CurveName(alg.OID))
		}
		if _, err := ecdh.P256().NewPublicKey(p); err != nil {
			return nil, parseErrorf(f, "P-256 point", 0, "%v", err)
		}
		pk.Point = append([]byte(nil), p...)
	case AlgEdDSA:
		p := get(0x86)
		// Some cards prefix the native encoding with 40 (gpg's MPI form).
		if len(p) == 33 && p[0] == 0x40 {
			p = p[1:]
		}
		if len(p) != ed25519.PublicKeySize || !bytes.Equal(alg.OID, OIDEd25519) {
			return nil, parseErrorf(f, "Ed25519 point", 0, "%d bytes on %s", len(p), CurveName(alg.OID))
		}
		pk.Point = append([]byte(nil), p...)
	default:
		return nil, parseErrorf(f, "algorithm", 0, "%02X", alg.ID)
	}
	return pk, nil
}

func trimZeros(b []byte) []byte {
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	return b
}

// Crypto returns the key as a Go crypto public key: *rsa.PublicKey,
// *ecdsa.PublicKey or ed25519.PublicKey.
func (p *PublicKey) Crypto() (crypto.PublicKey, error) {
	switch p.Algorithm.ID {
	case AlgRSA:
		e := new(big.Int).SetBytes(p.E)
		if !e.IsInt64() || e.Int64() > 1<<31-1 {
			return nil, errors.New("RSA exponent too large")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(p.N), E: int(e.Int64())}, nil
	case AlgECDSA, AlgECDH:
		return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), p.Point)
	case AlgEdDSA:
		return ed25519.PublicKey(append([]byte(nil), p.Point...)), nil
	}
	return nil, errors.New("unsupported algorithm")
}

// EncodePublicKeyDO builds DO 7F49 for pk (the simulator answers with it).
func EncodePublicKeyDO(pk crypto.PublicKey) ([]byte, error) {
	var body []byte
	switch k := pk.(type) {
	case *rsa.PublicKey:
		body = AppendTLV(body, 0x81, k.N.Bytes())
		body = AppendTLV(body, 0x82, big.NewInt(int64(k.E)).Bytes())
	case *ecdsa.PublicKey:
		ek, err := k.ECDH()
		if err != nil {
			return nil, err
		}
		body = AppendTLV(body, 0x86, ek.Bytes())
	case ed25519.PublicKey:
		body = AppendTLV(body, 0x86, k)
	default:
		return nil, errors.New("unsupported public key type")
	}
	return AppendTLV(nil, tagPublicKey, body), nil
}
