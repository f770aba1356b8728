package tpm

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/big"
)

// Two encodings for owner-approved sealing, both stored on disk next to
// the sealed records and so untrusted. Integers big-endian; every length
// is checked against what remains and a cap before use.
//
// Authorized sealed blob (SealAuthorized / UnsealAuthorized):
//
//	magic "GLSA" (4) | version u8 = 1 | bank u16 | flags u8 (bit 0: PIN)
//	npcrs u8 (1..24), PCR indices u8 strictly ascending
//	name_len u8 (2..66), the approval key's TPM name
//	ref_len u8 (0..32), policyRef
//	branch_len u8 (32), the PolicyPCR digest of the sealed-to values (the
//	         PolicyOR branch that needs no approval)
//	[version 2: the approval epoch (epoch20.go): index u32, name_len u8
//	         (2..66), the counter's TPM name, bound u64]
//	2 times: u16 length (..2048), then TPM2B_PUBLIC / TPM2B_PRIVATE contents
//
// Approval (Approval.Marshal / ParseApproval):
//
//	magic "GLAP" (4) | version u8 = 1 | bank u16
//	npcrs u8 (1..24), then per PCR: index u8 (strictly ascending), digest (the bank's size)
//	[version 2: the approval epoch: index u32, name_len u8 (2..66), name, bound u64]
//	ref_len u8 (0..32), policyRef
//	scheme u16 (TPM_ALG_RSASSA 0x14, RSAPSS 0x16, ECDSA 0x18)
//	key: type u8 (1 RSA: u16 modulus length 256/384/512, modulus, u32 exponent;
//	               2 ECDSA P-256: 65-byte uncompressed point)
//	sig_len u16 (1..512), signature
//
// Nothing may follow either. Version 1 (no epoch) is what glint wrote
// before approval epochs; both versions are read, and version 1 is still
// written for a policy without an epoch.

const (
	authBlobMagic    = "GLSA"
	approvalMagic    = "GLAP"
	authFmtVersion   = 1
	epochFmtVersion  = 2      // with an approval epoch
	maxKeyName       = 2 + 64 // nameAlg + SHA-512 digest
	maxApprovalSig   = 512    // RSA-4096
	keyTypeRSA       = 1
	keyTypeECDSAP256 = 2
)

// authorizedBlob is the parsed form of a GLSA blob.
type authorizedBlob struct {
	Bank      Alg
	PIN       bool
	PCRs      []int
	KeyName   []byte
	PolicyRef []byte
	PCRBranch []byte
	Epoch     *Epoch // nil in version 1
	Parts     [][]byte
}

// reader takes bytes off an untrusted buffer, recording where it failed.
type reader struct {
	buf []byte
	off int
}

func (r *reader) take(n int) ([]byte, bool) {
	if n < 0 || n > len(r.buf)-r.off {
		return nil, false
	}
	b := r.buf[r.off : r.off+n]
	r.off += n
	return b, true
}

func (r *reader) u8() (int, bool) {
	b, ok := r.take(1)
	if !ok {
		return 0, false
	}
	return int(b[0]), true
}

func (r *reader) u16() (int, bool) {
	b, ok := r.take(2)
	if !ok {
		return 0, false
	}
	return int(binary.BigEndian.Uint16(b)), true
}

func (r *reader) fail(field string, format string, a ...any) error {
	return &ParseError{Offset: int64(r.off), Field: field, Err: fmt.Errorf(format, a...)}
}

// pcrList reads npcrs and that many strictly ascending indices.
func (r *reader) pcrList() ([]int, error) {
	n, ok := r.u8()
	if !ok {
		return nil, r.fail("PCR count", "%v", errShort)
	}
	if n < 1 || n > pcrCount {
		return nil, r.fail("PCR count", "%d PCRs, want 1..%d", n, pcrCount)
	}
	raw, ok := r.take(n)
	if !ok {
		return nil, r.fail("PCR list", "%v", errShort)
	}
	out := make([]int, n)
	for i, p := range raw {
		if int(p) >= pcrCount || i > 0 && int(p) <= out[i-1] {
			return nil, r.fail("PCR list", "PCR %d out of range or out of order", p)
		}
		out[i] = int(p)
	}
	return out, nil
}

func (r *reader) bytes8(field string, maxLen int) ([]byte, error) {
	n, ok := r.u8()
	if !ok {
		return nil, r.fail(field, "%v", errShort)
	}
	if n > maxLen {
		return nil, r.fail(field, "%d bytes, at most %d", n, maxLen)
	}
	b, ok := r.take(n)
	if !ok {
		return nil, r.fail(field, "%v", errShort)
	}
	return append([]byte(nil), b...), nil
}

