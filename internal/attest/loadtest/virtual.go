// Package loadtest drives an attestation server with many devices whose
// every key and quote comes from a real TPM: a few swtpm instances, each
// hosting thousands of virtual devices. A virtual device is a pair of keys
// in one swtpm: an endorsement-hierarchy ECC P-256 decryption key (its
// "EK", derived from the TPM's endorsement seed with the device number in
// the template's unique field, TPM 2.0 Part 1, 27.2.2) and an
// attestation key derived the same way in the owner hierarchy. Enrolment
// really activates the server's credential in the TPM, and every report is
// a TPM2_Quote over the swtpm's PCRs, so the server does exactly the work a
// fleet would cause, with real signatures. Only the EK certificate is
// missing (approval goes through pre-registration instead).
//
// It is tooling for benchmarks and the crash test, not part of glint.
package loadtest

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/glint-boot/glint/internal/tpm"
)

// socket sends each command on a new connection to swtpm's unix socket
// (swtpm serves one client at a time).
type socket struct {
	mu   sync.Mutex
	path string
}

func (s *socket) Send(cmd []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := net.DialTimeout("unix", s.path, 10*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(cmd); err != nil {
		return nil, err
	}
	hdr := make([]byte, 10)
	if _, err := readFull(c, hdr); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[2:6])
	if n < 10 || n > 8192 {
		return nil, fmt.Errorf("swtpm answer of %d bytes", n)
	}
	rsp := make([]byte, n)
	copy(rsp, hdr)
	_, err = readFull(c, rsp[10:])
	return rsp, err
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// TPM is one swtpm shared by many virtual devices.
type TPM struct {
	mu sync.Mutex // one device's multi-command operation at a time
	t  transport.TPM
}

// OpenTPM connects to an swtpm given as swtpm:unix:PATH.
func OpenTPM(spec string) (*TPM, error) {
	path, ok := strings.CutPrefix(spec, "swtpm:unix:")
	if !ok {
		return nil, fmt.Errorf("loadtest needs an swtpm:unix: TPM, not %q", spec)
	}
	return &TPM{t: &socket{path: path}}, nil
}

// Device returns virtual device n of this TPM (n unique across the fleet).
func (t *TPM) Device(n int) *Device { return &Device{tpm: t, n: n} }

// Device is one virtual device; it implements client.TPM.
type Device struct {
	tpm *TPM
	n   int
}

func (d *Device) unique(kind string) []byte {
	s := sha256.Sum256([]byte(fmt.Sprintf("glint loadtest %s %d", kind, d.n)))
	return s[:]
}

func (d *Device) ekTemplate() tpm2.TPMTPublic {
	t := tpm2.ECCSRKTemplate // restricted ECC P-256 decryption key, AES-128 CFB
	t.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
		X: tpm2.TPM2BECCParameter{Buffer: d.unique("ek")}, Y: tpm2.TPM2BECCParameter{Buffer: make([]byte, 32)}})
	return t
}

// akTemplate is glint's AK (package tpm's akTemplate: restricted ECDSA
// P-256 signing, SHA-256) with the device's unique field.
func (d *Device) akTemplate() tpm2.TPMTPublic {
	return tpm2.TPMTPublic{
		Type: tpm2.TPMAlgECC, NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true, NoDA: true, Restricted: true, SignEncrypt: true},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
			Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
			Scheme: tpm2.TPMTECCScheme{Scheme: tpm2.TPMAlgECDSA,
				Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256})},
			CurveID: tpm2.TPMECCNistP256,
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
			X: tpm2.TPM2BECCParameter{Buffer: d.unique("ak")}, Y: tpm2.TPM2BECCParameter{Buffer: make([]byte, 32)}}),
	}
}

func (d *Device) primary(h tpm2.TPMHandle, tmpl tpm2.TPMTPublic) (*tpm2.CreatePrimaryResponse, error) {
	return tpm2.CreatePrimary{PrimaryHandle: tpm2.AuthHandle{Handle: h, Auth: tpm2.PasswordAuth(nil)}, InPublic: tpm2.New2B(tmpl)}.Execute(d.tpm.t)
}

func (d *Device) flush(h tpm2.TPMHandle) { tpm2.FlushContext{FlushHandle: h}.Execute(d.tpm.t) }

func (d *Device) Version() tpm.Version       { return tpm.Version20 }
func (d *Device) Banks() ([]tpm.Alg, error)  { return []tpm.Alg{tpm.SHA256}, nil }
func (d *Device) CreateAK() (*tpm.AK, error) { return d.CreateLabeledAK(nil) }
func (d *Device) ID() int                    { return d.n }
func (d *Device) String() string             { return fmt.Sprintf("virtual device %d", d.n) }
func (d *Device) lock() func()               { d.tpm.mu.Lock(); return d.tpm.mu.Unlock }
func (d *Device) akFor(pub []byte) *tpm.AK   { return &tpm.AK{Public: pub} }
func (d *Device) ekOf(pub []byte) *tpm.EK    { return &tpm.EK{Version: tpm.Version20, Public: pub} }
func (d *Device) transport() transport.TPM   { return d.tpm.t }
func (d *Device) sameKey(a, b []byte) bool   { return string(a) == string(b) }
func (d *Device) errorf(f string, a ...any) error {
	return fmt.Errorf("%s: "+f, append([]any{d}, a...)...)
}

