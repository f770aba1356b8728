package tpm

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/go-tpm/tpm2"
)

// Endorsement and credential activation: how a verifier that has never met
// a machine learns that an attestation key (AK) lives in the same genuine
// TPM as a known endorsement key (EK).
//
// The EK is a decryption key the TPM manufacturer's certificate vouches for
// (TCG EK Credential Profile 2.0, 2.1; TPM 1.2: TCG Credential Profiles
// 1.2). It cannot sign, so it cannot sign the AK. Instead the verifier
// encrypts a secret to the EK that the TPM releases only if the named AK is
// loaded in it with the right attributes:
//
//   - TPM 2.0: MakeCredential / TPM2_ActivateCredential (Part 1, 24
//     "Credential Protection"; Part 3, 12.5). The seed is encrypted to the
//     EK (RSA-OAEP label "IDENTITY"), and the secret is protected under keys
//     derived from the seed and the AK's name (nameAlg || H(TPMT_PUBLIC)),
//     so only a TPM holding both the EK and exactly that AK decrypts it.
//   - TPM 1.2: the Privacy-CA protocol (Main Part 1, 11.4; Part 3, 15.2
//     TPM_ActivateIdentity). A TPM_ASYM_CA_CONTENTS holding a session key
//     and the digest of the AIK's TPM_PUBKEY is encrypted to the EK
//     (RSA-OAEP SHA-1, label "TCPA"); the TPM returns the session key only
//     if that AIK is loaded and is an identity key, and the secret itself is
//     encrypted under the session key in software (AES-256-GCM here; the
//     format of that half is the CA's choice, Part 1, 11.4.2).
//
// Both families therefore give the same guarantee: whoever returns the
// secret has the EK's TPM and the AK inside it. The verifier side
// (MakeCredential) needs no TPM.

// EK is a TPM's endorsement key as a verifier sees it.
type EK struct {
	Version Version
	// Public is the key: TPM 2.0 TPMT_PUBLIC (the contents of a
	// TPM2B_PUBLIC), TPM 1.2 PKIX DER RSA public key.
	Public []byte
	// Certificate is the DER X.509 EK certificate the manufacturer left in
	// NV (TPM 2.0 index 0x01c00002; TPM 1.2 index 0x1000f000), nil if the
	// TPM has none (firmware TPMs often fetch theirs online instead).
	Certificate []byte
}

// CredentialSecretSize is the size of every activation secret: a SHA-256
// digest, the largest TPM2B_DIGEST an RSA-2048/SHA-256 EK can carry (Part
// 2, 11.4.1 TPMS_ID_OBJECT: the credential is a TPM2B_DIGEST of the EK's
// nameAlg).
const CredentialSecretSize = 32

// Credential is a secret encrypted to one TPM, for one AK.
type Credential struct {
	// EKEncrypted is the part only the EK decrypts: TPM 2.0 the encrypted
	// seed (TPM2B_ENCRYPTED_SECRET contents); TPM 1.2 the encrypted
	// TPM_ASYM_CA_CONTENTS.
	EKEncrypted []byte
	// Blob carries the secret: TPM 2.0 the TPMS_ID_OBJECT (integrity HMAC
	// and encrypted credential); TPM 1.2 nonce || AES-256-GCM(secret) under
	// the session key.
	Blob []byte
}

// Caps on credentials a device receives from the network. The EK is
// RSA-2048 on both families (2.0: 256-byte seed; 1.2: 256-byte OAEP block);
// the 2.0 blob is a 32-byte HMAC + a 34-byte encrypted TPM2B_DIGEST.
const (
	maxCredentialEKPart = 512
	maxCredentialBlob   = 256
)

