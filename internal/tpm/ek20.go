package tpm

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// TCG EK Credential Profile 2.0, 2.2.1.4 ("Low Range"): where
// manufacturers leave the RSA-2048 EK and its certificate.
const (
	ekRSAPersistent = 0x81010001
	ekRSACertIndex  = 0x01c00002
	// maxEKCertSize bounds the certificate read from NV. Real EK
	// certificates are 1-1.5 KiB; the TCG profile lets them grow with
	// extensions, never past a few KiB of NV.
	maxEKCertSize = 4096
)

// labeledAKTemplate is akTemplate with its unique field derived from label
// (Part 1, 27.2.2: a primary is a function of the seed and the template,
// so a different unique field gives a different, equally reproducible
// key). An empty label is the plain akTemplate.
func labeledAKTemplate(label []byte) tpm2.TPMTPublic {
	if len(label) == 0 {
		return akTemplate
	}
	t := akTemplate
	x := sha256.Sum256(append([]byte("glint attestation key\x00"), label...))
	t.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
		X: tpm2.TPM2BECCParameter{Buffer: x[:]},
		Y: tpm2.TPM2BECCParameter{Buffer: make([]byte, 32)},
	})
	return t
}

func (d *tpm20) CreateLabeledAK(label []byte) (*AK, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	rsp, err := d.createAK(label)
	if err != nil {
		return nil, err
	}
	defer d.flush(rsp.ObjectHandle)
	ak := &AK{Public: append([]byte(nil), rsp.OutPublic.Bytes()...)}
	if len(label) > 0 {
		ak.label = append([]byte(nil), label...)
	}
	return ak, nil
}

// ek is a loaded endorsement key; flush it with release.
type ek20 struct {
	handle    tpm2.TPMHandle
	name      tpm2.TPM2BName
	public    []byte // TPMT_PUBLIC
	transient bool
}

// loadEK finds the RSA EK: the persistent one a manufacturer (or
// swtpm_setup) provisioned, else a transient one created from the TCG
// template in the endorsement hierarchy, which yields the same key.
func (d *tpm20) loadEK() (*ek20, error) {
	rsp, err := tpm2.ReadPublic{ObjectHandle: tpm2.TPMHandle(ekRSAPersistent)}.Execute(d.t)
	if err == nil {
		return &ek20{handle: ekRSAPersistent, name: rsp.Name, public: append([]byte(nil), rsp.OutPublic.Bytes()...)}, nil
	}
	if code, ok := rc20(err); !ok || canonical(code) != rcHandle {
		return nil, wrap20("TPM2_ReadPublic(EK 0x81010001)", err)
	}
	cp, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHEndorsement, Auth: tpm2.PasswordAuth(nil)},
		InPublic:      tpm2.New2B(tpm2.RSAEKTemplate),
	}.Execute(d.t)
	if err != nil {
		return nil, hierarchyAuth("endorsement", wrap20("TPM2_CreatePrimary(endorsement key)", err))
	}
	return &ek20{handle: cp.ObjectHandle, name: cp.Name, public: append([]byte(nil), cp.OutPublic.Bytes()...), transient: true}, nil
}

func (d *tpm20) release(k *ek20) {
	if k.transient {
		d.flush(k.handle)
	}
}

func (d *tpm20) EK() (*EK, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	k, err := d.loadEK()
	if err != nil {
		return nil, err
	}
	d.release(k)
	out := &EK{Version: Version20, Public: k.public}
	cert, err := d.ekCertificate()
	if err != nil {
		return nil, err
	}
	out.Certificate = cert
	return out, nil
}

// ekCertificate reads the RSA EK certificate from NV, nil if there is none.
func (d *tpm20) ekCertificate() ([]byte, error) {
	info, err := d.nvPublic(ekRSACertIndex)
	if errors.Is(err, ErrNotDefined) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if int(info.pub.DataSize) > maxEKCertSize {
		return nil, fmt.Errorf("EK certificate index 0x%08x holds %d bytes, more than %d: not a certificate", uint32(ekRSACertIndex), info.pub.DataSize, maxEKCertSize)
	}
	raw, err := d.nvRead(ekRSACertIndex, info)
	if err != nil {
		return nil, err
	}
	return trimDER(raw), nil
}

