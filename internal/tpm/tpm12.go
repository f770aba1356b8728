package tpm

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"

	legacy "github.com/google/go-tpm/tpm"
	"github.com/google/go-tpm/tpmutil"
)

// tpm12 implements TPM for TPM 1.2 (TCG TPM Main Specification 1.2 rev
// 116). The SRK secret is the well-known one (sealed secrets are bound to
// PCRs and a PIN, not to it). The owner secret is well-known on a TPM glint
// has not set up, and derived from the owner's key once it has (owner.go,
// SetHierarchyAuth): then only the owner can define or delete NV space and
// counters, reset the lockout or clear the TPM by owner authorisation.
type tpm12 struct {
	mu sync.Mutex
	t  Transport
	// owner is the owner secret given by UseAuth / SetHierarchyAuth; nil
	// means the well-known secret.
	owner []byte
	// platformLocked: LockPlatform locked physical presence.
	platformLocked bool
}

// ownerSecret is what owner-authorised commands use.
func (d *tpm12) ownerSecret() []byte {
	if len(d.owner) == 0 {
		return wellKnownSecret
	}
	return d.owner
}

func open12(t Transport) (TPM, error) {
	d := &tpm12{t: t}
	if _, err := d.manufacturer(); err != nil {
		var re *ResponseError
		if !errors.As(err, &re) || re.Code != rc12InvalidPost {
			return nil, err
		}
		// TPM_Startup(ST_CLEAR) (Main Part 3, 3.2) when nothing started it.
		if _, err := d.send12("TPM_Startup", tagRquCommand, ordStartup, u16(0x0001)); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func (d *tpm12) Version() Version { return Version12 }
func (d *tpm12) Close() error     { return d.t.Close() }

func (d *tpm12) Banks() ([]Alg, error) { return []Alg{SHA1}, nil }

func (d *tpm12) getCapability(capArea, subCap uint32) ([]byte, error) {
	body := append(u32(capArea), u32(4)...)
	body = append(body, u32(subCap)...)
	rsp, err := d.send12("TPM_GetCapability", tagRquCommand, ordGetCapability, body)
	if err != nil {
		return nil, err
	}
	if len(rsp) < 4 || int(binary.BigEndian.Uint32(rsp)) != len(rsp)-4 {
		return nil, errors.New("TPM_GetCapability: response size does not match")
	}
	return rsp[4:], nil
}

func (d *tpm12) manufacturer() (string, error) {
	// TPM_CAP_PROPERTY / TPM_CAP_PROP_MANUFACTURER (Main Part 2, 21.2).
	b, err := d.getCapability(0x05, 0x103)
	if err != nil {
		return "", err
	}
	if len(b) < 4 {
		return "", errors.New("TPM_GetCapability(manufacturer): short answer")
	}
	return fourCC(binary.BigEndian.Uint32(b)), nil
}

func (d *tpm12) ReadPCRs(bank Alg, pcrs []int) (map[int][]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.readPCRs(bank, pcrs)
}

func (d *tpm12) readPCRs(bank Alg, pcrs []int) (map[int][]byte, error) {
	if bank != SHA1 {
		return nil, fmt.Errorf("%w: TPM 1.2 has only the sha1 bank, not %s", ErrUnsupported, bank)
	}
	out := make(map[int][]byte, len(pcrs))
	for _, p := range pcrs {
		if p < 0 || p >= pcrCount {
			return nil, fmt.Errorf("PCR %d out of range 0..%d", p, pcrCount-1)
		}
		rsp, err := d.send12(fmt.Sprintf("TPM_PCRRead(PCR %d)", p), tagRquCommand, ordPCRRead, u32(uint32(p)))
		if err != nil {
			return nil, err
		}
		if len(rsp) != 20 {
			return nil, fmt.Errorf("TPM_PCRRead: %d bytes, want 20", len(rsp))
		}
		out[p] = rsp
	}
	return out, nil
}

func (d *tpm12) Extend(pcr int, data []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if pcr < 0 || pcr >= pcrCount {
		return fmt.Errorf("PCR %d out of range 0..%d", pcr, pcrCount-1)
	}
	m := sha1.Sum(data)
	_, err := d.send12(fmt.Sprintf("TPM_Extend(PCR %d)", pcr), tagRquCommand, ordExtend, append(u32(uint32(pcr)), m[:]...))
	return err
}

func (d *tpm12) Random(n int) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if n < 0 || n > maxRandom {
		return nil, fmt.Errorf("random: %d bytes asked, 0..%d allowed", n, maxRandom)
	}
	out := make([]byte, 0, n)
	for len(out) < n {
		want := min(n-len(out), 128)
		rsp, err := d.send12("TPM_GetRandom", tagRquCommand, ordGetRandom, u32(uint32(want)))
		if err != nil {
			return nil, err
		}
		if len(rsp) < 4 || int(binary.BigEndian.Uint32(rsp)) != len(rsp)-4 || len(rsp) == 4 {
			return nil, errors.New("TPM_GetRandom: malformed answer")
		}
		got := rsp[4:]
		out = append(out, got[:min(len(got), n-len(out))]...)
	}
	return out, nil
}

// pcrSelection12 is TPM_PCR_SELECTION (Main Part 2, 8.1): 3 bitmap octets.
func pcrSelection12(pcrs []int) []byte {
	sel, _ := pcrSelect(pcrs)
	return append(u16(uint16(len(sel))), sel...)
}

// pinAuth12 derives a TPM 1.2 data authorisation (20 bytes) from a PIN:
// SHA-1(pin), as tpmtotp's sealing tools do; the well-known secret without.
func pinAuth12(pin []byte) []byte {
	if len(pin) == 0 {
		return append([]byte(nil), wellKnownSecret...)
	}
	s := sha1.Sum(pin)
	return s[:]
}

// locAll allows release at any locality: the PCRs are the gate, and Linux
// talks to the TPM at locality 0 while firmware may use others.
const locAll = 0x1F

// Seal runs TPM_Seal (Main Part 3, 10.1) under the SRK with a
// TPM_PCR_INFO_LONG whose digestAtRelease is the composite hash of the
// expected values (Main Part 2, 8.2), so predicted values work as on 2.0.
func (d *tpm12) Seal(secret []byte, policy PCRPolicy, pin []byte) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(secret) == 0 || len(secret) > maxSecret {
		return nil, fmt.Errorf("seal: secret is %d bytes; glint seals 1..%d", len(secret), maxSecret)
	}
	bank, pcrs, err := checkPolicy(policy, Version12)
	if err != nil {
		return nil, err
	}
	sel := pcrSelection12(pcrs)
	var values []byte
	for _, p := range pcrs {
		values = append(values, policy.Values[p]...)
	}
	composite := append(append(append([]byte(nil), sel...), u32(uint32(len(values)))...), values...)
	atRelease := sha1.Sum(composite)
	info := u16(0x0006) // TPM_TAG_PCR_INFO_LONG
	info = append(info, locAll, locAll)
	info = append(info, sel...)
	info = append(info, sel...)
	info = append(info, make([]byte, 20)...) // digestAtCreation: the TPM fills it in
	info = append(info, atRelease[:]...)

	dataAuth := pinAuth12(pin)
	defer clear(dataAuth)
	s, err := d.osap(etSRK, khSRK, wellKnownSecret)
	if err != nil {
		return nil, err
	}
	enc := s.encAuth(dataAuth)
	params := append(enc, u32(uint32(len(info)))...)
	params = append(params, info...)
	params = append(params, u32(uint32(len(secret)))...)
	params = append(params, secret...)
	out, err := d.authCommand1("TPM_Seal", ordSeal, u32(khSRK), params, s)
	if err != nil {
		return nil, hintSRK(err)
	}
	if _, err := storedDataLen(out); err != nil {
		return nil, fmt.Errorf("TPM_Seal: %w", err)
	}
	b := &sealedBlob{Family: Version12, Bank: bank, PIN: len(pin) > 0, PCRs: pcrs, Parts: [][]byte{out}}
	return b.marshal()
}