// Endorser is implemented by every TPM this package opens (1.2 and 2.0):
// the verbs an attestation client needs beyond TPM. Get it with a type
// assertion: e, ok := dev.(tpm.Endorser).
type Endorser interface {
	// EK returns the endorsement key and its certificate, if the TPM has one.
	EK() (*EK, error)
	// CreateLabeledAK returns an attestation key bound to label: on TPM 2.0
	// each label gives a different key, the same one every time (so a
	// device can use one AK per attestation server and servers cannot link
	// it by its key), derived from the endorsement seed: the OS needs no
	// owner authorisation for it, and a TPM clear keeps it, as it keeps the
	// EK. On TPM 1.2 every call makes a new AIK (keep its MarshalBinary),
	// the label is ignored, and the TPM requires the owner's authorisation
	// (TPM_MakeIdentity, Main Part 3, 15.1). A nil label is CreateAK's key.
	CreateLabeledAK(label []byte) (*AK, error)
	// ActivateCredential returns the secret in c if it was made for this
	// TPM's EK and for ak, which must live in this TPM. The returned slice
	// is the caller's to wipe.
	ActivateCredential(ak *AK, c *Credential) ([]byte, error)
}

// CredentialError says why a credential could not be made or activated.
type CredentialError struct{ Reason string }

func (e *CredentialError) Error() string { return "credential activation: " + e.Reason }

// PublicKey decodes the EK's public key (*rsa.PublicKey or *ecdsa.PublicKey).
func (ek *EK) PublicKey() (crypto.PublicKey, error) {
	switch ek.Version {
	case Version12:
		k, err := x509.ParsePKIXPublicKey(ek.Public)
		if err != nil {
			return nil, &CredentialError{Reason: fmt.Sprintf("TPM 1.2 EK does not parse: %v", err)}
		}
		if _, ok := k.(*rsa.PublicKey); !ok {
			return nil, &CredentialError{Reason: "TPM 1.2 EK is not an RSA key"}
		}
		return checkEKKey(k)
	case Version20:
		pub, err := unmarshalPublic(ek.Public)
		if err != nil {
			return nil, &CredentialError{Reason: fmt.Sprintf("EK public area does not parse: %v", err)}
		}
		k, err := publicKeyOf(pub)
		if err != nil {
			return nil, err
		}
		return checkEKKey(k)
	}
	return nil, &CredentialError{Reason: fmt.Sprintf("EK of unknown TPM family %d", ek.Version)}
}

// checkEKKey accepts the key sizes of the TCG EK templates (EK Credential
// Profile 2.0, B.3: RSA 2048 low range, RSA 3072/4096 and ECC P-256/P-384
// high range), so a crafted key cannot make a verifier do expensive or
// degenerate arithmetic.
func checkEKKey(k crypto.PublicKey) (crypto.PublicKey, error) {
	switch k := k.(type) {
	case *rsa.PublicKey:
		if b := k.N.BitLen(); (b != 2048 && b != 3072 && b != 4096) || k.E != 65537 {
			return nil, &CredentialError{Reason: fmt.Sprintf("an RSA EK of %d bits with exponent %d is not a TCG EK", b, k.E)}
		}
	case *ecdsa.PublicKey:
		if n := k.Curve.Params().Name; n != "P-256" && n != "P-384" {
			return nil, &CredentialError{Reason: fmt.Sprintf("an ECC EK on curve %s is not a TCG EK", n)}
		}
	default:
		return nil, &CredentialError{Reason: "the EK is neither RSA nor ECC"}
	}
	return k, nil
}

