package tpm

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"github.com/google/go-tpm/tpm2"
)

// Owner-approved PCR policies (TPM 2.0 Part 3, 23.16 TPM2_PolicyAuthorize).
//
// A secret sealed with SealAuthorized has the authPolicy
//
//	PolicyOR( PolicyPCR(the values it is sealed to),                 branch A: this state
//	          PolicyAuthorize(approval key's name, policyRef) )      branch B: any state the owner signed
//	[then PolicyAuthValue with a PIN]
//
// so it unseals in the state it was sealed in (no approval needed: set-up
// needs no private key), and in any state whose PCR policy the owner signed
// with the approval key. A firmware update the owner approves (by signing
// the PCR values predicted from the new image) then needs no re-seal and no
// new TOTP enrolment: the same sealed object unseals after the update with
// the new approval. This is what systemd's signed PCR policies
// (systemd-cryptenroll --tpm2-public-key) and safeboot's pcrs-sign do.
//
// Unsealing with an approval (branch B):
//
//	TPM2_LoadExternal(approval public key, owner hierarchy)    the key's name
//	TPM2_VerifySignature(aHash, signature) -> TPMT_TK_VERIFIED   the TPM checks the signature
//	TPM2_StartAuthSession(policy, salted with the SRK)
//	TPM2_PolicyPCR(selection)                 digest = approvedPolicy iff the PCRs hold the approved values
//	TPM2_PolicyAuthorize(approvedPolicy, policyRef, keyName, ticket)
//	TPM2_PolicyOR(A, B)
//	TPM2_PolicyAuthValue                      with a PIN
//	TPM2_Unseal
//
// where approvedPolicy is the PolicyPCR digest of the approved values and
// aHash = SHA-256(approvedPolicy || policyRef) is what the approval key
// signs. Without an approval (branch A) the session runs PolicyPCR and
// PolicyOR only. The TPM computes and checks all of it itself; it verifies
// RSA (PKCS#1 v1.5, PSS) and ECDSA P-256 signatures over such a digest,
// not OpenPGP signatures and not Ed25519, so the approval key is RSA (2048,
// what every TPM 2.0 loads) or NIST P-256 (docs/firmware-updates.md says
// which key and why). The ticket must come from a key loaded in a real
// hierarchy: a key in TPM_RH_NULL gives a NULL ticket PolicyAuthorize
// refuses (Part 3, 20.1), so the key is loaded under the owner hierarchy
// (public part only, which LoadExternal allows there).
//
// The approval is data, checked by the TPM: it can sit unprotected next to
// the sealed blob (/boot/glint). Who holds the approval key's private half
// can approve any PCR values: it is as precious as the owner's signing key.

// MaxPolicyRef bounds a policyRef (a TPM2B_NONCE: at most a SHA-256 digest
// on PC Client TPMs).
const MaxPolicyRef = 32

// SigScheme is how an approval is signed (TCG Algorithm Registry ids).
type SigScheme uint16

const (
	SchemeRSASSA SigScheme = SigScheme(tpm2.TPMAlgRSASSA) // RSA PKCS#1 v1.5 with SHA-256
	SchemeRSAPSS SigScheme = SigScheme(tpm2.TPMAlgRSAPSS) // RSA-PSS with SHA-256
	SchemeECDSA  SigScheme = SigScheme(tpm2.TPMAlgECDSA)  // ECDSA P-256 with SHA-256
)

func (s SigScheme) String() string {
	switch s {
	case SchemeRSASSA:
		return "RSASSA-PKCS1-v1_5-SHA256"
	case SchemeRSAPSS:
		return "RSASSA-PSS-SHA256"
	case SchemeECDSA:
		return "ECDSA-P256-SHA256"
	}
	return fmt.Sprintf("scheme-0x%04x", uint16(s))
}

// ErrApproval: an approval that does not verify (wrong key, damaged
// signature, values other than the ones signed).
var ErrApproval = errors.New("the approval does not verify")

// Approval is the owner's signature over a PCR policy: "a secret sealed to
// my approval key may be released when the PCRs hold these values".
type Approval struct {
	Policy    PCRPolicy
	PolicyRef []byte           // binds the approval to a purpose ("glint-totp")
	Key       crypto.PublicKey // the approval key (*rsa.PublicKey or *ecdsa.PublicKey P-256)
	Scheme    SigScheme
	// Signature: RSA, the signature block (key size bytes); ECDSA, the
	// ASN.1 DER (r, s) Go and gpg-agent produce.
	Signature []byte
}

