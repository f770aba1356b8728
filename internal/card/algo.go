package card

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
)

// Algorithm ids of the algorithm attributes (OpenPGP card spec 3.4, section
// 4.4.3.9); they equal OpenPGP's public-key algorithm ids (RFC 4880 9.1,
// RFC 6637, draft-koch-eddsa-for-openpgp).
const (
	AlgRSA   byte = 0x01
	AlgECDH  byte = 0x12
	AlgECDSA byte = 0x13
	AlgEdDSA byte = 0x16
)

// Curve OIDs (the DER content bytes, without tag and length) as the card and
// OpenPGP (RFC 6637 section 11; RFC 8410 for the 25519 family as gpg uses it).
var (
	OIDNISTP256   = []byte{0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07}
	OIDEd25519    = []byte{0x2B, 0x06, 0x01, 0x04, 0x01, 0xDA, 0x47, 0x0F, 0x01}
	OIDCurve25519 = []byte{0x2B, 0x06, 0x01, 0x04, 0x01, 0x97, 0x55, 0x01, 0x05, 0x01}
)

// Algorithm is a key slot's algorithm attributes (DO C1, C2, C3).
type Algorithm struct {
	ID byte
	// RSA: modulus and public exponent sizes in bits, and the import
	// format (0 = standard e,p,q; spec 3.4 section 4.4.3.9).
	RSABits, RSAExpBits int
	ImportFormat        byte
	// ECC: the curve's OID; PublicInImport is the optional trailing FF
	// ("import with public key").
	OID            []byte
	PublicInImport bool
}

// The key types glint offers.
var (
	RSA2048  = Algorithm{ID: AlgRSA, RSABits: 2048, RSAExpBits: 32}
	RSA3072  = Algorithm{ID: AlgRSA, RSABits: 3072, RSAExpBits: 32}
	RSA4096  = Algorithm{ID: AlgRSA, RSABits: 4096, RSAExpBits: 32}
	NISTP256 = Algorithm{ID: AlgECDSA, OID: OIDNISTP256}
	Ed25519  = Algorithm{ID: AlgEdDSA, OID: OIDEd25519}
)

// Algorithms lists the names ParseAlgorithmName accepts.
var Algorithms = []Algorithm{RSA2048, RSA3072, RSA4096, NISTP256, Ed25519}

// maxRSABits bounds the modulus size a card may claim.
const maxRSABits = 8192

// ParseAlgorithm decodes algorithm attributes.
func ParseAlgorithm(untrusted []byte) (Algorithm, error) {
	const f = "algorithm attributes"
	if len(untrusted) == 0 {
		return Algorithm{}, parseErrorf(f, "id", 0, "empty: %w", ErrTruncated)
	}
	a := Algorithm{ID: untrusted[0]}
	switch a.ID {
	case AlgRSA:
		// 1.x cards send 5 bytes, 2.0 and later 6 (with the import format).
		if len(untrusted) < 5 || len(untrusted) > 6 {
			return Algorithm{}, parseErrorf(f, "RSA", 0, "%d bytes, want 5 or 6", len(untrusted))
		}
		a.RSABits = int(binary.BigEndian.Uint16(untrusted[1:3]))
		a.RSAExpBits = int(binary.BigEndian.Uint16(untrusted[3:5]))
		if len(untrusted) == 6 {
			a.ImportFormat = untrusted[5]
		}
		if a.RSABits < 1024 || a.RSABits > maxRSABits || a.RSABits%8 != 0 {
			return Algorithm{}, parseErrorf(f, "RSA modulus bits", 1, "%d", a.RSABits)
		}
		if a.RSAExpBits < 2 || a.RSAExpBits > a.RSABits {
			return Algorithm{}, parseErrorf(f, "RSA exponent bits", 3, "%d", a.RSAExpBits)
		}
	case AlgECDH, AlgECDSA, AlgEdDSA:
		oid := untrusted[1:]
		if len(oid) > 0 && oid[len(oid)-1] == 0xFF {
			a.PublicInImport = true
			oid = oid[:len(oid)-1]
		}
		if len(oid) == 0 || len(oid) > 16 {
			return Algorithm{}, parseErrorf(f, "curve OID", 1, "%d bytes", len(oid))
		}
		a.OID = append([]byte(nil), oid...)
	default:
		return Algorithm{}, parseErrorf(f, "id", 0, "unknown algorithm %02X", a.ID)
	}
	return a, nil
}

// Bytes encodes the attributes for PUT DATA.
func (a Algorithm) Bytes() []byte {
	if a.ID == AlgRSA {
		b := []byte{AlgRSA, 0, 0, 0, 0, a.ImportFormat}
		binary.BigEndian.PutUint16(b[1:], uint16(a.RSABits))
		binary.BigEndian.PutUint16(b[3:], uint16(a.RSAExpBits))
		return b
	}
	b := append([]byte{a.ID}, a.OID...)
	if a.PublicInImport {
		b = append(b, 0xFF)
	}
	return b
}

// Equal compares the parts that define the key type (not the import format).
func (a Algorithm) Equal(b Algorithm) bool {
	if a.ID != b.ID {
		return false
	}
	if a.ID == AlgRSA {
		return a.RSABits == b.RSABits
	}
	return bytes.Equal(a.OID, b.OID)
}

// CurveName names a curve OID as gpg does.
func CurveName(oid []byte) string {
	switch {
	case bytes.Equal(oid, OIDNISTP256):
		return "nistp256"
	case bytes.Equal(oid, OIDEd25519):
		return "ed25519"
	case bytes.Equal(oid, OIDCurve25519):
		return "cv25519"
	}
	return fmt.Sprintf("curve %X", oid)
}

// String is gpg's name for the key type: rsa3072, nistp256, ed25519.
func (a Algorithm) String() string {
	switch a.ID {
	case AlgRSA:
		return fmt.Sprintf("rsa%d", a.RSABits)
	case AlgECDH, AlgECDSA, AlgEdDSA:
		return CurveName(a.OID)
	}
	return fmt.Sprintf("algorithm %02X", a.ID)
}

// ParseAlgorithmName reads rsa2048, rsa3072, rsa4096, nistp256 or ed25519.
func ParseAlgorithmName(name string) (Algorithm, error) {
	for _, a := range Algorithms {
		if strings.EqualFold(name, a.String()) {
			return a, nil
		}
	}
	var names []string
	for _, a := range Algorithms {
		names = append(names, a.String())
	}
	return Algorithm{}, fmt.Errorf("unknown key type %q: choose one of %s", name, strings.Join(names, ", "))
}
