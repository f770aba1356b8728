package tpm

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
)

// TPM 1.2 command plumbing: a few commands encoded by hand (TPM Main Part 3)
// with the OIAP/OSAP authorisation protocol (TPM Main Part 1, "Authorization Protocols": an HMAC
// over the parameter digest and rolling nonces). The legacy go-tpm package
// covers some commands, but not counters, not sealing with a data
// authorisation (PIN), and it drops TPM return codes into strings, which
// would hide TPM_WRONGPCRVAL from the caller.

// Tags and ordinals (TPM Main Part 2, 6 and 17).
const (
	tagRquCommand = 0x00C1
	tagRquAuth1   = 0x00C2
	tagRquAuth2   = 0x00C3

	ordOIAP                   = 0x0A
	ordOSAP                   = 0x0B
	ordExtend                 = 0x14
	ordPCRRead                = 0x15
	ordSeal                   = 0x17
	ordUnseal                 = 0x18
	ordResetLockValue         = 0x40
	ordGetRandom              = 0x46
	ordOwnerClear             = 0x5B
	ordGetCapability          = 0x65
	ordSaveState              = 0x98
	ordStartup                = 0x99
	ordFlushSpecific          = 0xBA
	ordNVDefineSpace          = 0xCC
	ordNVWriteValue           = 0xCD
	ordNVReadValue            = 0xCF
	ordCreateCounter          = 0xDC
	ordIncrementCounter       = 0xDD
	ordReadCounter            = 0xDE
	ordReleaseCounterOwner    = 0xE0
	ordPhysicalPresence       = 0x4000000A // TSC_PhysicalPresence
	ordForceClear             = 0x5D
	ordPhysicalEnable         = 0x6F
	ordPhysicalSetDeactivated = 0x72

	etOwner = 0x0002
	etSRK   = 0x0004
	khSRK   = 0x40000000
	khOwner = 0x40000001
	rtAuth  = 0x00000002
)

// wellKnownSecret is the TCG well-known authorisation (20 zero bytes), the
// owner and SRK secret glint expects on TPM 1.2 (swtpm_setup
// --owner-well-known --srk-well-known; tpmtotp/Heads "-z").
var wellKnownSecret = make([]byte, 20)

// authResponseSize is nonceEven(20) + continueAuthSession(1) + resAuth(20).
const authResponseSize = 41

