package tpm

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"sort"

	"github.com/google/go-tpm/tpm2"
)

// akTemplate is the attestation key: a restricted ECDSA P-256 signing key
// (TCG TPM v2.0 Provisioning Guidance, 7.3.4 "AK template", ECC variant).
// It is created as a primary in the owner hierarchy, so the same key comes
// back on every boot without storing anything, until the TPM is cleared;
// the verifier stores AK.Public at enrolment. Restricted means the TPM only
// signs structures it made itself (quotes), never data that merely looks
// like one (Part 1, "Restricted Signing Key").
var akTemplate = tpm2.TPMTPublic{
	Type:    tpm2.TPMAlgECC,
	NameAlg: tpm2.TPMAlgSHA256,
	ObjectAttributes: tpm2.TPMAObject{
		FixedTPM:            true,
		FixedParent:         true,
		SensitiveDataOrigin: true,
		UserWithAuth:        true,
		NoDA:                true,
		Restricted:          true,
		SignEncrypt:         true,
	},
	Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
		Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
		Scheme: tpm2.TPMTECCScheme{
			Scheme:  tpm2.TPMAlgECDSA,
			Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256}),
		},
		CurveID: tpm2.TPMECCNistP256,
	}),
	Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
		X: tpm2.TPM2BECCParameter{Buffer: make([]byte, 32)},
		Y: tpm2.TPM2BECCParameter{Buffer: make([]byte, 32)},
	}),
}

// maxNonce is sizeof(TPMU_HA) for SHA-512, the largest TPM2B_DATA a TPM
// accepts as qualifyingData (Part 2, 10.4.3).
const maxNonce = 64

// createAK creates the AK primary for label; the caller flushes it. The
// default AK (empty label) is the owner hierarchy's; labelled AKs (one per
// attestation server, see CreateLabeledAK) are the endorsement
// hierarchy's, like the EK they are proven with, so the OS can create them
// without the owner authorisation glint sets.
func (d *tpm20) createAK(label []byte) (*tpm2.CreatePrimaryResponse, error) {
	hierarchy, auth, name := tpm2.TPMRHOwner, d.auth.Owner, "owner"
	if len(label) > 0 {
		hierarchy, auth, name = tpm2.TPMRHEndorsement, nil, "endorsement"
	}
	rsp, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.AuthHandle{Handle: hierarchy, Auth: tpm2.PasswordAuth(auth)},
		InPublic:      tpm2.New2B(labeledAKTemplate(label)),
	}.Execute(d.t)
	if err != nil {
		return nil, hierarchyAuth(name, wrap20("TPM2_CreatePrimary(attestation key)", err))
	}
	return rsp, nil
}

// CreateAK returns the attestation key's public area. The key is not kept
// loaded (swtpm has three object slots); Quote recreates it, which gives the
// same key because it is derived from the owner seed.
func (d *tpm20) CreateAK() (*AK, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	rsp, err := d.createAK(nil)
	if err != nil {
		return nil, err
	}
	defer d.flush(rsp.ObjectHandle)
	return &AK{Public: append([]byte(nil), rsp.OutPublic.Bytes()...)}, nil
}

func (d *tpm20) Quote(ak *AK, bank Alg, pcrs []int, nonce []byte) (*Quote, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ak == nil {
		return nil, errors.New("quote: no attestation key")
	}
	if len(nonce) > maxNonce {
		return nil, fmt.Errorf("quote: nonce is %d bytes, at most %d", len(nonce), maxNonce)
	}
	if len(pcrs) == 0 {
		return nil, errors.New("quote: no PCRs selected")
	}
	sel, err := pcrSelect(pcrs)
	if err != nil {
		return nil, err
	}
	key, err := d.createAK(ak.label)
	if err != nil {
		return nil, err
	}
	defer d.flush(key.ObjectHandle)
	if !bytes.Equal(key.OutPublic.Bytes(), ak.Public) {
		return nil, fmt.Errorf("quote: %w (the attestation key this TPM derives now differs from the enrolled one)", ErrCleared)
	}
	selection := tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: tpm2.TPMAlgID(bank), PCRSelect: sel}}}
	// The PCRs are read right after the quote; if something extends in
	// between, the digest will not match them, so try again.
	for attempt := 0; attempt < 3; attempt++ {
		rsp, err := tpm2.Quote{
			SignHandle:     tpm2.AuthHandle{Handle: key.ObjectHandle, Name: key.Name, Auth: tpm2.PasswordAuth(nil)},
			QualifyingData: tpm2.TPM2BData{Buffer: nonce},
			InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
			PCRSelect:      selection,
		}.Execute(d.t)
		if err != nil {
			return nil, wrap20("TPM2_Quote", err)
		}
		values, err := d.readPCRs(bank, pcrs)
		if err != nil {
			return nil, err
		}
		q := &Quote{
			Attest:    rsp.Quoted.Bytes(),
			Signature: tpm2.Marshal(rsp.Signature),
			Bank:      bank,
			PCRs:      values,
		}
		if err := checkQuoteDigest(q); err == nil {
			return q, nil
		}
	}
	return nil, errors.New("quote: PCRs kept changing while quoting; try again")
}

// QuoteError says why a quote did not verify.
type QuoteError struct{ Reason string }