// approvalKeyPublic is the TPMT_PUBLIC glint loads an approval key as. Its
// encoding fixes the key's name, which the sealed object's authPolicy
// holds, so it must never change for a given key: SHA-256 name, a plain
// (unrestricted) signing key, scheme NULL (the signature says its scheme).
func approvalKeyPublic(pub crypto.PublicKey) (tpm2.TPMTPublic, error) {
	attrs := tpm2.TPMAObject{SignEncrypt: true, UserWithAuth: true}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		bits := k.N.BitLen()
		if bits != 2048 && bits != 3072 && bits != 4096 {
			return tpm2.TPMTPublic{}, fmt.Errorf("approval key: RSA-%d; a TPM verifies RSA 2048 (and on some parts 3072 or 4096)", bits)
		}
		exp := uint32(0) // the TPM's "default exponent" is 65537
		if k.E != 65537 {
			if k.E < 3 || k.E > 1<<31 {
				return tpm2.TPMTPublic{}, fmt.Errorf("approval key: RSA exponent %d", k.E)
			}
			exp = uint32(k.E)
		}
		return tpm2.TPMTPublic{
			Type: tpm2.TPMAlgRSA, NameAlg: tpm2.TPMAlgSHA256, ObjectAttributes: attrs,
			Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgRSA, &tpm2.TPMSRSAParms{
				Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
				Scheme:    tpm2.TPMTRSAScheme{Scheme: tpm2.TPMAlgNull},
				KeyBits:   tpm2.TPMKeyBits(bits),
				Exponent:  exp,
			}),
			Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgRSA, &tpm2.TPM2BPublicKeyRSA{Buffer: k.N.FillBytes(make([]byte, bits/8))}),
		}, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return tpm2.TPMTPublic{}, fmt.Errorf("approval key: ECDSA on %s; the TPM verifies NIST P-256", k.Curve.Params().Name)
		}
		pt, err := k.Bytes() // 0x04 || X || Y
		if err != nil || len(pt) != 65 {
			return tpm2.TPMTPublic{}, fmt.Errorf("approval key: invalid P-256 point")
		}
		return tpm2.TPMTPublic{
			Type: tpm2.TPMAlgECC, NameAlg: tpm2.TPMAlgSHA256, ObjectAttributes: attrs,
			Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
				Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
				Scheme:    tpm2.TPMTECCScheme{Scheme: tpm2.TPMAlgNull},
				CurveID:   tpm2.TPMECCNistP256,
				KDF:       tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
			}),
			Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
				X: tpm2.TPM2BECCParameter{Buffer: pt[1:33]},
				Y: tpm2.TPM2BECCParameter{Buffer: pt[33:65]},
			}),
		}, nil
	}
	return tpm2.TPMTPublic{}, fmt.Errorf("approval key: %T; the TPM verifies RSA and ECDSA P-256 keys (not Ed25519, not OpenPGP signatures)", pub)
}

// ApprovalKeyName is the approval key's TPM name (nameAlg || SHA-256 of its
// TPMT_PUBLIC), the value a sealed object's authPolicy commits to.
func ApprovalKeyName(pub crypto.PublicKey) ([]byte, error) {
	p, err := approvalKeyPublic(pub)
	if err != nil {
		return nil, err
	}
	n, err := tpm2.ObjectName(&p)
	if err != nil {
		return nil, err
	}
	return n.Buffer, nil
}

// authorizeBranch is the digest of the approval branch: PolicyAuthorize
// (Part 3, 23.16: the digest is reset, then extended with
// TPM_CC_PolicyAuthorize || keyName, then policyRef).
func authorizeBranch(pub crypto.PublicKey, policyRef []byte) ([]byte, error) {
	if len(policyRef) > MaxPolicyRef {
		return nil, fmt.Errorf("policyRef of %d bytes, at most %d", len(policyRef), MaxPolicyRef)
	}
	name, err := ApprovalKeyName(pub)
	if err != nil {
		return nil, err
	}
	calc, err := tpm2.NewPolicyCalculator(tpm2.TPMAlgSHA256)
	if err != nil {
		return nil, err
	}
	if err := (tpm2.PolicyAuthorize{PolicyRef: tpm2.TPM2BDigest{Buffer: policyRef}, KeySign: tpm2.TPM2BName{Buffer: name}}).Update(calc); err != nil {
		return nil, err
	}
	return calc.Hash().Digest, nil
}