// send12 sends one command and returns the response body (after the
// 10-byte header). A non-zero return code is a *ResponseError.
func (d *tpm12) send12(name string, tag uint16, ord uint32, body []byte) ([]byte, error) {
	cmd := binary.BigEndian.AppendUint16(nil, tag)
	cmd = binary.BigEndian.AppendUint32(cmd, uint32(headerSize+len(body)))
	cmd = binary.BigEndian.AppendUint32(cmd, ord)
	cmd = append(cmd, body...)
	rsp, err := d.t.Send(cmd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if code := binary.BigEndian.Uint32(rsp[6:10]); code != 0 {
		return nil, wrap12(name, response12(name, code, nil))
	}
	return rsp[headerSize:], nil
}

// session12 is one OIAP or OSAP authorisation session.
type session12 struct {
	handle    uint32
	nonceEven [20]byte
	key       []byte // HMAC key: the entity's secret (OIAP) or the OSAP shared secret
}

func (d *tpm12) oiap(secret []byte) (*session12, error) {
	rsp, err := d.send12("TPM_OIAP", tagRquCommand, ordOIAP, nil)
	if err != nil {
		return nil, err
	}
	if len(rsp) < 24 {
		return nil, errors.New("TPM_OIAP: short response")
	}
	s := &session12{handle: binary.BigEndian.Uint32(rsp), key: secret}
	copy(s.nonceEven[:], rsp[4:24])
	return s, nil
}

// osap opens an OSAP session for an entity; the HMAC key becomes
// HMAC-SHA1(entitySecret, nonceEvenOSAP || nonceOddOSAP) (Main Part 1, "OSAP").
func (d *tpm12) osap(entityType uint16, entity uint32, secret []byte) (*session12, error) {
	var nonceOddOSAP [20]byte
	if _, err := rand.Read(nonceOddOSAP[:]); err != nil {
		return nil, err
	}
	body := binary.BigEndian.AppendUint16(nil, entityType)
	body = binary.BigEndian.AppendUint32(body, entity)
	body = append(body, nonceOddOSAP[:]...)
	rsp, err := d.send12("TPM_OSAP", tagRquCommand, ordOSAP, body)
	if err != nil {
		return nil, err
	}
	if len(rsp) < 44 {
		return nil, errors.New("TPM_OSAP: short response")
	}
	s := &session12{handle: binary.BigEndian.Uint32(rsp)}
	copy(s.nonceEven[:], rsp[4:24])
	m := hmac.New(sha1.New, secret)
	m.Write(rsp[24:44])
	m.Write(nonceOddOSAP[:])
	s.key = m.Sum(nil)
	return s, nil
}

// encAuth hides a new secret for the TPM under an OSAP session
// (Main Part 1, "ADIP": XOR with SHA1(sharedSecret || nonceEven)).
func (s *session12) encAuth(newSecret []byte) []byte {
	pad := sha1.Sum(append(append([]byte(nil), s.key...), s.nonceEven[:]...))
	out := make([]byte, 20)
	for i := range out {
		out[i] = newSecret[i] ^ pad[i]
	}
	return out
}

// authorize builds the command's auth block for inParamDigest and returns
// the nonceOdd it used. continueAuthSession is FALSE: the TPM ends the
// session with the command, so nothing is left loaded.
func (s *session12) authorize(inParamDigest []byte) ([]byte, [20]byte, error) {
	var nonceOdd [20]byte
	if _, err := rand.Read(nonceOdd[:]); err != nil {
		return nil, nonceOdd, err
	}
	m := hmac.New(sha1.New, s.key)
	m.Write(inParamDigest)
	m.Write(s.nonceEven[:])
	m.Write(nonceOdd[:])
	m.Write([]byte{0})
	b := binary.BigEndian.AppendUint32(nil, s.handle)
	b = append(b, nonceOdd[:]...)
	b = append(b, 0)
	return append(b, m.Sum(nil)...), nonceOdd, nil
}

// verify checks the TPM's response HMAC, proving the response came from
// the TPM that knows the secret and was not altered on the way.
func (s *session12) verify(outParamDigest []byte, nonceOdd [20]byte, block []byte) error {
	if len(block) != authResponseSize {
		return errors.New("response authorisation block has the wrong size")
	}
	m := hmac.New(sha1.New, s.key)
	m.Write(outParamDigest)
	m.Write(block[:20])
	m.Write(nonceOdd[:])
	m.Write(block[20:21])
	if !hmac.Equal(m.Sum(nil), block[21:]) {
		return errors.New("the TPM's response authorisation does not verify: the response was altered or did not come from this TPM")
	}
	return nil
}

// flush ends a session that a failed command may have left open.
func (d *tpm12) flushAuth(s *session12) {
	body := binary.BigEndian.AppendUint32(nil, s.handle)
	body = binary.BigEndian.AppendUint32(body, rtAuth)
	d.send12("TPM_FlushSpecific", tagRquCommand, ordFlushSpecific, body)
}

func digest12(ord uint32, params ...[]byte) []byte {
	h := sha1.New()
	binary.Write(h, binary.BigEndian, ord)
	for _, p := range params {
		h.Write(p)
	}
	return h.Sum(nil)
}

func outDigest12(ord uint32, out []byte) []byte {
	h := sha1.New()
	h.Write([]byte{0, 0, 0, 0}) // return code TPM_SUCCESS
	binary.Write(h, binary.BigEndian, ord)
	h.Write(out)
	return h.Sum(nil)
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// authCommand1 runs a command with one authorisation session and verifies
// the response; it returns the output parameters (without the auth block).
// handles are not part of the HMAC ("1S" parameters only, Main Part 3 "Command Format").
func (d *tpm12) authCommand1(name string, ord uint32, handles, params []byte, s *session12) ([]byte, error) {
	defer d.flushAuth(s)
	auth, nonceOdd, err := s.authorize(digest12(ord, params))
	if err != nil {
		return nil, err
	}
	body := append(append(append([]byte(nil), handles...), params...), auth...)
	rsp, err := d.send12(name, tagRquAuth1, ord, body)
	if err != nil {
		return nil, err
	}
	if len(rsp) < authResponseSize {
		return nil, fmt.Errorf("%s: response too short for its authorisation", name)
	}
	out := rsp[:len(rsp)-authResponseSize]
	if err := s.verify(outDigest12(ord, out), nonceOdd, rsp[len(out):]); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// authCommand2 is authCommand1 with two sessions (e.g. TPM_Unseal: the
// parent key's and the sealed data's).
func (d *tpm12) authCommand2(name string, ord uint32, handles, params []byte, s1, s2 *session12) ([]byte, error) {
	defer d.flushAuth(s1)
	defer d.flushAuth(s2)
	dig := digest12(ord, params)
	a1, n1, err := s1.authorize(dig)
	if err != nil {
		return nil, err
	}
	a2, n2, err := s2.authorize(dig)
	if err != nil {
		return nil, err
	}
	body := append(append(append(append([]byte(nil), handles...), params...), a1...), a2...)
	rsp, err := d.send12(name, tagRquAuth2, ord, body)
	if err != nil {
		return nil, err
	}
	if len(rsp) < 2*authResponseSize {
		return nil, fmt.Errorf("%s: response too short for its authorisations", name)
	}
	out := rsp[:len(rsp)-2*authResponseSize]
	od := outDigest12(ord, out)
	if err := s1.verify(od, n1, rsp[len(out):len(out)+authResponseSize]); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := s2.verify(od, n2, rsp[len(out)+authResponseSize:]); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}
