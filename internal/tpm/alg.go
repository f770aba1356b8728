package tpm

import (
	"crypto"
	_ "crypto/sha1" // registers crypto.SHA1 for Alg.Hash
	_ "crypto/sha256"
	_ "crypto/sha512"
	"fmt"
	"strings"
)

// Alg is a TCG hash algorithm identifier (TCG Algorithm Registry 1.32,
// Table 3). It names a PCR bank: each active bank of a TPM 2.0 holds every
// PCR once, extended with that algorithm (TPM 2.0 Part 1, 17.3); a TPM 1.2
// has the SHA-1 bank only. Event logs, sealed records and the boot flow all
// name banks with this one type.
//
// Its encodings: String is the lower-case name tpm2-tools, Linux sysfs
// (/sys/class/tpm/tpm0/pcr-sha256) and glint's output use; ParseAlg reads it
// back; stored records keep the registry number.
type Alg uint16

// The banks glint knows. SM3_256 appears in some logs; glint can name it but
// not compute it (the Go standard library has no SM3).
const (
	SHA1    Alg = 0x0004
	SHA256  Alg = 0x000B
	SHA384  Alg = 0x000C
	SHA512  Alg = 0x000D
	SM3_256 Alg = 0x0012
)

// knownAlgs is every Alg with a name, in registry order.
var knownAlgs = []Alg{SHA1, SHA256, SHA384, SHA512, SM3_256}

// String is the bank's lower-case name ("sha256"); an algorithm glint does
// not know prints as its registry number ("alg-0x0042").
func (a Alg) String() string {
	switch a {
	case SHA1:
		return "sha1"
	case SHA256:
		return "sha256"
	case SHA384:
		return "sha384"
	case SHA512:
		return "sha512"
	case SM3_256:
		return "sm3_256"
	}
	return fmt.Sprintf("alg-0x%04x", uint16(a))
}

// ParseAlg reads a bank name: "sha256", "SHA256" (coreboot's TCPA log),
// "SHA-256", "sm3_256".
func ParseAlg(s string) (Alg, error) {
	n := strings.ToLower(strings.ReplaceAll(s, "-", ""))
	for _, a := range knownAlgs {
		if a.String() == n {
			return a, nil
		}
	}
	return 0, fmt.Errorf("unknown hash algorithm %q (want sha1, sha256, sha384 or sha512)", s)
}

// Hash is the Go hash that extends this bank. SM3 and unknown algorithms
// return an error wrapping ErrUnsupported.
func (a Alg) Hash() (crypto.Hash, error) {
	switch a {
	case SHA1:
		return crypto.SHA1, nil
	case SHA256:
		return crypto.SHA256, nil
	case SHA384:
		return crypto.SHA384, nil
	case SHA512:
		return crypto.SHA512, nil
	}
	return 0, fmt.Errorf("%w: hash algorithm %s", ErrUnsupported, a)
}

// Size is the digest size in bytes (the size of one PCR in this bank), 0 for
// an algorithm glint does not know.
func (a Alg) Size() int {
	if a == SM3_256 {
		return 32
	}
	if h, err := a.Hash(); err == nil {
		return h.Size()
	}
	return 0
}

// ChooseBank is the PCR bank glint measures into and seals to on t: SHA-256
// where the TPM has it, SHA-1 on a TPM 1.2 and on a TPM 2.0 whose firmware
// allocated only the SHA-1 bank. The boot flow and the CLI verbs both choose
// with it, so a secret sealed from the OS unseals at boot. If the TPM cannot
// list its banks, SHA-256 (every PC Client TPM 2.0 has it by default).
func ChooseBank(t TPM) Alg {
	if t.Version() == Version12 {
		return SHA1
	}
	banks, err := t.Banks()
	if err != nil {
		return SHA256
	}
	has := func(b Alg) bool {
		for _, x := range banks {
			if x == b {
				return true
			}
		}
		return false
	}
	if !has(SHA256) && has(SHA1) {
		return SHA1
	}
	return SHA256
}