// AuthorizedPolicyDigest is the authPolicy of a secret sealed with
// SealAuthorized: PolicyOR(pcrBranch, approval branch of pub and
// policyRef) (Part 3, 23.6: the digest is reset, then extended with
// TPM_CC_PolicyOR || the branch digests), then PolicyAuthValue with a PIN.
func AuthorizedPolicyDigest(pcrBranch []byte, pub crypto.PublicKey, policyRef []byte, pin bool) ([]byte, error) {
	b, err := authorizeBranch(pub, policyRef)
	if err != nil {
		return nil, err
	}
	calc, err := tpm2.NewPolicyCalculator(tpm2.TPMAlgSHA256)
	if err != nil {
		return nil, err
	}
	if err := (tpm2.PolicyOr{PHashList: orList(pcrBranch, b)}).Update(calc); err != nil {
		return nil, err
	}
	if pin {
		if err := (tpm2.PolicyAuthValue{}).Update(calc); err != nil {
			return nil, err
		}
	}
	return calc.Hash().Digest, nil
}

func orList(a, b []byte) tpm2.TPMLDigest {
	return tpm2.TPMLDigest{Digests: []tpm2.TPM2BDigest{{Buffer: a}, {Buffer: b}}}
}

// ApprovedPolicyDigest is the policy an approval approves: TPM2_PolicyPCR
// over the policy's bank and PCRs with the digest of its values, then, for
// an epoch-bound policy, TPM2_PolicyNV(counter <= epoch) (epoch20.go);
// computed offline (so predicted values can be approved before they exist).
func ApprovedPolicyDigest(policy PCRPolicy) ([]byte, error) {
	bank, pcrs, err := checkPolicy(policy, Version20)
	if err != nil {
		return nil, err
	}
	return branchDigest(bank, pcrs, policy.Values, policy.Epoch)
}

// branchDigest is PolicyPCR over values, then PolicyNV when e is set.
func branchDigest(bank Alg, pcrs []int, values map[int][]byte, e *Epoch) ([]byte, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	calc, _, err := pcrPolicyCalc(bank, pcrs, values)
	if err != nil {
		return nil, err
	}
	if e != nil {
		if err := e.policyNV().Update(calc); err != nil {
			return nil, err
		}
	}
	return calc.Hash().Digest, nil
}

// ApprovalDigest is what the approval key signs: aHash =
// SHA-256(approvedPolicy || policyRef), the digest the TPM recomputes in
// TPM2_PolicyAuthorize and compares with the ticket's.
func ApprovalDigest(policy PCRPolicy, policyRef []byte) ([]byte, error) {
	if len(policyRef) > MaxPolicyRef {
		return nil, fmt.Errorf("policyRef of %d bytes, at most %d", len(policyRef), MaxPolicyRef)
	}
	ap, err := ApprovedPolicyDigest(policy)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write(ap)
	h.Write(policyRef)
	return h.Sum(nil), nil
}

// SignApproval signs policy with a Go signer (a file key, or tests; a key
// on a card signs the same ApprovalDigest through its own tool). RSA keys
// sign PKCS#1 v1.5 unless pss.
//
// policyRef is the purpose's ("glint-totp"); an epoch-bound policy is
// signed for EpochRef of it (ApprovalRefFor).
func SignApproval(policy PCRPolicy, policyRef []byte, key crypto.Signer, pss bool) (*Approval, error) {
	policyRef = ApprovalRefFor(policy, policyRef)
	digest, err := ApprovalDigest(policy, policyRef)
	if err != nil {
		return nil, err
	}
	a := &Approval{Policy: policy, PolicyRef: append([]byte(nil), policyRef...), Key: key.Public()}
	var opts crypto.SignerOpts = crypto.SHA256
	switch key.Public().(type) {
	case *rsa.PublicKey:
		a.Scheme = SchemeRSASSA
		if pss {
			a.Scheme = SchemeRSAPSS
			// The TPM verifies PSS with any salt length (Part 1,
			// "RSASSA-PSS"); the digest's length is the usual choice.
			opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
		}
	case *ecdsa.PublicKey:
		a.Scheme = SchemeECDSA
	}
	if _, err := approvalKeyPublic(a.Key); err != nil {
		return nil, err
	}
	if a.Signature, err = key.Sign(rand.Reader, digest, opts); err != nil {
		return nil, fmt.Errorf("sign approval: %w", err)
	}
	return a, nil
}

