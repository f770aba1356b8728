package cardsim

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"math/big"

	"github.com/glint-boot/glint/internal/card"
)

// importKey is PUT DATA odd (DB 3FFF) with an extended header list (spec 3.4
// section 4.4.3.12): 4D { CRT, 7F48 { tag length ... }, 5F48 { values } }.
func (c *Card) importKey(cmd card.Command) ([]byte, uint16) {
	if cmd.P1 != 0x3F || cmd.P2 != 0xFF {
		return sw(card.SWWrongP1P2)
	}
	if !c.verified[card.PW3] {
		return sw(card.SWSecurityStatus)
	}
	hdr, ok, err := card.FindTLV(cmd.Data, 0x4D)
	if err != nil || !ok || len(hdr) < 2 {
		return sw(card.SWIncorrectData)
	}
	slot, ok := slotOf(hdr)
	if !ok {
		return sw(card.SWIncorrectData)
	}
	// 7F48 holds tag-length pairs, not TLVs: look only at the top level.
	tlvs, err := card.ParseTLVs(hdr[2:])
	if err != nil {
		return sw(card.SWIncorrectData)
	}
	var tpl, data []byte
	for _, t := range tlvs {
		switch t.Tag {
		case 0x7F48:
			tpl = t.Value
		case 0x5F48:
			data = t.Value
		}
	}
	if tpl == nil || data == nil {
		return sw(card.SWIncorrectData)
	}
	// The template lists tag-length pairs without values; the values are
	// concatenated in 5F48 in the same order.
	parts := map[byte][]byte{}
	off := 0
	for i := 0; i < len(tpl); {
		tag := tpl[i]
		i++
		if i >= len(tpl) {
			return sw(card.SWIncorrectData)
		}
		l := int(tpl[i])
		i++
		switch l {
		case 0x81:
			if i >= len(tpl) {
				return sw(card.SWIncorrectData)
			}
			l = int(tpl[i])
			i++
		case 0x82:
			if i+1 >= len(tpl) {
				return sw(card.SWIncorrectData)
			}
			l = int(tpl[i])<<8 | int(tpl[i+1])
			i += 2
		}
		if l > len(data)-off {
			return sw(card.SWIncorrectData)
		}
		parts[tag] = data[off : off+l]
		off += l
	}
	a, err := card.ParseAlgorithm(c.st.Attrs[slot])
	if err != nil {
		return sw(card.SWMemoryFailure)
	}
	var k crypto.PrivateKey
	switch a.ID {
	case card.AlgRSA:
		e, p, q := new(big.Int).SetBytes(parts[0x91]), new(big.Int).SetBytes(parts[0x92]), new(big.Int).SetBytes(parts[0x93])
		if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || p.Sign() == 0 || q.Sign() == 0 {
			return sw(card.SWIncorrectData)
		}
		rk := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: new(big.Int).Mul(p, q), E: int(e.Int64())}, Primes: []*big.Int{p, q}}
		one := big.NewInt(1)
		phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
		rk.D = new(big.Int).ModInverse(e, phi)
		if rk.D == nil || rk.N.BitLen() != a.RSABits || rk.Validate() != nil {
			return sw(card.SWIncorrectData)
		}
		rk.Precompute()
		k = rk
	case card.AlgECDSA:
		ek, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), parts[0x92])
		if err != nil {
			return sw(card.SWIncorrectData)
		}
		k = ek
	case card.AlgEdDSA:
		if len(parts[0x92]) != ed25519.SeedSize {
			return sw(card.SWIncorrectData)
		}
		k = ed25519.NewKeyFromSeed(parts[0x92])
	case card.AlgECDH:
		curve := ecdh.P256()
		d := parts[0x92]
		if string(a.OID) == string(card.OIDCurve25519) {
			curve = ecdh.X25519()
			// gpg sends the cv25519 secret big-endian (an MPI); X25519 wants
			// it little-endian.
			d = reverse(d)
		}
		ek, err := curve.NewPrivateKey(d)
		if err != nil {
			return sw(card.SWIncorrectData)
		}
		k = ek
	default:
		return sw(card.SWIncorrectData)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return sw(card.SWMemoryFailure)
	}
	c.st.Keys[slot], c.st.KeyOrigin[slot] = der, 2
	c.st.Fprs[slot], c.st.Times[slot] = [20]byte{}, 0
	if slot == 0 {
		c.st.SigCount = 0
	}
	return sw(c.save())
}

func reverse(b []byte) []byte {
	out := make([]byte, len(b))
	for i := range b {
		out[len(b)-1-i] = b[i]
	}
	return out
}