// storedDataLen checks a TPM_STORED_DATA12 (Main Part 2, 9.3): tag, et,
// sealInfoSize, sealInfo, encDataSize, encData, with every size bounded.
func storedDataLen(b []byte) (int, error) {
	if len(b) < 8 {
		return 0, errors.New("sealed data structure is truncated")
	}
	off := 4
	infoLen := int(binary.BigEndian.Uint32(b[off:]))
	off += 4
	if infoLen > len(b)-off-4 {
		return 0, errors.New("sealed data structure's PCR info overruns it")
	}
	off += infoLen
	encLen := int(binary.BigEndian.Uint32(b[off:]))
	off += 4
	if encLen > len(b)-off {
		return 0, errors.New("sealed data structure's encrypted part overruns it")
	}
	return off + encLen, nil
}

func hintSRK(err error) error {
	var re *ResponseError
	if errors.As(err, &re) && re.Code == rc12AuthFail {
		return fmt.Errorf("%w (glint needs the well-known SRK secret on TPM 1.2: take ownership with --srk-well-known / tpm takeown -z)", err)
	}
	return err
}

func (d *tpm12) Unseal(blob []byte, pin []byte) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	b, err := parseSealedBlob(blob)
	if err != nil {
		return nil, err
	}
	if b.Family != Version12 {
		return nil, fmt.Errorf("unseal: the blob was sealed by a %s, this is a TPM 1.2", b.Family)
	}
	if b.PIN && len(pin) == 0 {
		return nil, fmt.Errorf("unseal: this secret needs its PIN: %w", ErrAuthFail)
	}
	stored := b.Parts[0]
	if n, err := storedDataLen(stored); err != nil || n != len(stored) {
		return nil, &ParseError{Field: "TPM_STORED_DATA12", Err: errors.New("malformed sealed data structure")}
	}
	dataAuth := pinAuth12(pin)
	defer clear(dataAuth)
	s1, err := d.oiap(wellKnownSecret)
	if err != nil {
		return nil, err
	}
	s2, err := d.oiap(dataAuth)
	if err != nil {
		d.flushAuth(s1)
		return nil, err
	}
	out, err := d.authCommand2("TPM_Unseal", ordUnseal, u32(khSRK), stored, s1, s2)
	if err != nil {
		var re *ResponseError
		if errors.As(err, &re) {
			switch re.Code {
			case rc12WrongPCRVal:
				return nil, &PolicyError{Bank: SHA1, PCRs: b.PCRs, Err: re}
			case rc12NoSRK, rc12NotSealedBlob, 0x21 /* TPM_DECRYPT_ERROR */, 0x0C /* TPM_INVALID_KEYHANDLE */ :
				return nil, fmt.Errorf("unseal: %w (%v)", ErrCleared, re)
			}
		}
		return nil, hintSRK(err)
	}
	if len(out) < 4 || int(binary.BigEndian.Uint32(out)) != len(out)-4 {
		return nil, errors.New("TPM_Unseal: malformed answer")
	}
	return out[4:], nil
}