// Check verifies an approval in Go, so a wrong or damaged approval is named
// before the TPM is asked (the TPM checks again; this is not the guard).
func (a *Approval) Check() error {
	digest, err := ApprovalDigest(a.Policy, a.PolicyRef)
	if err != nil {
		return err
	}
	switch k := a.Key.(type) {
	case *rsa.PublicKey:
		switch a.Scheme {
		case SchemeRSASSA:
			err = rsa.VerifyPKCS1v15(k, crypto.SHA256, digest, a.Signature)
		case SchemeRSAPSS:
			err = rsa.VerifyPSS(k, crypto.SHA256, digest, a.Signature, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
		default:
			err = fmt.Errorf("scheme %s with an RSA key", a.Scheme)
		}
	case *ecdsa.PublicKey:
		if a.Scheme != SchemeECDSA {
			err = fmt.Errorf("scheme %s with an ECDSA key", a.Scheme)
		} else if !ecdsa.VerifyASN1(k, digest, a.Signature) {
			err = errors.New("ECDSA signature does not verify")
		}
	default:
		err = fmt.Errorf("key type %T", a.Key)
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrApproval, err)
	}
	return nil
}

// tpmSignature converts the approval's signature to a TPMT_SIGNATURE.
func (a *Approval) tpmSignature() (tpm2.TPMTSignature, error) {
	switch a.Scheme {
	case SchemeRSASSA:
		return tpm2.TPMTSignature{SigAlg: tpm2.TPMAlgRSASSA, Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgRSASSA,
			&tpm2.TPMSSignatureRSA{Hash: tpm2.TPMAlgSHA256, Sig: tpm2.TPM2BPublicKeyRSA{Buffer: a.Signature}})}, nil
	case SchemeRSAPSS:
		return tpm2.TPMTSignature{SigAlg: tpm2.TPMAlgRSAPSS, Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgRSAPSS,
			&tpm2.TPMSSignatureRSA{Hash: tpm2.TPMAlgSHA256, Sig: tpm2.TPM2BPublicKeyRSA{Buffer: a.Signature}})}, nil
	case SchemeECDSA:
		var rs struct{ R, S *big.Int }
		rest, err := asn1.Unmarshal(a.Signature, &rs)
		if err != nil || len(rest) != 0 || rs.R == nil || rs.S == nil || rs.R.Sign() <= 0 || rs.S.Sign() <= 0 || rs.R.BitLen() > 256 || rs.S.BitLen() > 256 {
			return tpm2.TPMTSignature{}, fmt.Errorf("%w: not an ECDSA P-256 (r, s) signature", ErrApproval)
		}
		return tpm2.TPMTSignature{SigAlg: tpm2.TPMAlgECDSA, Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgECDSA,
			&tpm2.TPMSSignatureECC{Hash: tpm2.TPMAlgSHA256,
				SignatureR: tpm2.TPM2BECCParameter{Buffer: rs.R.FillBytes(make([]byte, 32))},
				SignatureS: tpm2.TPM2BECCParameter{Buffer: rs.S.FillBytes(make([]byte, 32))}})}, nil
	}
	return tpm2.TPMTSignature{}, fmt.Errorf("%w: unknown scheme %s", ErrApproval, a.Scheme)
}

// Authorizer is implemented by TPMs that can seal to owner-approved PCR
// policies (TPM 2.0). TPM 1.2 has no TPM2_PolicyAuthorize: there secrets
// are sealed again to predicted values before an update (Seal).
type Authorizer interface {
	// SealAuthorized seals secret so that it unseals when the PCRs hold
	// policy's values, or any values over the same bank and PCRs that
	// key approves for policyRef (and with pin). With policy.Epoch the
	// secret is bound to that approval epoch counter (epoch20.go): the
	// sealed-to values hold while the counter reads at most
	// policy.Epoch.Value, and only epoch-bound approvals for
	// EpochRef(policyRef) open it.
	SealAuthorized(secret []byte, key crypto.PublicKey, policyRef []byte, policy PCRPolicy, pin []byte) ([]byte, error)
	// UnsealAuthorized returns the secret if the PCRs hold the sealed-to
	// values (approval nil) or the approval verifies and the PCRs hold the
	// approved values.
	UnsealAuthorized(blob []byte, approval *Approval, pin []byte) ([]byte, error)
}

