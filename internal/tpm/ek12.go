package tpm

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	legacy "github.com/google/go-tpm/tpm"
	"github.com/google/go-tpm/tpmutil"
)

// TPM 1.2 endorsement: the EK is read with the owner's authorisation
// (TPM_OwnerReadInternalPub, Main Part 3, 27.2: TPM_ReadPubek is disabled
// once the TPM is owned), and its certificate, if the manufacturer stored
// one, sits in NV index TPM_NV_INDEX_EKCert wrapped in the PC Client
// header (TCG PC Client Specific Implementation Specification for
// Conventional BIOS 1.21, 7.4.4: TCG_PCCLIENT_STORED_CERT tag 0x1001,
// certType 0, certSize, then TCG_FULL_CERT tag 0x1002 and the DER).
const (
	nvIndexEKCert12   = 0x1000f000
	storedCertTag12   = 0x1001
	fullCertTag12     = 0x1002
	ordActivateIdent  = 0x7A
	algAES256_12      = 0x00000008 // TPM_ALG_AES256 (Main Part 2, 4.8)
	esSymCBCPKCS5     = 0x00FF     // TPM_ES_SYM_CBC_PKCS5PAD
	symmetricKeyMax12 = 32
)

func (d *tpm12) EK() (*EK, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	rw := &rwAdapter{t: d.t}
	var owner legacy.Digest
	copy(owner[:], d.ownerSecret())
	blob, err := legacy.OwnerReadPubEK(rw, owner)
	if err != nil {
		return nil, wrap12("TPM_OwnerReadInternalPub(EK)", err)
	}
	pub, err := legacy.UnmarshalPubRSAPublicKey(blob)
	if err != nil {
		return nil, fmt.Errorf("TPM 1.2 EK: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	cert, err := d.ekCertificate()
	if err != nil {
		return nil, err
	}
	return &EK{Version: Version12, Public: der, Certificate: cert}, nil
}

// ekCertificate reads and unwraps the EK certificate, nil if there is none.
func (d *tpm12) ekCertificate() ([]byte, error) {
	size, err := d.nvSize(nvIndexEKCert12)
	if errors.Is(err, ErrNotDefined) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if size > maxEKCertSize+7 {
		return nil, fmt.Errorf("EK certificate index holds %d bytes, more than %d: not a certificate", size, maxEKCertSize)
	}
	raw, err := d.ownerNVRead(nvIndexEKCert12, size)
	if err != nil {
		return nil, err
	}
	return unwrapStoredCert12(raw)
}

// unwrapStoredCert12 strips the PC Client header from an NV certificate.
func unwrapStoredCert12(raw []byte) ([]byte, error) {
	if len(raw) < 7 || binary.BigEndian.Uint16(raw) != storedCertTag12 || raw[2] != 0 ||
		binary.BigEndian.Uint16(raw[5:]) != fullCertTag12 {
		return nil, errors.New("TPM 1.2 EK certificate: NV data does not start with the PC Client TCG_PCCLIENT_STORED_CERT/TCG_FULL_CERT header")
	}
	n := int(binary.BigEndian.Uint16(raw[3:]))
	// certSize counts the TCG_FULL_CERT tag and the certificate.
	if n < 2 || 5+n > len(raw) {
		return nil, fmt.Errorf("TPM 1.2 EK certificate: header says %d bytes, NV holds %d", n, len(raw)-5)
	}
	return append([]byte(nil), raw[7:5+n]...), nil
}

// ownerNVRead reads an NV index that needs the owner's authorisation
// (TPM_NV_ReadValue with an OIAP session, Main Part 3, 20.4).
func (d *tpm12) ownerNVRead(index uint32, size int) ([]byte, error) {
	var out []byte
	for len(out) < size {
		n := min(size-len(out), 128)
		s, err := d.oiap(d.ownerSecret())
		if err != nil {
			return nil, err
		}
		params := append(u32(uint32(len(out))), u32(uint32(n))...)
		// TPM_NV_ReadValue's nvIndex is a parameter (it is part of the
		// HMAC), not a handle.
		rsp, err := d.authCommand1(fmt.Sprintf("TPM_NV_ReadValue(0x%08x)", index), ordNVReadValue, nil, append(u32(index), params...), s)
		if err != nil {
			return nil, err
		}
		if len(rsp) != 4+n || int(binary.BigEndian.Uint32(rsp)) != n {
			return nil, errors.New("TPM_NV_ReadValue: malformed answer")
		}
		out = append(out, rsp[4:]...)
	}
	return out, nil
}

// CreateLabeledAK makes a new AIK; TPM 1.2 has no reproducible keys, so the
// label is ignored and the caller keeps the AK (MarshalBinary).
func (d *tpm12) CreateLabeledAK(label []byte) (*AK, error) { return d.CreateAK() }

// aikPubKey12 encodes the TPM_PUBKEY (Main Part 2, 12.1) of an AIK made by
// CreateAK: RSA-2048, TPM_ES_NONE, TPM_SS_RSASSAPKCS1v15_SHA1, two primes,
// the default exponent. TPM_ActivateIdentity compares its SHA-1 with the
// idDigest in the CA's blob (Part 3, 15.2, action 7).
func aikPubKey12(akPublic []byte) ([]byte, error) {
	k, err := x509.ParsePKIXPublicKey(akPublic)
	if err != nil {
		return nil, err
	}
	r, ok := k.(*rsa.PublicKey)
	if !ok || r.N.BitLen() != 2048 || r.E != 65537 {
		return nil, errors.New("a TPM 1.2 AIK is RSA-2048 with exponent 65537")
	}
	b := u32(0x00000001)          // TPM_ALG_RSA
	b = append(b, u16(0x0001)...) // TPM_ES_NONE
	b = append(b, u16(0x0002)...) // TPM_SS_RSASSAPKCS1v15_SHA1
	b = append(b, u32(12)...)     // parmSize
	b = append(b, u32(2048)...)   // TPM_RSA_KEY_PARMS.keyLength
	b = append(b, u32(2)...)      // numPrimes
	b = append(b, u32(0)...)      // exponentSize: default 65537
	b = append(b, u32(256)...)    // TPM_STORE_PUBKEY.keyLength
	return append(b, r.N.FillBytes(make([]byte, 256))...), nil
}

// makeCredential12 builds the Privacy-CA challenge (Main Part 1, 11.4.2):
// TPM_ASYM_CA_CONTENTS {TPM_SYMMETRIC_KEY sessionKey; TPM_DIGEST idDigest}
// encrypted to the EK with TPM_ES_RSAESOAEP_SHA1_MGF1 and the label "TCPA"
// (Part 1, 31.1.1), and the secret under the session key.
func makeCredential12(ek *EK, akPublic, secret []byte, rnd io.Reader) (*Credential, error) {
	k, err := ek.PublicKey()
	if err != nil {
		return nil, err
	}
	ekPub := k.(*rsa.PublicKey)
	pubkey, err := aikPubKey12(akPublic)
	if err != nil {
		return nil, &CredentialError{Reason: err.Error()}
	}
	session := make([]byte, symmetricKeyMax12)
	defer clear(session)
	if _, err := io.ReadFull(rnd, session); err != nil {
		return nil, err
	}
	idDigest := sha1.Sum(pubkey)
	contents := u32(algAES256_12)
	contents = append(contents, u16(esSymCBCPKCS5)...)
	contents = append(contents, u16(uint16(len(session)))...)
	contents = append(contents, session...)
	contents = append(contents, idDigest[:]...)
	defer clear(contents)
	asym, err := rsa.EncryptOAEP(sha1.New(), rnd, ekPub, contents, []byte("TCPA"))
	if err != nil {
		return nil, &CredentialError{Reason: fmt.Sprintf("encrypt to the EK: %v", err)}
	}
	blob, err := seal12(session, secret, rnd)
	if err != nil {
		return nil, err
	}
	return &Credential{EKEncrypted: asym, Blob: blob}, nil
}

func gcm(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func seal12(key, secret []byte, rnd io.Reader) ([]byte, error) {
	aead, err := gcm(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := io.ReadFull(rnd, nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, secret, []byte("glint TPM 1.2 credential")), nil
}

func open12Blob(key, blob []byte) ([]byte, error) {
	aead, err := gcm(key)
	if err != nil {
		return nil, err
	}
	if len(blob) < aead.NonceSize()+aead.Overhead() {
		return nil, &CredentialError{Reason: "TPM 1.2 credential blob is too short"}
	}
	out, err := aead.Open(nil, blob[:aead.NonceSize()], blob[aead.NonceSize():], []byte("glint TPM 1.2 credential"))
	if err != nil {
		return nil, &CredentialError{Reason: "the TPM 1.2 credential blob does not decrypt under the session key the TPM released: it was altered"}
	}
	return out, nil
}

// ActivateCredential runs TPM_ActivateIdentity (Main Part 3, 15.2) with the
// AIK (its authorisation is the well-known secret CreateAK gives it) and
// the owner's authorisation, then decrypts the secret with the session key
// the TPM returns.
func (d *tpm12) ActivateCredential(ak *AK, c *Credential) ([]byte, error) {
	if err := checkCredential(c); err != nil {
		return nil, err
	}
	if ak == nil || ak.blob12 == nil {
		return nil, errors.New("activate credential: no TPM 1.2 attestation key (CreateAK on this TPM first)")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	rw := &rwAdapter{t: d.t}
	h, err := legacy.LoadKey2(rw, ak.blob12, wellKnownSecret)
	if err != nil {
		return nil, fmt.Errorf("activate credential: %w", hintCleared12(wrap12("TPM_LoadKey2(AIK)", err)))
	}
	defer legacy.CloseKey(rw, tpmutil.Handle(h))
	aikSession, err := d.oiap(wellKnownSecret)
	if err != nil {
		return nil, err
	}
	ownerSession, err := d.oiap(d.ownerSecret())
	if err != nil {
		d.flushAuth(aikSession)
		return nil, err
	}
	params := append(u32(uint32(len(c.EKEncrypted))), c.EKEncrypted...)
	out, err := d.authCommand2("TPM_ActivateIdentity", ordActivateIdent, u32(uint32(h)), params, aikSession, ownerSession)
	if err != nil {
		var re *ResponseError
		if errors.As(err, &re) && (re.Code == rc12BadParameter || re.Code == 0x20 /* TPM_DECRYPT_ERROR */ || re.Code == 0x32 /* TPM_INAPPROPRIATE_ENC */) {
			return nil, &CredentialError{Reason: fmt.Sprintf("the credential was not made for this TPM's endorsement key and attestation key (%v)", err)}
		}
		return nil, err
	}
	// TPM_SYMMETRIC_KEY (Main Part 2, 11.2): algId u32, encScheme u16, size u16, data.
	if len(out) < 8 {
		return nil, errors.New("TPM_ActivateIdentity: short answer")
	}
	size := int(binary.BigEndian.Uint16(out[6:8]))
	if size != symmetricKeyMax12 || len(out) != 8+size {
		return nil, fmt.Errorf("TPM_ActivateIdentity: a %d-byte session key, want %d", size, symmetricKeyMax12)
	}
	key := out[8:]
	defer clear(key)
	return open12Blob(key, c.Blob)
}

// hintCleared12 names a key blob that no longer loads (a new SRK after a
// clear) as ErrCleared.
func hintCleared12(err error) error {
	var re *ResponseError
	if errors.As(err, &re) && (re.Code == rc12Fail || re.Code == 0x0D /* TPM_KEYNOTFOUND */ || re.Code == rc12BadParameter) {
		return fmt.Errorf("%w (%v)", ErrCleared, err)
	}
	return err
}
