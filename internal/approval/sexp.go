package approval

import (
	"bytes"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"strconv"

	"github.com/glint-boot/glint/internal/tpm"
)

// gpg-agent's PKSIGN answers with a canonical S-expression (libgcrypt
// sexp.c, "canonical" encoding: every atom is "<decimal length>:<bytes>"):
//
//	(7:sig-val(3:rsa(1:s256:<signature>)))
//	(7:sig-val(5:ecdsa(1:r32:<r>)(1:s32:<s>)))
//
// The bytes come from another program (and, through scdaemon, from a card),
// so the parser bounds depth, atom sizes and the whole input.

const (
	maxSexp      = 4096 // an RSA-4096 signature is 512 bytes
	maxSexpDepth = 8
)

var errSexp = errors.New("gpg-agent's signature is not a sig-val S-expression")

// sexp is an atom (list == nil, atom set) or a list.
type sexp struct {
	atom []byte
	list []*sexp
	isL  bool
}

func parseSexp(untrusted []byte) (*sexp, error) {
	if len(untrusted) > maxSexp {
		return nil, fmt.Errorf("%w: %d bytes", errSexp, len(untrusted))
	}
	p := &sexpParser{b: untrusted}
	s, err := p.value(0)
	if err != nil {
		return nil, err
	}
	if p.off != len(untrusted) {
		return nil, fmt.Errorf("%w: %d bytes after the expression", errSexp, len(untrusted)-p.off)
	}
	return s, nil
}

type sexpParser struct {
	b   []byte
	off int
}

func (p *sexpParser) value(depth int) (*sexp, error) {
	if depth > maxSexpDepth {
		return nil, fmt.Errorf("%w: nested deeper than %d", errSexp, maxSexpDepth)
	}
	if p.off >= len(p.b) {
		return nil, fmt.Errorf("%w: ends early", errSexp)
	}
	if p.b[p.off] == '(' {
		p.off++
		s := &sexp{isL: true}
		for {
			if p.off >= len(p.b) {
				return nil, fmt.Errorf("%w: unclosed list", errSexp)
			}
			if p.b[p.off] == ')' {
				p.off++
				return s, nil
			}
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			s.list = append(s.list, v)
		}
	}
	colon := bytes.IndexByte(p.b[p.off:], ':')
	if colon < 1 || colon > 5 {
		return nil, fmt.Errorf("%w: atom length at byte %d", errSexp, p.off)
	}
	n, err := strconv.Atoi(string(p.b[p.off : p.off+colon]))
	if err != nil || n < 0 || n > len(p.b)-p.off-colon-1 {
		return nil, fmt.Errorf("%w: atom of %q bytes at byte %d", errSexp, p.b[p.off:p.off+colon], p.off)
	}
	p.off += colon + 1
	a := p.b[p.off : p.off+n]
	p.off += n
	return &sexp{atom: a}, nil
}

// field finds the sub-list (name value) in a list and returns value.
func (s *sexp) field(name string) ([]byte, bool) {
	for _, c := range s.list {
		if c.isL && len(c.list) == 2 && !c.list[0].isL && string(c.list[0].atom) == name && !c.list[1].isL {
			return c.list[1].atom, true
		}
	}
	return nil, false
}

// parseSigVal turns gpg-agent's sig-val into the signature form
// tpm.Approval holds (RSA: the signature block of keyBytes; ECDSA: DER).
func parseSigVal(untrusted []byte, keyBytes int) (tpm.SigScheme, []byte, error) {
	s, err := parseSexp(untrusted)
	if err != nil {
		return 0, nil, err
	}
	if !s.isL || len(s.list) != 2 || s.list[0].isL || string(s.list[0].atom) != "sig-val" || !s.list[1].isL || len(s.list[1].list) < 2 || s.list[1].list[0].isL {
		return 0, nil, fmt.Errorf("%w: not (sig-val (ALGO ...))", errSexp)
	}
	alg := s.list[1]
	switch string(alg.list[0].atom) {
	case "rsa":
		sig, ok := alg.field("s")
		if !ok || len(sig) == 0 || len(sig) > keyBytes {
			return 0, nil, fmt.Errorf("%w: RSA signature missing or longer than the %d-byte key", errSexp, keyBytes)
		}
		// libgcrypt strips leading zero bytes; the TPM wants the full
		// key-size block.
		out := make([]byte, keyBytes)
		copy(out[keyBytes-len(sig):], sig)
		return tpm.SchemeRSASSA, out, nil
	case "ecdsa":
		r, ok1 := alg.field("r")
		sv, ok2 := alg.field("s")
		if !ok1 || !ok2 || len(r) == 0 || len(sv) == 0 || len(r) > 33 || len(sv) > 33 {
			return 0, nil, fmt.Errorf("%w: ECDSA r or s missing or longer than P-256's", errSexp)
		}
		der, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(r), new(big.Int).SetBytes(sv)})
		if err != nil {
			return 0, nil, err
		}
		return tpm.SchemeECDSA, der, nil
	}
	return 0, nil, fmt.Errorf("%w: algorithm %q (the TPM verifies rsa and ecdsa)", errSexp, printable(alg.list[0].atom))
}

func printable(b []byte) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		out = append(out, c)
		if len(out) >= 32 {
			break
		}
	}
	return string(out)
}