// nvPublic12 returns the TPM_NV_DATA_PUBLIC of an index, or an error that
// says it is not defined.
func (d *tpm12) nvSize(index uint32) (int, error) {
	b, err := d.getCapability(0x11, index) // TPM_CAP_NV_INDEX
	if err != nil {
		var re *ResponseError
		if errors.As(err, &re) && (re.Code == rc12BadIndex || re.Code == rc12BadParameter) {
			return 0, fmt.Errorf("NV index 0x%08x is not defined: %w (%w)", index, ErrNotDefined, err)
		}
		return 0, err
	}
	if len(b) < 4 {
		return 0, errors.New("TPM_GetCapability(NV index): short answer")
	}
	return int(binary.BigEndian.Uint32(b[len(b)-4:])), nil
}

// nvDataPublic12 encodes TPM_NV_DATA_PUBLIC (Main Part 2, 19.3) with no
// PCR restriction: written only with owner authorisation, read by anyone
// (glint keeps public state in NV, never secrets).
func nvDataPublic12(index uint32, size int) []byte {
	short := append(pcrSelection12(nil), locAll)
	short = append(short, make([]byte, 20)...)
	b := u16(0x0018)
	b = append(b, u32(index)...)
	b = append(b, short...)
	b = append(b, short...)
	b = append(b, u16(0x0017)...)
	b = append(b, u32(0x00000002)...) // TPM_NV_PER_OWNERWRITE
	b = append(b, 0, 0, 0)
	return append(b, u32(uint32(size))...)
}

