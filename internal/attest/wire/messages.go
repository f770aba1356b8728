package wire

import (
	"fmt"
	"sort"
)

// Purpose says what a server token and the report it answers are for.
type Purpose uint8

const (
	// PurposeEnroll: a token that binds an enrolment's keys (EnrollChallenge).
	PurposeEnroll Purpose = 1
	// PurposeReport: a periodic or boot-time integrity report.
	PurposeReport Purpose = 2
	// PurposeUnlock: a report that asks for the server's half of the disk
	// key; released only with a verdict of Trusted.
	PurposeUnlock Purpose = 3
	// PurposeUnlockSetup: a report that asks the server to create (or hand
	// out again) the device's disk-key half, to add a network-bound LUKS
	// keyslot; released only with a verdict of Trusted.
	PurposeUnlockSetup Purpose = 4
)

func (p Purpose) String() string {
	switch p {
	case PurposeEnroll:
		return "enroll"
	case PurposeReport:
		return "report"
	case PurposeUnlock:
		return "unlock"
	case PurposeUnlockSetup:
		return "unlock-setup"
	}
	return fmt.Sprintf("purpose %d", uint8(p))
}

func validReportPurpose(p Purpose) bool {
	return p == PurposeReport || p == PurposeUnlock || p == PurposeUnlockSetup
}

// ChallengeRequest asks for a token to quote over (POST /v1/challenge).
type ChallengeRequest struct {
	DeviceID []byte // DeviceIDSize: SHA-256 of the enrolled AK public
	Purpose  Purpose
}

func (m *ChallengeRequest) Marshal() []byte {
	e := newEncoder(TypeChallengeRequest, 40)
	e.bytes(m.DeviceID)
	e.u8(uint8(m.Purpose))
	return e.b
}

func DecodeChallengeRequest(untrusted []byte) (*ChallengeRequest, error) {
	d := newDecoder(untrusted, TypeChallengeRequest)
	m := &ChallengeRequest{DeviceID: d.exact("device_id", DeviceIDSize), Purpose: Purpose(d.u8("purpose"))}
	if d.err == nil && !validReportPurpose(m.Purpose) {
		d.off--
		d.fail("purpose", "%s is not a report purpose", m.Purpose)
	}
	if err := d.finish(); err != nil {
		return nil, err
	}
	return m, nil
}

// Challenge is the server's answer: an opaque token. The device quotes
// with Nonce(Token) and sends the token back with the quote.
type Challenge struct {
	Token []byte
}

func (m *Challenge) Marshal() []byte {
	e := newEncoder(TypeChallenge, len(m.Token)+4)
	e.bytes(m.Token)
	return e.b
}

func DecodeChallenge(untrusted []byte) (*Challenge, error) {
	d := newDecoder(untrusted, TypeChallenge)
	m := &Challenge{Token: d.bytes("token", MaxToken)}
	if d.err == nil && len(m.Token) == 0 {
		d.fail("token", "empty")
	}
	if err := d.finish(); err != nil {
		return nil, err
	}
	return m, nil
}

// Identity is what a device presents at enrolment: its TPM's keys and its
// own, unverified, description.
type Identity struct {
	TPMVersion    uint8  // 12 or 20
	EKPublic      []byte // TPMT_PUBLIC (2.0) or PKIX DER (1.2)
	EKCertificate []byte // DER, may be empty
	AKPublic      []byte // TPMT_PUBLIC (2.0) or PKIX DER (1.2)
	Hostname      string
	Model         string // e.g. "LENOVO ThinkPad X230" (DMI); a claim
	Firmware      string // firmware image label, e.g. "glint 2.1 coreboot 4.15"; a claim
}

func (m *Identity) encode(e *encoder) {
	e.u8(m.TPMVersion)
	e.bytes(m.EKPublic)
	e.bytes(m.EKCertificate)
	e.bytes(m.AKPublic)
	e.str(m.Hostname)
	e.str(m.Model)
	e.str(m.Firmware)
}