func (b *authorizedBlob) marshal() ([]byte, error) {
	if len(b.PCRs) < 1 || len(b.PCRs) > pcrCount || len(b.KeyName) > maxKeyName || len(b.PolicyRef) > MaxPolicyRef || len(b.PCRBranch) != sha256.Size || len(b.Parts) != 2 {
		return nil, fmt.Errorf("authorized blob: bad fields")
	}
	for i, p := range b.PCRs {
		if p < 0 || p >= pcrCount || i > 0 && p <= b.PCRs[i-1] {
			return nil, fmt.Errorf("authorized blob: PCR list %v not strictly ascending within 0..%d", b.PCRs, pcrCount-1)
		}
	}
	out := []byte(authBlobMagic)
	out = append(out, fmtVersion(b.Epoch))
	out = binary.BigEndian.AppendUint16(out, uint16(b.Bank))
	var flags byte
	if b.PIN {
		flags = flagPIN
	}
	out = append(out, flags, byte(len(b.PCRs)))
	for _, p := range b.PCRs {
		out = append(out, byte(p))
	}
	out = append(out, byte(len(b.KeyName)))
	out = append(out, b.KeyName...)
	out = append(out, byte(len(b.PolicyRef)))
	out = append(out, b.PolicyRef...)
	out = append(out, byte(len(b.PCRBranch)))
	out = append(out, b.PCRBranch...)
	if b.Epoch != nil {
		if err := b.Epoch.check(); err != nil {
			return nil, fmt.Errorf("authorized blob: %w", err)
		}
		out = appendEpoch(out, b.Epoch)
	}
	for _, p := range b.Parts {
		if len(p) > maxBlobPart {
			return nil, fmt.Errorf("authorized blob: part of %d bytes", len(p))
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(p)))
		out = append(out, p...)
	}
	return out, nil
}

// maxAuthBlobSize bounds a GLSA blob before parsing.
const maxAuthBlobSize = 4 + 1 + 2 + 1 + 1 + pcrCount + 1 + maxKeyName + 1 + MaxPolicyRef + 1 + sha256.Size + maxEpochSize + 2*(2+maxBlobPart)

// maxEpochSize is the encoded size of the largest epoch.
const maxEpochSize = 4 + 1 + maxKeyName + 8

func fmtVersion(e *Epoch) byte {
	if e != nil {
		return epochFmtVersion
	}
	return authFmtVersion
}

func appendEpoch(out []byte, e *Epoch) []byte {
	out = binary.BigEndian.AppendUint32(out, e.Index)
	out = append(out, byte(len(e.Name)))
	out = append(out, e.Name...)
	return binary.BigEndian.AppendUint64(out, e.Value)
}

// epoch reads an approval epoch.
func (r *reader) epoch() (*Epoch, error) {
	ib, ok := r.take(4)
	if !ok {
		return nil, r.fail("epoch index", "%v", errShort)
	}
	e := &Epoch{Index: binary.BigEndian.Uint32(ib)}
	if err := checkNVIndex(e.Index); err != nil {
		return nil, r.fail("epoch index", "%v", err)
	}
	var err error
	if e.Name, err = r.bytes8("epoch counter name", maxKeyName); err != nil {
		return nil, err
	}
	if len(e.Name) < 2 {
		return nil, r.fail("epoch counter name", "%d bytes: no name", len(e.Name))
	}
	vb, ok := r.take(8)
	if !ok {
		return nil, r.fail("epoch", "%v", errShort)
	}
	e.Value = binary.BigEndian.Uint64(vb)
	return e, nil
}