func (d *tpm12) nvDefine(index uint32, size int) error {
	pub := nvDataPublic12(index, size)
	s, err := d.osap(etOwner, khOwner, d.ownerSecret())
	if err != nil {
		return err
	}
	params := append(pub, s.encAuth(wellKnownSecret)...)
	_, err = d.authCommand1(fmt.Sprintf("TPM_NV_DefineSpace(0x%08x)", index), ordNVDefineSpace, nil, params, s)
	return ownerAuth12(err)
}

// Counters on TPM 1.2 are not NV indices: TPM_CreateCounter returns an ID
// the TPM chooses. glint finds its counter again by the 4-byte label, which
// holds the NV index the caller asked for. Two TPM 1.2 limits show through
// (Main Part 1, "Monotonic Counter"): only one counter can be incremented per boot (after
// the first increment, others answer TPM_BAD_COUNTER until TPM_Startup),
// and a new counter starts above every counter the TPM ever had.
func (d *tpm12) NVDefine(space NVSpace) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if space.Counter {
		if _, err := d.findCounter(space.Index); err == nil {
			return fmt.Errorf("TPM_CreateCounter: a counter labelled 0x%08x already exists", space.Index)
		}
		s, err := d.osap(etOwner, khOwner, d.ownerSecret())
		if err != nil {
			return err
		}
		params := append(s.encAuth(wellKnownSecret), u32(space.Index)...)
		_, err = d.authCommand1("TPM_CreateCounter", ordCreateCounter, nil, params, s)
		return ownerAuth12(err)
	}
	if space.Size <= 0 || space.Size > maxNVSize {
		return fmt.Errorf("NV index 0x%08x: size %d, want 1..%d", space.Index, space.Size, maxNVSize)
	}
	return d.nvDefine(space.Index, space.Size)
}

func (d *tpm12) NVUndefine(index uint32) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if id, err := d.findCounter(index); err == nil {
		s, err := d.oiap(d.ownerSecret())
		if err != nil {
			return err
		}
		_, err = d.authCommand1("TPM_ReleaseCounterOwner", ordReleaseCounterOwner, nil, u32(id), s)
		return ownerAuth12(err)
	}
	if _, err := d.nvSize(index); err != nil {
		return err
	}
	// A define with size 0 deletes the index (Main Part 3, 20.1).
	return d.nvDefine(index, 0)
}