func (d *decoder) identity() Identity {
	var m Identity
	m.TPMVersion = d.u8("tpm_version")
	if d.err == nil && m.TPMVersion != 12 && m.TPMVersion != 20 {
		d.off--
		d.fail("tpm_version", "TPM family %d, want 12 or 20", m.TPMVersion)
	}
	m.EKPublic = d.bytes("ek_public", MaxPublic)
	m.EKCertificate = d.bytes("ek_certificate", MaxCertificate)
	m.AKPublic = d.bytes("ak_public", MaxPublic)
	m.Hostname = d.text("hostname", MaxText)
	m.Model = d.text("model", MaxText)
	m.Firmware = d.text("firmware", MaxText)
	if d.err == nil && (len(m.EKPublic) == 0 || len(m.AKPublic) == 0) {
		d.fail("keys", "the EK and AK public keys are required")
	}
	return m
}

// EnrollRequest starts an enrolment (POST /v1/enroll).
type EnrollRequest struct {
	Identity
}

func (m *EnrollRequest) Marshal() []byte {
	e := newEncoder(TypeEnrollRequest, len(m.EKPublic)+len(m.EKCertificate)+len(m.AKPublic)+64)
	m.encode(e)
	return e.b
}

func DecodeEnrollRequest(untrusted []byte) (*EnrollRequest, error) {
	d := newDecoder(untrusted, TypeEnrollRequest)
	m := &EnrollRequest{Identity: d.identity()}
	if err := d.finish(); err != nil {
		return nil, err
	}
	return m, nil
}

// Credential is a TPM credential (tpm.Credential) on the wire.
type Credential struct {
	EKEncrypted []byte
	Blob        []byte
}

func (e *encoder) credential(c Credential) {
	e.bytes(c.EKEncrypted)
	e.bytes(c.Blob)
}

func (d *decoder) credential() Credential {
	return Credential{EKEncrypted: d.bytes("credential.ek_encrypted", MaxCredentialPart), Blob: d.bytes("credential.blob", MaxCredentialPart)}
}

// EnrollChallenge carries a secret only the enrolling TPM can open, for
// the AK it named, and a token binding the enrolment.
type EnrollChallenge struct {
	Token      []byte
	Credential Credential
}

func (m *EnrollChallenge) Marshal() []byte {
	e := newEncoder(TypeEnrollChallenge, len(m.Token)+len(m.Credential.EKEncrypted)+len(m.Credential.Blob)+12)
	e.bytes(m.Token)
	e.credential(m.Credential)
	return e.b
}

func DecodeEnrollChallenge(untrusted []byte) (*EnrollChallenge, error) {
	d := newDecoder(untrusted, TypeEnrollChallenge)
	m := &EnrollChallenge{Token: d.bytes("token", MaxToken), Credential: d.credential()}
	if d.err == nil && (len(m.Token) == 0 || len(m.Credential.EKEncrypted) == 0 || len(m.Credential.Blob) == 0) {
		d.fail("credential", "empty token or credential")
	}
	if err := d.finish(); err != nil {
		return nil, err
	}
	return m, nil
}

// ActivateRequest proves the AK lives in the EK's TPM: the identity again,
// the enrolment token, and the secret the TPM released (POST /v1/activate).
type ActivateRequest struct {
	Identity
	Token  []byte
	Secret []byte // SecretSize
}

func (m *ActivateRequest) Marshal() []byte {
	e := newEncoder(TypeActivateRequest, len(m.EKPublic)+len(m.EKCertificate)+len(m.AKPublic)+len(m.Token)+128)
	m.encode(e)
	e.bytes(m.Token)
	e.bytes(m.Secret)
	return e.b
}

func DecodeActivateRequest(untrusted []byte) (*ActivateRequest, error) {
	d := newDecoder(untrusted, TypeActivateRequest)
	m := &ActivateRequest{Identity: d.identity()}
	m.Token = d.bytes("token", MaxToken)
	m.Secret = d.exact("secret", SecretSize)
	if err := d.finish(); err != nil {
		return nil, err
	}
	return m, nil
}