func parseAuthorizedBlob(untrusted []byte) (*authorizedBlob, error) {
	r := &reader{buf: untrusted}
	if len(untrusted) > maxAuthBlobSize {
		return nil, r.fail("size", "%d bytes, more than the %d an authorized blob can have", len(untrusted), maxAuthBlobSize)
	}
	m, ok := r.take(4)
	if !ok || string(m) != authBlobMagic {
		r.off = 0
		return nil, r.fail("magic", "not a glint authorized sealed blob (want %q)", authBlobMagic)
	}
	v, ok := r.u8()
	if !ok || v != authFmtVersion && v != epochFmtVersion {
		return nil, r.fail("version", "version %d; this glint reads %d and %d", v, authFmtVersion, epochFmtVersion)
	}
	bank, ok := r.u16()
	if !ok {
		return nil, r.fail("bank", "%v", errShort)
	}
	flags, ok := r.u8()
	if !ok || flags&^flagPIN != 0 {
		return nil, r.fail("flags", "flags 0x%x", flags)
	}
	b := &authorizedBlob{Bank: Alg(bank), PIN: flags&flagPIN != 0}
	var err error
	if b.PCRs, err = r.pcrList(); err != nil {
		return nil, err
	}
	if b.KeyName, err = r.bytes8("key name", maxKeyName); err != nil {
		return nil, err
	}
	if len(b.KeyName) < 2 {
		return nil, r.fail("key name", "%d bytes: no key name", len(b.KeyName))
	}
	if b.PolicyRef, err = r.bytes8("policyRef", MaxPolicyRef); err != nil {
		return nil, err
	}
	if b.PCRBranch, err = r.bytes8("PCR branch", sha256.Size); err != nil {
		return nil, err
	}
	if len(b.PCRBranch) != sha256.Size {
		return nil, r.fail("PCR branch", "%d bytes, want a SHA-256 digest", len(b.PCRBranch))
	}
	if v == epochFmtVersion {
		if b.Epoch, err = r.epoch(); err != nil {
			return nil, err
		}
	}
	for i := 0; i < 2; i++ {
		n, ok := r.u16()
		if !ok {
			return nil, r.fail("part length", "%v", errShort)
		}
		if n > maxBlobPart {
			return nil, r.fail("part length", "%d bytes, more than %d", n, maxBlobPart)
		}
		p, ok := r.take(n)
		if !ok {
			return nil, r.fail("part", "claims %d bytes, %d remain", n, len(untrusted)-r.off)
		}
		b.Parts = append(b.Parts, append([]byte(nil), p...))
	}
	if r.off != len(untrusted) {
		return nil, r.fail("trailer", "%d unexpected bytes", len(untrusted)-r.off)
	}
	return b, nil
}

// Marshal encodes an approval for storage.
func (a *Approval) Marshal() ([]byte, error) {
	bank, pcrs, err := checkPolicy(a.Policy, Version20)
	if err != nil {
		return nil, err
	}
	if len(a.PolicyRef) > MaxPolicyRef || len(a.Signature) == 0 || len(a.Signature) > maxApprovalSig {
		return nil, fmt.Errorf("approval: policyRef %d bytes, signature %d bytes", len(a.PolicyRef), len(a.Signature))
	}
	if err := a.Policy.Epoch.check(); err != nil {
		return nil, fmt.Errorf("approval: %w", err)
	}
	out := []byte(approvalMagic)
	out = append(out, fmtVersion(a.Policy.Epoch))
	out = binary.BigEndian.AppendUint16(out, uint16(bank))
	out = append(out, byte(len(pcrs)))
	for _, p := range pcrs {
		out = append(out, byte(p))
		out = append(out, a.Policy.Values[p]...)
	}
	if a.Policy.Epoch != nil {
		out = appendEpoch(out, a.Policy.Epoch)
	}
	out = append(out, byte(len(a.PolicyRef)))
	out = append(out, a.PolicyRef...)
	out = binary.BigEndian.AppendUint16(out, uint16(a.Scheme))
	switch k := a.Key.(type) {
	case *rsa.PublicKey:
		if _, err := approvalKeyPublic(k); err != nil {
			return nil, err
		}
		n := k.N.FillBytes(make([]byte, k.N.BitLen()/8))
		out = append(out, keyTypeRSA)
		out = binary.BigEndian.AppendUint16(out, uint16(len(n)))
		out = append(out, n...)
		out = binary.BigEndian.AppendUint32(out, uint32(k.E))
	case *ecdsa.PublicKey:
		pt, err := k.Bytes()
		if err != nil || k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("approval: ECDSA key must be P-256")
		}
		out = append(out, keyTypeECDSAP256)
		out = append(out, pt...)
	default:
		return nil, fmt.Errorf("approval: key type %T", a.Key)
	}
	out = binary.BigEndian.AppendUint16(out, uint16(len(a.Signature)))
	return append(out, a.Signature...), nil
}

// maxApprovalSize bounds an approval before parsing: 24 SHA-512 PCRs, an
// RSA-4096 key and signature.
const maxApprovalSize = 4 + 1 + 2 + 1 + pcrCount*(1+64) + maxEpochSize + 1 + MaxPolicyRef + 2 + 1 + 2 + 512 + 4 + 2 + maxApprovalSig