// EK returns the device's endorsement key (no certificate).
func (d *Device) EK() (*tpm.EK, error) {
	defer d.lock()()
	rsp, err := d.primary(tpm2.TPMRHEndorsement, d.ekTemplate())
	if err != nil {
		return nil, d.errorf("EK: %v", err)
	}
	defer d.flush(rsp.ObjectHandle)
	return d.ekOf(append([]byte(nil), rsp.OutPublic.Bytes()...)), nil
}

// CreateLabeledAK returns the device's one AK (the label is ignored: each
// virtual device is enrolled with one server).
func (d *Device) CreateLabeledAK(label []byte) (*tpm.AK, error) {
	defer d.lock()()
	rsp, err := d.primary(tpm2.TPMRHOwner, d.akTemplate())
	if err != nil {
		return nil, d.errorf("AK: %v", err)
	}
	defer d.flush(rsp.ObjectHandle)
	return d.akFor(append([]byte(nil), rsp.OutPublic.Bytes()...)), nil
}

// ActivateCredential opens a credential with the device's EK for its AK.
func (d *Device) ActivateCredential(ak *tpm.AK, c *tpm.Credential) ([]byte, error) {
	defer d.lock()()
	ek, err := d.primary(tpm2.TPMRHEndorsement, d.ekTemplate())
	if err != nil {
		return nil, d.errorf("EK: %v", err)
	}
	defer d.flush(ek.ObjectHandle)
	key, err := d.primary(tpm2.TPMRHOwner, d.akTemplate())
	if err != nil {
		return nil, d.errorf("AK: %v", err)
	}
	defer d.flush(key.ObjectHandle)
	rsp, err := tpm2.ActivateCredential{
		ActivateHandle: tpm2.AuthHandle{Handle: key.ObjectHandle, Name: key.Name, Auth: tpm2.PasswordAuth(nil)},
		KeyHandle:      tpm2.AuthHandle{Handle: ek.ObjectHandle, Name: ek.Name, Auth: tpm2.PasswordAuth(nil)},
		CredentialBlob: tpm2.TPM2BIDObject{Buffer: c.Blob},
		Secret:         tpm2.TPM2BEncryptedSecret{Buffer: c.EKEncrypted},
	}.Execute(d.transport())
	if err != nil {
		return nil, d.errorf("ActivateCredential: %v", err)
	}
	return rsp.CertInfo.Buffer, nil
}

// Quote quotes the swtpm's PCRs with the device's AK.
func (d *Device) Quote(ak *tpm.AK, bank tpm.Alg, pcrs []int, nonce []byte) (*tpm.Quote, error) {
	defer d.lock()()
	key, err := d.primary(tpm2.TPMRHOwner, d.akTemplate())
	if err != nil {
		return nil, d.errorf("AK: %v", err)
	}
	defer d.flush(key.ObjectHandle)
	if !d.sameKey(key.OutPublic.Bytes(), ak.Public) {
		return nil, d.errorf("the AK differs from the enrolled one")
	}
	sel := make([]byte, 3)
	for _, p := range pcrs {
		sel[p/8] |= 1 << (p % 8)
	}
	selection := tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: tpm2.TPMAlgID(bank), PCRSelect: sel}}}
	rsp, err := tpm2.Quote{
		SignHandle:     tpm2.AuthHandle{Handle: key.ObjectHandle, Name: key.Name, Auth: tpm2.PasswordAuth(nil)},
		QualifyingData: tpm2.TPM2BData{Buffer: nonce},
		InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
		PCRSelect:      selection,
	}.Execute(d.transport())
	if err != nil {
		return nil, d.errorf("Quote: %v", err)
	}
	read, err := tpm2.PCRRead{PCRSelectionIn: selection}.Execute(d.transport())
	if err != nil {
		return nil, d.errorf("PCR_Read: %v", err)
	}
	q := &tpm.Quote{Attest: rsp.Quoted.Bytes(), Signature: tpm2.Marshal(rsp.Signature), Bank: bank, PCRs: map[int][]byte{}}
	i := 0
	for _, s := range read.PCRSelectionOut.PCRSelections {
		for p := 0; p < 24; p++ {
			if s.PCRSelect[p/8]&(1<<(p%8)) != 0 && i < len(read.PCRValues.Digests) {
				q.PCRs[p] = read.PCRValues.Digests[i].Buffer
				i++
			}
		}
	}
	if len(q.PCRs) != len(pcrs) {
		return nil, d.errorf("PCR_Read returned %d of %d PCRs (it returns at most 8 per call)", len(q.PCRs), len(pcrs))
	}
	return q, nil
}