// Enrolled says the device is known, and whether an administrator must
// still approve it.
type Enrolled struct {
	DeviceID []byte // DeviceIDSize
	Status   string // "pending", "approved"
	Message  string // what the device owner should do next
}

func (m *Enrolled) Marshal() []byte {
	e := newEncoder(TypeEnrolled, 64+len(m.Status)+len(m.Message))
	e.bytes(m.DeviceID)
	e.str(m.Status)
	e.str(m.Message)
	return e.b
}

func DecodeEnrolled(untrusted []byte) (*Enrolled, error) {
	d := newDecoder(untrusted, TypeEnrolled)
	m := &Enrolled{DeviceID: d.exact("device_id", DeviceIDSize), Status: d.text("status", MaxText), Message: d.text("message", MaxSummary)}
	if err := d.finish(); err != nil {
		return nil, err
	}
	return m, nil
}

// PCRValue is one quoted PCR.
type PCRValue struct {
	Index uint8
	Value []byte
}

// ReportRequest is a quote over the server's token with the event log that
// explains it (POST /v1/report).
type ReportRequest struct {
	DeviceID  []byte // DeviceIDSize
	Token     []byte
	Purpose   Purpose
	Bank      uint16 // TPM_ALG_ID of the quoted bank
	Attest    []byte // TPMS_ATTEST (2.0) or TPM_QUOTE_INFO (1.2), as signed
	Signature []byte
	// PCRs in ascending index order, no index twice.
	PCRs []PCRValue
	// EventLog is the firmware log as read (TCG or coreboot TCPA).
	EventLog []byte
	// HostChecks is the JSON of glint's host checks, may be empty.
	HostChecks []byte
	// Firmware is the device's claim of its firmware image label.
	Firmware string
}

func (m *ReportRequest) Marshal() []byte {
	e := newEncoder(TypeReportRequest, len(m.EventLog)+len(m.HostChecks)+len(m.Attest)+len(m.Signature)+len(m.PCRs)*70+128)
	e.bytes(m.DeviceID)
	e.bytes(m.Token)
	e.u8(uint8(m.Purpose))
	e.u16(m.Bank)
	e.bytes(m.Attest)
	e.bytes(m.Signature)
	e.u8(uint8(len(m.PCRs)))
	for _, p := range m.PCRs {
		e.u8(p.Index)
		e.bytes(p.Value)
	}
	e.bytes(m.EventLog)
	e.bytes(m.HostChecks)
	e.str(m.Firmware)
	return e.b
}