// ParseApproval decodes an approval read from disk. Its signature is
// checked by Check (in Go) and by the TPM (UnsealAuthorized).
func ParseApproval(untrusted []byte) (*Approval, error) {
	r := &reader{buf: untrusted}
	if len(untrusted) > maxApprovalSize {
		return nil, r.fail("size", "%d bytes, more than the %d an approval can have", len(untrusted), maxApprovalSize)
	}
	m, ok := r.take(4)
	if !ok || string(m) != approvalMagic {
		r.off = 0
		return nil, r.fail("magic", "not a glint approval (want %q)", approvalMagic)
	}
	v, ok := r.u8()
	if !ok || v != authFmtVersion && v != epochFmtVersion {
		return nil, r.fail("version", "version %d; this glint reads %d and %d", v, authFmtVersion, epochFmtVersion)
	}
	bank, ok := r.u16()
	if !ok {
		return nil, r.fail("bank", "%v", errShort)
	}
	h, err := Alg(bank).Hash()
	if err != nil {
		return nil, r.fail("bank", "%v", err)
	}
	n, ok := r.u8()
	if !ok || n < 1 || n > pcrCount {
		return nil, r.fail("PCR count", "%d PCRs, want 1..%d", n, pcrCount)
	}
	a := &Approval{Policy: PCRPolicy{Bank: Alg(bank), Values: make(map[int][]byte, n)}}
	last := -1
	for i := 0; i < n; i++ {
		p, ok := r.u8()
		if !ok {
			return nil, r.fail("PCR", "%v", errShort)
		}
		if p >= pcrCount || p <= last {
			return nil, r.fail("PCR", "PCR %d out of range or out of order", p)
		}
		last = p
		d, ok := r.take(h.Size())
		if !ok {
			return nil, r.fail("PCR value", "%v", errShort)
		}
		a.Policy.Values[p] = append([]byte(nil), d...)
	}
	if v == epochFmtVersion {
		if a.Policy.Epoch, err = r.epoch(); err != nil {
			return nil, err
		}
	}
	if a.PolicyRef, err = r.bytes8("policyRef", MaxPolicyRef); err != nil {
		return nil, err
	}
	scheme, ok := r.u16()
	if !ok {
		return nil, r.fail("scheme", "%v", errShort)
	}
	a.Scheme = SigScheme(scheme)
	kt, ok := r.u8()
	if !ok {
		return nil, r.fail("key type", "%v", errShort)
	}
	switch kt {
	case keyTypeRSA:
		if a.Scheme != SchemeRSASSA && a.Scheme != SchemeRSAPSS {
			return nil, r.fail("scheme", "%s with an RSA key", a.Scheme)
		}
		ml, ok := r.u16()
		if !ok || ml != 256 && ml != 384 && ml != 512 {
			return nil, r.fail("RSA modulus", "%d bytes, want 256, 384 or 512", ml)
		}
		mod, ok := r.take(ml)
		if !ok {
			return nil, r.fail("RSA modulus", "%v", errShort)
		}
		e, ok := r.take(4)
		if !ok {
			return nil, r.fail("RSA exponent", "%v", errShort)
		}
		exp := binary.BigEndian.Uint32(e)
		k := &rsa.PublicKey{N: new(big.Int).SetBytes(mod), E: int(exp)}
		if exp < 3 || exp > 1<<31 || k.N.BitLen() != ml*8 {
			return nil, r.fail("RSA key", "modulus of %d bits for %d bytes, exponent %d", k.N.BitLen(), ml, exp)
		}
		a.Key = k
	case keyTypeECDSAP256:
		if a.Scheme != SchemeECDSA {
			return nil, r.fail("scheme", "%s with an ECDSA key", a.Scheme)
		}
		pt, ok := r.take(65)
		if !ok {
			return nil, r.fail("ECDSA point", "%v", errShort)
		}
		k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pt)
		if err != nil {
			return nil, r.fail("ECDSA point", "%v", err)
		}
		a.Key = k
	default:
		return nil, r.fail("key type", "unknown key type %d", kt)
	}
	sl, ok := r.u16()
	if !ok || sl < 1 || sl > maxApprovalSig {
		return nil, r.fail("signature length", "%d bytes, want 1..%d", sl, maxApprovalSig)
	}
	sig, ok := r.take(sl)
	if !ok {
		return nil, r.fail("signature", "%v", errShort)
	}
	a.Signature = append([]byte(nil), sig...)
	if r.off != len(untrusted) {
		return nil, r.fail("trailer", "%d unexpected bytes", len(untrusted)-r.off)
	}
	return a, nil
}

// Fingerprint names an approval key for messages: the hex of its TPM name.
func KeyFingerprint(pub crypto.PublicKey) string {
	n, err := ApprovalKeyName(pub)
	if err != nil {
		return "invalid key"
	}
	return fmt.Sprintf("%x", n[2:])
}

// AuthorizedBlobEpoch returns the approval epoch the sealed-to branch of a
// SealAuthorized blob is bound to (nil for a blob without one).
func AuthorizedBlobEpoch(blob []byte) (*Epoch, error) {
	b, err := parseAuthorizedBlob(blob)
	if err != nil {
		return nil, err
	}
	return b.Epoch.clone(), nil
}

// IsAuthorizedBlob reports whether blob is a SealAuthorized blob (rather
// than a Seal blob), so a caller knows which unseal to ask for.
func IsAuthorizedBlob(blob []byte) bool {
	return len(blob) >= 4 && string(blob[:4]) == authBlobMagic
}