func (d *tpm12) NVRead(index uint32) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	size, err := d.nvSize(index)
	if err != nil {
		return nil, err
	}
	var out []byte
	for len(out) < size {
		n := min(size-len(out), 128)
		body := append(u32(index), u32(uint32(len(out)))...)
		body = append(body, u32(uint32(n))...)
		rsp, err := d.send12(fmt.Sprintf("TPM_NV_ReadValue(0x%08x)", index), tagRquCommand, ordNVReadValue, body)
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

// NVWrite writes in one TPM_NV_WriteValue, which the TPM applies entirely
// or not at all; glint's NV records fit one command.
func (d *tpm12) NVWrite(index uint32, data []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	size, err := d.nvSize(index)
	if err != nil {
		return err
	}
	if len(data) > size {
		return fmt.Errorf("NV index 0x%08x holds %d bytes, %d given", index, size, len(data))
	}
	s, err := d.oiap(d.ownerSecret())
	if err != nil {
		return err
	}
	params := append(u32(index), u32(0)...)
	params = append(params, u32(uint32(len(data)))...)
	params = append(params, data...)
	_, err = d.authCommand1(fmt.Sprintf("TPM_NV_WriteValue(0x%08x)", index), ordNVWriteValue, nil, params, s)
	return ownerAuth12(err)
}

// findCounter returns the ID of the counter labelled with index.
func (d *tpm12) findCounter(index uint32) (uint32, error) {
	b, err := d.getCapability(0x14, 0x04) // TPM_CAP_HANDLE, TPM_RT_COUNTER
	if err != nil {
		return 0, err
	}
	if len(b) < 2 {
		return 0, errors.New("TPM_GetCapability(counters): short answer")
	}
	n := int(binary.BigEndian.Uint16(b))
	if n*4 != len(b)-2 {
		return 0, errors.New("TPM_GetCapability(counters): malformed handle list")
	}
	for i := 0; i < n; i++ {
		id := binary.BigEndian.Uint32(b[2+4*i:])
		label, _, err := d.readCounter(id)
		if err == nil && label == index {
			return id, nil
		}
	}
	// libtpms lists no counters here; counter IDs are small integers
	// (TPM_MIN_COUNTERS is 4), so look at the first few directly.
	for id := uint32(0); id < 32; id++ {
		label, _, err := d.readCounter(id)
		if err == nil && label == index {
			return id, nil
		}
	}
	return 0, fmt.Errorf("no TPM 1.2 counter labelled 0x%08x: define it first", index)
}

// readCounter returns a counter's label and value (TPM_COUNTER_VALUE, Main
// Part 2, 7.3: tag, label[4], counter u32).
func (d *tpm12) readCounter(id uint32) (uint32, uint64, error) {
	rsp, err := d.send12("TPM_ReadCounter", tagRquCommand, ordReadCounter, u32(id))
	if err != nil {
		return 0, 0, err
	}
	return counterValue12(rsp)
}

func counterValue12(b []byte) (uint32, uint64, error) {
	if len(b) != 10 {
		return 0, 0, errors.New("TPM_COUNTER_VALUE has the wrong size")
	}
	return binary.BigEndian.Uint32(b[2:6]), uint64(binary.BigEndian.Uint32(b[6:10])), nil
}

func (d *tpm12) CounterRead(index uint32) (uint64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	id, err := d.findCounter(index)
	if err != nil {
		return 0, err
	}
	_, v, err := d.readCounter(id)
	return v, err
}

func (d *tpm12) CounterIncrement(index uint32) (uint64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	id, err := d.findCounter(index)
	if err != nil {
		return 0, err
	}
	s, err := d.oiap(wellKnownSecret)
	if err != nil {
		return 0, err
	}
	out, err := d.authCommand1("TPM_IncrementCounter", ordIncrementCounter, nil, u32(id), s)
	if err != nil {
		var re *ResponseError
		if errors.As(err, &re) && re.Code == rc12BadCounter {
			return 0, fmt.Errorf("%w (a TPM 1.2 increments only one counter per boot; another was incremented since power-on)", err)
		}
		return 0, err
	}
	_, v, err := counterValue12(out)
	return v, err
}

// CreateAK makes an AIK with TPM_MakeIdentity (Main Part 3, 15.1) through
// go-tpm's legacy package. AK.Public is the PKIX DER RSA public key; the
// key blob is kept in AK and loaded for each quote. On TPM 1.2 the AIK is
// new each call (RSA-2048 generation, slow on real parts): enrol it once
// and keep the AK.
func (d *tpm12) CreateAK() (*AK, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	rw := &rwAdapter{t: d.t}
	blob, err := legacy.MakeIdentity(rw, wellKnownSecret, d.ownerSecret(), wellKnownSecret, nil, nil)
	if err != nil {
		return nil, wrap12("TPM_MakeIdentity", err)
	}
	pub, err := legacy.UnmarshalRSAPublicKey(blob)
	if err != nil {
		return nil, fmt.Errorf("TPM_MakeIdentity: AIK public key: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return &AK{Public: der, blob12: blob}, nil
}

func (d *tpm12) Quote(ak *AK, bank Alg, pcrs []int, nonce []byte) (*Quote, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ak == nil || ak.blob12 == nil {
		return nil, errors.New("quote: no TPM 1.2 attestation key (CreateAK on this TPM first)")
	}
	if bank != SHA1 {
		return nil, fmt.Errorf("%w: TPM 1.2 quotes only the sha1 bank", ErrUnsupported)
	}
	pcrs = append([]int(nil), pcrs...)
	sort.Ints(pcrs)
	rw := &rwAdapter{t: d.t}
	h, err := legacy.LoadKey2(rw, ak.blob12, wellKnownSecret)
	if err != nil {
		return nil, wrap12("TPM_LoadKey2(AIK)", err)
	}
	defer legacy.CloseKey(rw, h)
	sig, values, err := legacy.Quote(rw, tpmutil.Handle(h), nonce, pcrs, wellKnownSecret)
	if err != nil {
		return nil, wrap12("TPM_Quote", err)
	}
	if len(values) != 20*len(pcrs) {
		return nil, errors.New("TPM_Quote: PCR values do not match the selection")
	}
	q := &Quote{Signature: sig, Bank: SHA1, PCRs: map[int][]byte{}}
	for i, p := range pcrs {
		q.PCRs[p] = values[20*i : 20*i+20]
	}
	if q.Attest, err = legacy.NewQuoteInfo(nonce, pcrs, values); err != nil {
		return nil, err
	}
	return q, nil
}

// verifyQuote12 checks a TPM 1.2 quote: TPM_QUOTE_INFO (Main Part 2, 11.3)
// recomputed from the claimed PCRs and nonce, signed with RSASSA-PKCS1v1.5
// SHA-1 by the AIK. A TPM 1.2 signature covers the composite digest, so a
// wrong nonce and altered PCRs both show as a signature mismatch.
func verifyQuote12(akPublic []byte, q *Quote, nonce []byte) error {
	pub, err := x509.ParsePKIXPublicKey(akPublic)
	if err != nil {
		return &QuoteError{Reason: fmt.Sprintf("attestation key does not parse: %v", err)}
	}
	if q.Bank != SHA1 {
		return &QuoteError{Reason: "a TPM 1.2 quote covers the sha1 bank only"}
	}
	pcrs := make([]int, 0, len(q.PCRs))
	for p := range q.PCRs {
		if p < 0 || p >= pcrCount || len(q.PCRs[p]) != 20 {
			return &QuoteError{Reason: fmt.Sprintf("PCR %d value is malformed", p)}
		}
		pcrs = append(pcrs, p)
	}
	sort.Ints(pcrs)
	var values []byte
	for _, p := range pcrs {
		values = append(values, q.PCRs[p]...)
	}
	info, err := legacy.NewQuoteInfo(nonce, pcrs, values)
	if err != nil {
		return &QuoteError{Reason: err.Error()}
	}
	if !bytes.Equal(info, q.Attest) {
		return &QuoteError{Reason: "the supplied PCR values or the nonce are not the ones the TPM signed"}
	}
	rsaPub, ok := pub.(*rsa.PublicKey)
	if !ok {
		return &QuoteError{Reason: "attestation key is not RSA"}
	}
	digest := sha1.Sum(info)
	if err := rsa.VerifyPKCS1v15(rsaPub, crypto.SHA1, digest[:], q.Signature); err != nil {
		return &QuoteError{Reason: "the signature does not match the attestation key (forged or altered quote)"}
	}
	return nil
}

// Clear resets a TPM 1.2 the way Heads' reset does: TPM_OwnerClear with
// the owner secret, or TPM_ForceClear under physical presence if that is
// refused; then, since a clear leaves the TPM disabled and unowned (Main
// Part 1, "Owner Clear"), TPM_PhysicalEnable and TPM_PhysicalSetDeactivated(FALSE)
// under physical presence, and TPM_TakeOwnership with the well-known
// secrets (a new SRK: everything sealed before is gone). Physical presence
// is asserted by command (TSC_PhysicalPresence), which works in glint's
// boot environment until LockPlatform locks it.
func (d *tpm12) Clear() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	// Presence first: without it the TPM could be cleared but not
	// re-enabled, leaving it off until someone visits the firmware setup.
	if err := d.assertPresence(); err != nil {
		return fmt.Errorf("TPM not cleared: physical presence cannot be asserted (locked in this boot?): %w; reboot into glint or clear the TPM from the firmware setup", err)
	}
	s, err := d.oiap(d.ownerSecret())
	if err != nil {
		return err
	}
	if _, ownerErr := d.authCommand1("TPM_OwnerClear", ordOwnerClear, nil, nil, s); ownerErr != nil {
		if _, err := d.send12("TPM_ForceClear", tagRquCommand, ordForceClear, nil); err != nil {
			return fmt.Errorf("TPM_OwnerClear refused (%v) and %w", ownerErr, err)
		}
	}
	if _, err := d.send12("TPM_PhysicalEnable", tagRquCommand, ordPhysicalEnable, nil); err != nil {
		return fmt.Errorf("TPM cleared, but %w; enable it in the firmware setup", err)
	}
	if _, err := d.send12("TPM_PhysicalSetDeactivated", tagRquCommand, ordPhysicalSetDeactivated, []byte{0}); err != nil {
		return fmt.Errorf("TPM cleared, but %w; activate it in the firmware setup", err)
	}
	rw := &rwAdapter{t: d.t}
	ek, err := legacy.ReadPubEK(rw)
	if err != nil {
		return fmt.Errorf("TPM cleared, but reading the EK to take ownership again failed (a reboot may be needed to activate it): %w", wrap12("TPM_ReadPubEK", err))
	}
	var zero legacy.Digest
	if err := legacy.TakeOwnership(rw, zero, zero, ek); err != nil {
		return fmt.Errorf("TPM cleared, but taking ownership again failed: %w", wrap12("TPM_TakeOwnership", err))
	}
	return nil
}

// assertPresence asserts physical presence by command (Main Part 3, 6.2:
// enable the command form, then declare presence).
func (d *tpm12) assertPresence() error {
	if _, err := d.send12("TSC_PhysicalPresence(CMD_ENABLE)", tagRquCommand, ordPhysicalPresence, u16(0x0020)); err != nil {
		var re *ResponseError
		// TPM_BAD_PARAMETER: already enabled (or the lifetime lock forbids
		// changing it); try declaring presence anyway.
		if !errors.As(err, &re) || re.Code != rc12BadParameter {
			return err
		}
	}
	_, err := d.send12("TSC_PhysicalPresence(PRESENT)", tagRquCommand, ordPhysicalPresence, u16(0x0008))
	return err
}

// LockPlatform on TPM 1.2 locks physical presence for this boot
// (TSC_PhysicalPresence(TPM_PHYSICAL_PRESENCE_LOCK), Main Part 3, 6.2), so
// the booted OS cannot assert presence to force-clear or re-enable the TPM.
// Already locked (by the firmware) is fine: nil, and Platform says so.
func (d *tpm12) LockPlatform() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	st, err := d.platformStatus()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrPlatformUnlockable, err)
	}
	if st != PlatformOpen {
		return nil
	}
	if _, err := d.send12("TSC_PhysicalPresence(LOCK)", tagRquCommand, ordPhysicalPresence, u16(0x0004)); err != nil {
		return fmt.Errorf("%w: %v", ErrPlatformUnlockable, err)
	}
	d.platformLocked = true
	return nil
}