func DecodeReportRequest(untrusted []byte) (*ReportRequest, error) {
	d := newDecoder(untrusted, TypeReportRequest)
	m := &ReportRequest{}
	m.DeviceID = d.exact("device_id", DeviceIDSize)
	m.Token = d.bytes("token", MaxToken)
	m.Purpose = Purpose(d.u8("purpose"))
	if d.err == nil && !validReportPurpose(m.Purpose) {
		d.off--
		d.fail("purpose", "%s is not a report purpose", m.Purpose)
	}
	m.Bank = d.u16("bank")
	m.Attest = d.bytes("attest", MaxAttest)
	m.Signature = d.bytes("signature", MaxSignature)
	n := int(d.u8("pcr_count"))
	if d.err == nil && (n == 0 || n > MaxPCRs) {
		d.off--
		d.fail("pcr_count", "%d PCRs, want 1..%d", n, MaxPCRs)
	}
	if d.err == nil {
		m.PCRs = make([]PCRValue, 0, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		idx := d.u8("pcr.index")
		if d.err == nil && (int(idx) >= MaxPCRs || (i > 0 && idx <= m.PCRs[i-1].Index)) {
			d.off--
			d.fail("pcr.index", "PCR %d out of range or out of ascending order", idx)
		}
		v := d.bytes("pcr.value", MaxDigest)
		if d.err == nil && len(v) != 20 && len(v) != 32 && len(v) != 48 && len(v) != 64 {
			d.fail("pcr.value", "a %d-byte PCR value is no known digest size", len(v))
		}
		m.PCRs = append(m.PCRs, PCRValue{Index: idx, Value: v})
	}
	m.EventLog = d.bytes("event_log", MaxEventLog)
	m.HostChecks = d.bytes("host_checks", MaxHostChecks)
	m.Firmware = d.text("firmware", MaxText)
	if err := d.finish(); err != nil {
		return nil, err
	}
	return m, nil
}

// SortPCRs orders PCR values by index, as ReportRequest requires.
func SortPCRs(p []PCRValue) {
	sort.Slice(p, func(i, j int) bool { return p[i].Index < p[j].Index })
}

// Verdict is the server's judgement of a report.
type Verdict uint8

const (
	// Trusted: the quote verifies and every PCR of an approved golden
	// measurement of the device's model has the golden value.
	Trusted Verdict = 1
	// Changed: the quote verifies, but PCR values differ from every
	// approved golden measurement (the summary says which, and which
	// events, where the event log explains them).
	Changed Verdict = 2
	// Unknown: the quote verifies, but no golden measurement is approved
	// for this model and bank yet.
	Unknown Verdict = 3
	// NotApproved: the quote verifies, but the device is not (or no longer)
	// approved by an administrator; the report is kept for them to see.
	NotApproved Verdict = 4
)

func (v Verdict) String() string {
	switch v {
	case Trusted:
		return "trusted"
	case Changed:
		return "changed"
	case Unknown:
		return "unknown"
	case NotApproved:
		return "not-approved"
	}
	return fmt.Sprintf("verdict %d", uint8(v))
}

// ReportResult is the server's verdict, with its reasons in words and, for
// PurposeUnlock / PurposeUnlockSetup with a Trusted verdict, the server's
// half of the disk key encrypted to the device's TPM.
type ReportResult struct {
	Verdict    Verdict
	Summary    string
	Credential *Credential // nil unless released
}

func (m *ReportResult) Marshal() []byte {
	e := newEncoder(TypeReportResult, len(m.Summary)+1100)
	e.u8(uint8(m.Verdict))
	e.str(m.Summary)
	if m.Credential == nil {
		e.u8(0)
	} else {
		e.u8(1)
		e.credential(*m.Credential)
	}
	return e.b
}

func DecodeReportResult(untrusted []byte) (*ReportResult, error) {
	d := newDecoder(untrusted, TypeReportResult)
	m := &ReportResult{Verdict: Verdict(d.u8("verdict"))}
	if d.err == nil && (m.Verdict < Trusted || m.Verdict > NotApproved) {
		d.off--
		d.fail("verdict", "unknown verdict %d", m.Verdict)
	}
	m.Summary = string(d.bytes("summary", MaxSummary))
	switch has := d.u8("has_credential"); {
	case d.err != nil:
	case has == 1:
		c := d.credential()
		m.Credential = &c
	case has != 0:
		d.off--
		d.fail("has_credential", "flag %d, want 0 or 1", has)
	}
	if err := d.finish(); err != nil {
		return nil, err
	}
	return m, nil
}

// ErrorMessage is a refusal with its reason.
type ErrorMessage struct {
	Code    uint16 // the HTTP status it was sent with
	Message string
}

func (m *ErrorMessage) Marshal() []byte {
	e := newEncoder(TypeError, len(m.Message)+8)
	e.u16(m.Code)
	e.str(m.Message)
	return e.b
}

func DecodeErrorMessage(untrusted []byte) (*ErrorMessage, error) {
	d := newDecoder(untrusted, TypeError)
	m := &ErrorMessage{Code: d.u16("code"), Message: string(d.bytes("message", MaxSummary))}
	if err := d.finish(); err != nil {
		return nil, err
	}
	return m, nil
}