// Fingerprint names an EK across both families: the hex SHA-256 of its
// public key in PKIX DER. An organization's flashing station records it to
// pre-register machines (glint attest ek prints it).
func (ek *EK) Fingerprint() (string, error) {
	k, err := ek.PublicKey()
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return "", &CredentialError{Reason: fmt.Sprintf("EK: %v", err)}
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// ParseCertificate decodes ek.Certificate and checks that it certifies
// this EK (the same public key). It does not check the issuer chain: that
// is the verifier's policy (which manufacturers' roots it trusts).
func (ek *EK) ParseCertificate() (*x509.Certificate, error) {
	if len(ek.Certificate) == 0 {
		return nil, &CredentialError{Reason: "the TPM has no EK certificate"}
	}
	cert, err := x509.ParseCertificate(ek.Certificate)
	if err != nil {
		return nil, &CredentialError{Reason: fmt.Sprintf("EK certificate does not parse: %v", err)}
	}
	k, err := ek.PublicKey()
	if err != nil {
		return nil, err
	}
	if !samePublicKey(cert.PublicKey, k) {
		return nil, &CredentialError{Reason: "the EK certificate is for another key than this EK"}
	}
	return cert, nil
}

func samePublicKey(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}

// unmarshalPublic decodes an untrusted TPMT_PUBLIC. go-tpm's reflective
// unmarshaller is not ours to audit; a crafted structure must not take a
// server or PID 1 down, so a panic becomes an error.
func unmarshalPublic(b []byte) (pub *tpm2.TPMTPublic, err error) {
	defer func() {
		if r := recover(); r != nil {
			pub, err = nil, fmt.Errorf("malformed TPMT_PUBLIC (%v)", r)
		}
	}()
	if len(b) == 0 || len(b) > maxPublicSize {
		return nil, fmt.Errorf("TPMT_PUBLIC of %d bytes, want 1..%d", len(b), maxPublicSize)
	}
	return tpm2.Unmarshal[tpm2.TPMTPublic](b)
}

// maxPublicSize bounds a TPMT_PUBLIC: sizeof(TPMT_PUBLIC) is under 1 KiB
// for every key type a PC Client TPM supports (Part 2, 12.2.4; RSA-4096
// unique is 512 bytes).
const maxPublicSize = 1024

func publicKeyOf(pub *tpm2.TPMTPublic) (crypto.PublicKey, error) {
	switch pub.Type {
	case tpm2.TPMAlgRSA:
		parms, err := pub.Parameters.RSADetail()
		if err != nil {
			return nil, &CredentialError{Reason: err.Error()}
		}
		n, err := pub.Unique.RSA()
		if err != nil {
			return nil, &CredentialError{Reason: err.Error()}
		}
		k, err := tpm2.RSAPub(parms, n)
		if err != nil {
			return nil, &CredentialError{Reason: err.Error()}
		}
		return k, nil
	case tpm2.TPMAlgECC:
		parms, err := pub.Parameters.ECCDetail()
		if err != nil {
			return nil, &CredentialError{Reason: err.Error()}
		}
		point, err := pub.Unique.ECC()
		if err != nil {
			return nil, &CredentialError{Reason: err.Error()}
		}
		k, err := tpm2.ECDSAPub(parms, point)
		if err != nil {
			return nil, &CredentialError{Reason: err.Error()}
		}
		return k, nil
	}
	return nil, &CredentialError{Reason: fmt.Sprintf("key type 0x%04x is neither RSA nor ECC", uint16(pub.Type))}
}

// CheckAKPublic tells a verifier whether akPublic (AK.Public) is an
// attestation key it may enrol: on TPM 2.0 a restricted, TPM-resident
// (fixedTPM, fixedParent, sensitiveDataOrigin) signing key that cannot
// decrypt, so it only ever signs structures the TPM made itself (Part 1,
// "Restricted Signing Key"); on TPM 1.2 an RSA-2048 key (the AIK's identity
// usage is what TPM_ActivateIdentity checks, Part 3, 15.2).
func CheckAKPublic(v Version, akPublic []byte) error {
	switch v {
	case Version12:
		k, err := x509.ParsePKIXPublicKey(akPublic)
		if err != nil {
			return &CredentialError{Reason: fmt.Sprintf("TPM 1.2 AK does not parse: %v", err)}
		}
		r, ok := k.(*rsa.PublicKey)
		if !ok || r.N.BitLen() != 2048 {
			return &CredentialError{Reason: "a TPM 1.2 AK must be an RSA-2048 key"}
		}
		return nil
	case Version20:
		pub, err := unmarshalPublic(akPublic)
		if err != nil {
			return &CredentialError{Reason: fmt.Sprintf("AK public area does not parse: %v", err)}
		}
		a := pub.ObjectAttributes
		if !a.Restricted || !a.SignEncrypt || a.Decrypt || !a.FixedTPM || !a.FixedParent || !a.SensitiveDataOrigin {
			return &CredentialError{Reason: "the AK is not a restricted, TPM-generated, non-duplicable signing key"}
		}
		if pub.NameAlg != tpm2.TPMAlgSHA256 {
			return &CredentialError{Reason: "the AK's name algorithm is not SHA-256"}
		}
		k, err := publicKeyOf(pub)
		if err != nil {
			return err
		}
		if _, ok := k.(*ecdsa.PublicKey); !ok {
			return &CredentialError{Reason: "glint verifies ECDSA P-256 AKs on TPM 2.0 (the key glint creates)"}
		}
		return nil
	}
	return &CredentialError{Reason: fmt.Sprintf("unknown TPM family %d", v)}
}

// akName is the TPM 2.0 name of an AK: nameAlg || H_nameAlg(TPMT_PUBLIC)
// (Part 1, 16 "Names").
func akName(akPublic []byte) ([]byte, error) {
	pub, err := unmarshalPublic(akPublic)
	if err != nil {
		return nil, err
	}
	if pub.NameAlg != tpm2.TPMAlgSHA256 {
		return nil, errors.New("the AK's name algorithm is not SHA-256")
	}
	sum := sha256.Sum256(akPublic)
	return append([]byte{0x00, 0x0B}, sum[:]...), nil
}

// MakeCredential encrypts secret (CredentialSecretSize bytes) so that only
// the TPM owning ek can release it, and only while the AK akPublic is
// loaded in it. It runs on the verifier and needs no TPM. rnd is the
// randomness for the encryption (crypto/rand.Reader).
func MakeCredential(ek *EK, akPublic, secret []byte, rnd io.Reader) (*Credential, error) {
	if len(secret) != CredentialSecretSize {
		return nil, &CredentialError{Reason: fmt.Sprintf("secret is %d bytes, want %d", len(secret), CredentialSecretSize)}
	}
	if err := CheckAKPublic(ek.Version, akPublic); err != nil {
		return nil, err
	}
	switch ek.Version {
	case Version20:
		return makeCredential20(ek, akPublic, secret, rnd)
	case Version12:
		return makeCredential12(ek, akPublic, secret, rnd)
	}
	return nil, &CredentialError{Reason: fmt.Sprintf("unknown TPM family %d", ek.Version)}
}

func makeCredential20(ek *EK, akPublic, secret []byte, rnd io.Reader) (*Credential, error) {
	pub, err := unmarshalPublic(ek.Public)
	if err != nil {
		return nil, &CredentialError{Reason: fmt.Sprintf("EK public area does not parse: %v", err)}
	}
	a := pub.ObjectAttributes
	if !a.Restricted || !a.Decrypt || a.SignEncrypt || !a.FixedTPM {
		return nil, &CredentialError{Reason: "the EK is not a restricted decryption key resident in the TPM"}
	}
	key, err := tpm2.ImportEncapsulationKey(pub)
	if err != nil {
		return nil, &CredentialError{Reason: fmt.Sprintf("EK: %v", err)}
	}
	name, err := akName(akPublic)
	if err != nil {
		return nil, &CredentialError{Reason: err.Error()}
	}
	idObject, encSecret, err := tpm2.CreateCredential(rnd, key, name, secret)
	if err != nil {
		return nil, &CredentialError{Reason: err.Error()}
	}
	return &Credential{EKEncrypted: encSecret, Blob: idObject}, nil
}

// checkCredential bounds a credential received from the network before
// anything is sent to the TPM.
func checkCredential(c *Credential) error {
	if c == nil || len(c.EKEncrypted) == 0 || len(c.Blob) == 0 {
		return &CredentialError{Reason: "empty credential"}
	}
	if len(c.EKEncrypted) > maxCredentialEKPart || len(c.Blob) > maxCredentialBlob {
		return &CredentialError{Reason: fmt.Sprintf("credential parts of %d and %d bytes exceed %d and %d", len(c.EKEncrypted), len(c.Blob), maxCredentialEKPart, maxCredentialBlob)}
	}
	return nil
}

// EqualSecret compares two activation secrets in constant time.
func EqualSecret(a, b []byte) bool {
	return len(a) == len(b) && subtle.ConstantTimeCompare(a, b) == 1
}

// VerifyEKCertificate checks an EK certificate's chain to one of roots (the
// TPM manufacturers' CAs an organization trusts), through intermediates.
//
// Two things about real EK certificates need care. They carry a critical
// subjectAltName holding only the TPM manufacturer's directory name (TCG EK
// Credential Profile 2.0, 3.2.9: critical because the subject is empty),
// which Go lists as unhandled; there is no name in it to check, so it is
// accepted. And TPM 1.2 EK certificates are signed with SHA-1 RSA (the
// Infineon and STMicro TPM 1.2 CAs, and swtpm's), which Go's verifier
// refuses outright: for those the chain is walked here, each link checked
// with RSA PKCS#1 v1.5 over SHA-1, the issuer a CA, every certificate in
// its validity period. A SHA-1 chosen-prefix collision against a TPM
// vendor's CA is the residual risk of trusting TPM 1.2 certificates at all.
func VerifyEKCertificate(cert *x509.Certificate, roots, intermediates []*x509.Certificate, now time.Time) error {
	c := *cert
	c.UnhandledCriticalExtensions = nil
	for _, oid := range cert.UnhandledCriticalExtensions {
		if !oid.Equal(oidSubjectAltName) {
			c.UnhandledCriticalExtensions = append(c.UnhandledCriticalExtensions, oid)
		}
	}
	if len(c.UnhandledCriticalExtensions) > 0 {
		return &CredentialError{Reason: fmt.Sprintf("the EK certificate has critical extensions glint does not understand: %v", c.UnhandledCriticalExtensions)}
	}
	rootPool, interPool := x509.NewCertPool(), x509.NewCertPool()
	for _, r := range roots {
		rootPool.AddCert(r)
	}
	for _, r := range intermediates {
		interPool.AddCert(r)
	}
	_, err := c.Verify(x509.VerifyOptions{Roots: rootPool, Intermediates: interPool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err == nil {
		return nil
	}
	var insecure x509.InsecureAlgorithmError
	if !errors.As(err, &insecure) && !strings.Contains(err.Error(), "insecure algorithm") {
		return &CredentialError{Reason: fmt.Sprintf("the EK certificate does not chain to a trusted manufacturer CA: %v", err)}
	}
	if err := walkLegacyChain(&c, roots, intermediates, now); err != nil {
		return &CredentialError{Reason: fmt.Sprintf("the EK certificate does not chain to a trusted manufacturer CA: %v", err)}
	}
	return nil
}

var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// maxChainDepth bounds the issuer walk (EK chains are root, one or two
// intermediates, the EK).
const maxChainDepth = 5

func walkLegacyChain(cert *x509.Certificate, roots, intermediates []*x509.Certificate, now time.Time) error {
	cur := cert
	for depth := 0; depth < maxChainDepth; depth++ {
		if now.Before(cur.NotBefore) || now.After(cur.NotAfter) {
			return fmt.Errorf("%q is outside its validity period", cur.Subject)
		}
		for _, isRoot := range []bool{true, false} {
			pool := intermediates
			if isRoot {
				pool = roots
			}
			for _, p := range pool {
				if !bytes.Equal(p.RawSubject, cur.RawIssuer) || !p.BasicConstraintsValid || !p.IsCA {
					continue
				}
				if checkSignatureAllowSHA1(cur, p) != nil {
					continue
				}
				if isRoot {
					if now.Before(p.NotBefore) || now.After(p.NotAfter) {
						return fmt.Errorf("root %q is outside its validity period", p.Subject)
					}
					return nil
				}
				cur = p
				goto next
			}
		}
		return fmt.Errorf("no trusted issuer signed %q", cur.Subject)
	next:
	}
	return fmt.Errorf("chain longer than %d certificates", maxChainDepth)
}

func checkSignatureAllowSHA1(c, parent *x509.Certificate) error {
	if c.SignatureAlgorithm != x509.SHA1WithRSA {
		return c.CheckSignatureFrom(parent)
	}
	pub, ok := parent.PublicKey.(*rsa.PublicKey)
	if !ok {
		return errors.New("SHA-1 RSA signature from a non-RSA issuer")
	}
	sum := sha1.Sum(c.RawTBSCertificate)
	return rsa.VerifyPKCS1v15(pub, crypto.SHA1, sum[:], c.Signature)
}