func (e *QuoteError) Error() string { return "quote does not verify: " + e.Reason }

// VerifyQuote checks, without a TPM, that q was signed by the attestation
// key akPublic (AK.Public, from a TPM 2.0 or 1.2), that it carries
// nonce, and that the PCR values in q.PCRs are the ones the TPM signed.
// Every input is untrusted.
func VerifyQuote(akPublic []byte, q *Quote, nonce []byte) (err error) {
	// go-tpm's reflective unmarshaller is not ours to audit; a crafted
	// structure must not take PID 1 down.
	defer func() {
		if r := recover(); r != nil {
			err = &QuoteError{Reason: fmt.Sprintf("malformed structure (%v)", r)}
		}
	}()
	if q == nil {
		return &QuoteError{Reason: "no quote"}
	}
	// A TPM 1.2 AK is a PKIX DER RSA key; a TPM 2.0 one a TPMT_PUBLIC.
	if _, derErr := x509.ParsePKIXPublicKey(akPublic); derErr == nil {
		return verifyQuote12(akPublic, q, nonce)
	}
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](akPublic)
	if err != nil {
		return &QuoteError{Reason: fmt.Sprintf("attestation key public area does not parse: %v", err)}
	}
	a := pub.ObjectAttributes
	if pub.Type != tpm2.TPMAlgECC || !a.Restricted || !a.SignEncrypt || !a.FixedTPM || a.Decrypt {
		return &QuoteError{Reason: "the key is not a restricted TPM-resident ECC signing key"}
	}
	eccParms, err := pub.Parameters.ECCDetail()
	if err != nil {
		return &QuoteError{Reason: err.Error()}
	}
	point, err := pub.Unique.ECC()
	if err != nil {
		return &QuoteError{Reason: err.Error()}
	}
	key, err := tpm2.ECDSAPub(eccParms, point)
	if err != nil {
		return &QuoteError{Reason: fmt.Sprintf("attestation key: %v", err)}
	}
	sig, err := tpm2.Unmarshal[tpm2.TPMTSignature](q.Signature)
	if err != nil {
		return &QuoteError{Reason: fmt.Sprintf("signature does not parse: %v", err)}
	}
	if sig.SigAlg != tpm2.TPMAlgECDSA {
		return &QuoteError{Reason: "signature is not ECDSA"}
	}
	ecc, err := sig.Signature.ECDSA()
	if err != nil || ecc.Hash != tpm2.TPMAlgSHA256 {
		return &QuoteError{Reason: "signature is not ECDSA with SHA-256"}
	}
	digest := sha256.Sum256(q.Attest)
	r := new(big.Int).SetBytes(ecc.SignatureR.Buffer)
	s := new(big.Int).SetBytes(ecc.SignatureS.Buffer)
	if !ecdsa.Verify(key, digest[:], r, s) {
		return &QuoteError{Reason: "the signature does not match the attestation key (forged or altered quote)"}
	}
	att, err := tpm2.Unmarshal[tpm2.TPMSAttest](q.Attest)
	if err != nil {
		return &QuoteError{Reason: fmt.Sprintf("attest structure does not parse: %v", err)}
	}
	if att.Type != tpm2.TPMSTAttestQuote {
		return &QuoteError{Reason: "the signed structure is not a quote"}
	}
	if !bytes.Equal(att.ExtraData.Buffer, nonce) {
		return &QuoteError{Reason: "the nonce differs: this quote is a replay or answers another challenge"}
	}
	return checkQuoteDigest(q)
}

// checkQuoteDigest compares the PCR selection and digest inside q.Attest
// with q.Bank and q.PCRs (Part 3, 18.4: pcrDigest is the signing scheme's
// hash over the selected PCRs in ascending order).
func checkQuoteDigest(q *Quote) error {
	att, err := tpm2.Unmarshal[tpm2.TPMSAttest](q.Attest)
	if err != nil {
		return &QuoteError{Reason: fmt.Sprintf("attest structure does not parse: %v", err)}
	}
	info, err := att.Attested.Quote()
	if err != nil {
		return &QuoteError{Reason: "the signed structure is not a quote"}
	}
	if len(info.PCRSelect.PCRSelections) != 1 || Alg(info.PCRSelect.PCRSelections[0].Hash) != q.Bank {
		return &QuoteError{Reason: fmt.Sprintf("the quote covers another bank than %s", q.Bank)}
	}
	signed := selected(info.PCRSelect.PCRSelections[0].PCRSelect)
	claimed := make([]int, 0, len(q.PCRs))
	for p := range q.PCRs {
		claimed = append(claimed, p)
	}
	sort.Ints(claimed)
	if fmt.Sprint(signed) != fmt.Sprint(claimed) {
		return &QuoteError{Reason: fmt.Sprintf("the quote covers PCRs %s but values for %s were supplied", joinInts(signed), joinInts(claimed))}
	}
	h := sha256.New()
	for _, p := range signed {
		h.Write(q.PCRs[p])
	}
	if !bytes.Equal(h.Sum(nil), info.PCRDigest.Buffer) {
		return &QuoteError{Reason: "the supplied PCR values are not the ones the TPM signed"}
	}
	return nil
}