// Shutdown sends TPM_SaveState (Main Part 3, 3.3), the orderly shutdown.
func (d *tpm12) Shutdown() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, err := d.send12("TPM_SaveState", tagRquCommand, ordSaveState, nil)
	return err
}

func (d *tpm12) ConfigureLockout(maxTries, recoverySeconds, lockoutRecoverySeconds uint32) error {
	return fmt.Errorf("%w: a TPM 1.2's dictionary-attack policy is fixed by its vendor", ErrUnsupported)
}

// ResetLockout runs TPM_ResetLockValue (Main Part 3, 5.4) with the owner secret.
func (d *tpm12) ResetLockout() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	s, err := d.oiap(d.ownerSecret())
	if err != nil {
		return err
	}
	_, err = d.authCommand1("TPM_ResetLockValue", ordResetLockValue, nil, nil, s)
	if err = ownerAuth12(err); errors.Is(err, ErrOwnerAuth) {
		// Main Part 3, 5.4: one failed TPM_ResetLockValue sets
		// disableResetLock until the next TPM_Startup(ST_CLEAR), after
		// which even the right secret gets TPM_AUTHFAIL.
		return fmt.Errorf("%w (a TPM 1.2 also refuses the right owner secret here after one wrong lockout reset since it was switched on: switch the machine off and on and reset the lockout in glint's menu before anything else boots)", err)
	}
	return err
}