var _ Authorizer = (*tpm20)(nil)

func (d *tpm20) SealAuthorized(secret []byte, key crypto.PublicKey, policyRef []byte, policy PCRPolicy, pin []byte) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(secret) == 0 || len(secret) > maxSecret {
		return nil, fmt.Errorf("seal: secret is %d bytes; a TPM 2.0 sealed object holds 1..%d", len(secret), maxSecret)
	}
	bank, pcrs, err := checkPolicy(policy, Version20)
	if err != nil {
		return nil, err
	}
	pcrBranch, err := branchDigest(bank, pcrs, policy.Values, policy.Epoch)
	if err != nil {
		return nil, err
	}
	if policy.Epoch != nil {
		// A secret bound to a counter this TPM does not have, or whose
		// bound the counter already passed, could never unseal in its
		// sealed-to state: refuse it now.
		if err := d.checkEpochNow(policy.Epoch); err != nil {
			return nil, fmt.Errorf("seal: %w", err)
		}
		policyRef = EpochRef(policyRef)
	}
	authPolicy, err := AuthorizedPolicyDigest(pcrBranch, key, policyRef, len(pin) > 0)
	if err != nil {
		return nil, err
	}
	name, _ := ApprovalKeyName(key)
	auth := pinAuth(pin)
	defer clear(auth)
	parts, err := d.createSealed(secret, authPolicy, auth, len(pin) > 0)
	if err != nil {
		return nil, err
	}
	b := &authorizedBlob{Bank: bank, PIN: len(pin) > 0, PCRs: pcrs, KeyName: name, PolicyRef: append([]byte(nil), policyRef...), PCRBranch: pcrBranch, Epoch: policy.Epoch.clone(), Parts: parts}
	return b.marshal()
}

// createSealed makes a keyed-hash sealed object under the SRK with the
// given authPolicy, over a salted, parameter-encrypted session (as Seal).
func (d *tpm20) createSealed(secret, authPolicy, auth []byte, pin bool) ([][]byte, error) {
	// The persistent SRK (owner.go): creating a transient one would need
	// the owner authorisation, which glint sets at set-up.
	srkHandle, srkName, srkPub, release, err := d.srkForUse()
	if err != nil {
		return nil, err
	}
	defer release()
	template := tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgKeyedHash,
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{
			FixedTPM: true, FixedParent: true, AdminWithPolicy: true,
			NoDA: !pin,
		},
		AuthPolicy: tpm2.TPM2BDigest{Buffer: authPolicy},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgKeyedHash,
			&tpm2.TPMSKeyedHashParms{Scheme: tpm2.TPMTKeyedHashScheme{Scheme: tpm2.TPMAlgNull}}),
	}
	rsp, err := tpm2.Create{
		ParentHandle: tpm2.AuthHandle{
			Handle: srkHandle, Name: srkName,
			Auth: tpm2.HMAC(tpm2.TPMAlgSHA256, 16, tpm2.Salted(srkHandle, *srkPub), tpm2.AESEncryption(128, tpm2.EncryptIn)),
		},
		InSensitive: tpm2.TPM2BSensitiveCreate{Sensitive: &tpm2.TPMSSensitiveCreate{
			UserAuth: tpm2.TPM2BAuth{Buffer: auth},
			Data:     tpm2.NewTPMUSensitiveCreate(&tpm2.TPM2BSensitiveData{Buffer: secret}),
		}},
		InPublic: tpm2.New2B(template),
	}.Execute(d.t)
	if err != nil {
		return nil, wrap20("TPM2_Create(sealed object)", err)
	}
	return [][]byte{rsp.OutPublic.Bytes(), rsp.OutPrivate.Buffer}, nil
}