// trimDER drops the padding some TPMs leave after the certificate in a
// fixed-size NV index: the outer DER SEQUENCE says how long it is (X.690,
// 8.1.3). Anything that is not a SEQUENCE is returned whole, for the
// verifier's parser to refuse.
func trimDER(b []byte) []byte {
	if len(b) < 2 || b[0] != 0x30 {
		return b
	}
	n, hdr := int(b[1]), 2
	if n&0x80 != 0 {
		octets := n & 0x7f
		if octets == 0 || octets > 3 || len(b) < 2+octets {
			return b
		}
		n = 0
		for _, c := range b[2 : 2+octets] {
			n = n<<8 | int(c)
		}
		hdr = 2 + octets
	}
	if hdr+n > len(b) {
		return b
	}
	return b[:hdr+n]
}

// ekPolicy satisfies the TCG EK's authPolicy, TPM2_PolicySecret(TPM_RH_ENDORSEMENT)
// (EK Credential Profile 2.0, B.3.3), with the empty endorsement authorisation.
func ekPolicy(t transport.TPM, handle tpm2.TPMISHPolicy, nonceTPM tpm2.TPM2BNonce) error {
	_, err := tpm2.PolicySecret{
		AuthHandle:    tpm2.AuthHandle{Handle: tpm2.TPMRHEndorsement, Auth: tpm2.PasswordAuth(nil)},
		PolicySession: handle,
		NonceTPM:      nonceTPM,
	}.Execute(t)
	return err
}

func (d *tpm20) ActivateCredential(ak *AK, c *Credential) ([]byte, error) {
	if err := checkCredential(c); err != nil {
		return nil, err
	}
	if ak == nil {
		return nil, errors.New("activate credential: no attestation key")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	key, err := d.createAK(ak.label)
	if err != nil {
		return nil, err
	}
	defer d.flush(key.ObjectHandle)
	if !bytes.Equal(key.OutPublic.Bytes(), ak.Public) {
		return nil, fmt.Errorf("activate credential: %w (the attestation key this TPM derives now differs from the enrolled one)", ErrCleared)
	}
	ek, err := d.loadEK()
	if err != nil {
		return nil, err
	}
	defer d.release(ek)
	ekPub, err := unmarshalPublic(ek.public)
	if err != nil {
		return nil, err
	}
	// The policy session is salted with the EK and encrypts the response
	// parameter, so the secret does not cross the bus in clear.
	session := tpm2.Policy(tpm2.TPMAlgSHA256, 16, ekPolicy,
		tpm2.Salted(ek.handle, *ekPub), tpm2.AESEncryption(128, tpm2.EncryptOut))
	rsp, err := tpm2.ActivateCredential{
		ActivateHandle: tpm2.AuthHandle{Handle: key.ObjectHandle, Name: key.Name, Auth: tpm2.PasswordAuth(nil)},
		KeyHandle:      tpm2.AuthHandle{Handle: ek.handle, Name: ek.name, Auth: session},
		CredentialBlob: tpm2.TPM2BIDObject{Buffer: c.Blob},
		Secret:         tpm2.TPM2BEncryptedSecret{Buffer: c.EKEncrypted},
	}.Execute(d.t)
	if err != nil {
		if code, ok := rc20(err); ok {
			switch canonical(code) {
			// Part 3, 12.5.1: a seed or blob made for another EK or AK fails
			// the integrity check, or decrypts to a value out of range.
			// libtpms answers a seed that does not decrypt under its EK
			// with TPM_RC_FAILURE (0x101) without entering failure mode.
			case 0x101, rcIntegrity, 0x084 /* TPM_RC_VALUE */, 0x095 /* TPM_RC_SIZE */, 0x09A /* TPM_RC_INSUFFICIENT */, 0x0A7 /* TPM_RC_ECC_POINT */ :
				return nil, &CredentialError{Reason: fmt.Sprintf("the credential was not made for this TPM's endorsement key and attestation key (%v)", wrap20("TPM2_ActivateCredential", err))}
			}
		}
		return nil, hierarchyAuth("endorsement", wrap20("TPM2_ActivateCredential", err))
	}
	return rsp.CertInfo.Buffer, nil
}