func (d *tpm12) Info() (*Info, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	m, err := d.manufacturer()
	if err != nil {
		return nil, err
	}
	info := &Info{Version: Version12, Manufacturer: m, Banks: []Alg{SHA1}}
	if b, err := d.getCapability(0x05, 0x111); err == nil && len(b) == 1 { // TPM_CAP_PROP_OWNER
		info.Owned = b[0] != 0
	}
	if b, err := d.getCapability(0x1A, 0); err == nil && len(b) >= 6 { // TPM_CAP_VERSION_VAL
		info.Firmware = fmt.Sprintf("%d.%d rev %d.%d", b[2], b[3], b[4], b[5])
	}
	return info, nil
}

// rc12OwnerSet is TPM_OWNER_SET (Main Part 2, 16): the TPM already has an owner.
const rc12OwnerSet = 0x14

// TakeOwnership takes ownership of an unowned TPM 1.2 with the TCG
// well-known owner and SRK secrets, as Heads' OEM reset does ("tpm takeown"),
// so glint can define its rollback counter and seal. A TPM that already has
// an owner is left alone.
func (d *tpm12) TakeOwnership() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	rw := &rwAdapter{t: d.t}
	ek, err := legacy.ReadPubEK(rw)
	if err != nil {
		var re *ResponseError
		if err2 := wrap12("TPM_ReadPubEK", err); errors.As(err2, &re) && re.Code == 0x08 /* TPM_DISABLED_CMD: ReadPubEK is off once owned */ {
			return nil
		}
		return fmt.Errorf("take TPM ownership: %w", wrap12("TPM_ReadPubEK", err))
	}
	var zero legacy.Digest
	if err := legacy.TakeOwnership(rw, zero, zero, ek); err != nil {
		var re *ResponseError
		if err2 := wrap12("TPM_TakeOwnership", err); errors.As(err2, &re) && re.Code == rc12OwnerSet {
			return nil
		}
		return fmt.Errorf("take TPM ownership: %w", wrap12("TPM_TakeOwnership", err))
	}
	return nil
}