func (d *tpm20) UnsealAuthorized(blob []byte, a *Approval, pin []byte) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	b, err := parseAuthorizedBlob(blob)
	if err != nil {
		return nil, err
	}
	if b.PIN && len(pin) == 0 {
		return nil, fmt.Errorf("unseal: this secret needs its PIN: %w", ErrAuthFail)
	}
	if !b.PIN && len(pin) > 0 {
		return nil, errors.New("unseal: a PIN was given but this secret was sealed without one")
	}
	sel, err := pcrSelect(b.PCRs)
	if err != nil {
		return nil, err
	}
	selection := tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: tpm2.TPMAlgID(b.Bank), PCRSelect: sel}}}

	// The approval branch's pieces, checked in Go first only so that a
	// refusal is explained; the TPM is the guard.
	var (
		approved, aHash, name []byte
		sig                   tpm2.TPMTSignature
		pub                   tpm2.TPMTPublic
	)
	if a != nil {
		if name, err = ApprovalKeyName(a.Key); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrApproval, err)
		}
		if string(name) != string(b.KeyName) {
			return nil, fmt.Errorf("%w: signed by a key other than the approval key this secret was sealed to", ErrApproval)
		}
		if b.Epoch != nil && a.Policy.Epoch == nil {
			return nil, fmt.Errorf("%w: an approval made before approval epochs (it could be replayed forever); this secret accepts only epoch-bound approvals: approve the image again", ErrApproval)
		}
		if string(a.PolicyRef) != string(b.PolicyRef) {
			return nil, fmt.Errorf("%w: approval for %q, this secret is %q", ErrApproval, a.PolicyRef, b.PolicyRef)
		}
		if b.Epoch != nil && (a.Policy.Epoch.Index != b.Epoch.Index || string(a.Policy.Epoch.Name) != string(b.Epoch.Name)) {
			return nil, fmt.Errorf("%w: bound to approval epoch counter 0x%08x, this secret to 0x%08x (another counter or a redefined one)", ErrApproval, a.Policy.Epoch.Index, b.Epoch.Index)
		}
		bank, pcrs, err := checkPolicy(a.Policy, Version20)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrApproval, err)
		}
		if bank != b.Bank || joinInts(pcrs) != joinInts(b.PCRs) {
			return nil, fmt.Errorf("%w: approves %s PCRs %s, this secret needs %s PCRs %s", ErrApproval, bank, joinInts(pcrs), b.Bank, joinInts(b.PCRs))
		}
		if err := a.Check(); err != nil {
			return nil, err
		}
		if approved, err = ApprovedPolicyDigest(a.Policy); err != nil {
			return nil, err
		}
		if sig, err = a.tpmSignature(); err != nil {
			return nil, err
		}
		if aHash, err = ApprovalDigest(a.Policy, a.PolicyRef); err != nil {
			return nil, err
		}
		if pub, err = approvalKeyPublic(a.Key); err != nil {
			return nil, err
		}
	}
	// The approval branch's digest is recomputed from the blob's key name
	// and policyRef, exactly as at sealing.
	calc, err := tpm2.NewPolicyCalculator(tpm2.TPMAlgSHA256)
	if err != nil {
		return nil, err
	}
	if err := (tpm2.PolicyAuthorize{PolicyRef: tpm2.TPM2BDigest{Buffer: b.PolicyRef}, KeySign: tpm2.TPM2BName{Buffer: b.KeyName}}).Update(calc); err != nil {
		return nil, err
	}
	branches := orList(b.PCRBranch, calc.Hash().Digest)
	// The epoch this session is bound to: the approval's, or the
	// sealed-to branch's. A bound the counter passed is named here; the
	// TPM refuses it anyway (PolicyNV).
	var bound *Epoch
	if b.Epoch != nil {
		bound = b.Epoch
		if a != nil {
			bound = a.Policy.Epoch
		}
		if err := d.checkEpochNow(bound); err != nil && epochPrecheck {
			var ee *EpochError
			if errors.As(err, &ee) {
				return nil, &PolicyError{Bank: b.Bank, PCRs: b.PCRs, Err: err}
			}
			return nil, err
		}
	}
	auth := pinAuth(pin)
	defer clear(auth)

	var ticket tpm2.TPMTTKVerified
	if a != nil {
		// The approval key, public part only, under the owner hierarchy
		// (a NULL-hierarchy key would give a NULL ticket); the TPM verifies
		// the signature and issues a ticket.
		ext, err := tpm2.LoadExternal{InPublic: tpm2.New2B(pub), Hierarchy: tpm2.TPMRHOwner}.Execute(d.t)
		if err != nil {
			return nil, wrap20("TPM2_LoadExternal(approval key)", err)
		}
		ver, err := tpm2.VerifySignature{KeyHandle: tpm2.NamedHandle{Handle: ext.ObjectHandle, Name: ext.Name},
			Digest: tpm2.TPM2BDigest{Buffer: aHash}, Signature: sig}.Execute(d.t)
		d.flush(ext.ObjectHandle)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrApproval, wrap20("TPM2_VerifySignature", err))
		}
		ticket = ver.Validation
	}
	// The persistent SRK (owner.go): creating a transient one would need
	// the owner authorisation, which glint sets at set-up.
	srkHandle, srkName, srkPub, release, err := d.srkForUse()
	if err != nil {
		return nil, err
	}
	defer release()
	loaded, err := tpm2.Load{
		ParentHandle: tpm2.AuthHandle{Handle: srkHandle, Name: srkName, Auth: tpm2.PasswordAuth(nil)},
		InPrivate:    tpm2.TPM2BPrivate{Buffer: b.Parts[1]},
		InPublic:     tpm2.BytesAs2B[tpm2.TPMTPublic](b.Parts[0]),
	}.Execute(d.t)
	if err != nil {
		if code, ok := rc20(err); ok && canonical(code) == rcIntegrity {
			return nil, fmt.Errorf("unseal: %w (%v)", ErrCleared, wrap20("TPM2_Load", err))
		}
		return nil, wrap20("TPM2_Load(sealed object)", err)
	}
	defer d.flush(loaded.ObjectHandle)
	sess, closeSess, err := tpm2.PolicySession(d.t, tpm2.TPMAlgSHA256, 16,
		tpm2.Salted(srkHandle, *srkPub), tpm2.AESEncryption(128, tpm2.EncryptOut), tpm2.Auth(auth))
	if err != nil {
		return nil, wrap20("TPM2_StartAuthSession", err)
	}
	defer closeSess()
	policyErr := func(cmd string, err error) error {
		return &PolicyError{Bank: b.Bank, PCRs: b.PCRs, Err: wrap20(cmd, err)}
	}
	if _, err := (tpm2.PolicyPCR{PolicySession: sess.Handle(), Pcrs: selection}).Execute(d.t); err != nil {
		return nil, wrap20("TPM2_PolicyPCR", err)
	}
	if bound != nil {
		nv := bound.policyNV()
		nv.PolicySession = sess.Handle()
		if _, err := nv.Execute(d.t); err != nil {
			// TPM_RC_POLICY: the counter moved past the bound since the
			// check above (Part 3, 23.9).
			return nil, policyErr("TPM2_PolicyNV", err)
		}
	}
	if a != nil {
		if _, err := (tpm2.PolicyAuthorize{
			PolicySession: sess.Handle(), ApprovedPolicy: tpm2.TPM2BDigest{Buffer: approved},
			PolicyRef: tpm2.TPM2BDigest{Buffer: a.PolicyRef}, KeySign: tpm2.TPM2BName{Buffer: name},
			CheckTicket: ticket,
		}).Execute(d.t); err != nil {
			// TPM_RC_VALUE: the session's digest is not the approved one,
			// i.e. the PCRs do not hold the approved values (Part 3, 23.16).
			return nil, policyErr("TPM2_PolicyAuthorize", err)
		}
	}
	// TPM_RC_VALUE here: the digest is in neither branch (no approval, and
	// the PCRs moved away from the sealed-to values).
	if _, err := (tpm2.PolicyOr{PolicySession: sess.Handle(), PHashList: branches}).Execute(d.t); err != nil {
		return nil, policyErr("TPM2_PolicyOR", err)
	}
	if b.PIN {
		if _, err := (tpm2.PolicyAuthValue{PolicySession: sess.Handle()}).Execute(d.t); err != nil {
			return nil, wrap20("TPM2_PolicyAuthValue", err)
		}
	}
	rsp, err := tpm2.Unseal{ItemHandle: tpm2.AuthHandle{Handle: loaded.ObjectHandle, Name: loaded.Name, Auth: sess}}.Execute(d.t)
	if err != nil {
		if code, ok := rc20(err); ok {
			switch canonical(code) {
			case rcPolicyFail, rcPCRChanged:
				return nil, policyErr("TPM2_Unseal", err)
			case rcLockout:
				return nil, d.lockoutError(wrap20("TPM2_Unseal", err))
			}
		}
		return nil, wrap20("TPM2_Unseal", err)
	}
	return rsp.OutData.Buffer, nil
}
