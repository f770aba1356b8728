// Package wire is the message format between glint's attestation client
// (a machine's TPM, in the installed OS or in the firmware payload) and the
// attestation server.
//
// The transport is HTTPS: POST of one message to a path under /v1/, one
// message back, Content-Type application/vnd.glint.attest.v1. Messages are
// binary rather than JSON because the server decodes one per report from
// thousands of machines and the payload is an event log of tens of KiB: a
// length-prefixed layout is decoded by slicing, and its decoder is short
// enough to audit and fuzz completely.
//
// Every message is
//
//	"GLAT" | version u8 (1) | type u8 | fields...
//
// and every field is either a fixed-size integer (big-endian) or a byte
// string u32 length + bytes. A decoder checks each length against what
// remains AND the field's named cap before taking it (Max* below), refuses
// trailing bytes, and fails with *Error naming the message and field. The
// decoded message aliases the input buffer: callers that keep a field past
// the life of the buffer copy it.
//
// The exchanges (see docs/attestation.md for the story):
//
//	enrol:   EnrollRequest  -> EnrollChallenge   (credential for the TPM)
//	         ActivateRequest -> Enrolled          (proves the AK is in that TPM)
//	report:  ChallengeRequest -> Challenge        (server token; nonce = SHA-256(token))
//	         ReportRequest   -> ReportResult      (quote + event log; verdict)
//	unlock:  the same as report with Purpose Unlock; a good verdict carries
//	         a Credential holding the server's half of the disk key
//
// Errors travel as ErrorMessage with an HTTP status.
package wire

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// ContentType is the media type of every message.
const ContentType = "application/vnd.glint.attest.v1"

const (
	magic   = "GLAT"
	version = 1
)

// Type identifies a message.
type Type uint8

const (
	TypeChallengeRequest Type = 1
	TypeChallenge        Type = 2
	TypeEnrollRequest    Type = 3
	TypeEnrollChallenge  Type = 4
	TypeActivateRequest  Type = 5
	TypeEnrolled         Type = 6
	TypeReportRequest    Type = 7
	TypeReportResult     Type = 8
	TypeError            Type = 9
)

var typeNames = map[Type]string{
	TypeChallengeRequest: "ChallengeRequest", TypeChallenge: "Challenge",
	TypeEnrollRequest: "EnrollRequest", TypeEnrollChallenge: "EnrollChallenge",
	TypeActivateRequest: "ActivateRequest", TypeEnrolled: "Enrolled",
	TypeReportRequest: "ReportRequest", TypeReportResult: "ReportResult",
	TypeError: "ErrorMessage",
}

func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("message type %d", uint8(t))
}

// Caps, each named after what bounds it.
const (
	// MaxMessage bounds a whole message: the event log cap plus everything
	// else with room. The server's HTTP layer refuses larger bodies before
	// reading them.
	MaxMessage = MaxEventLog + 256<<10
	// MaxEventLog bounds the event log a report carries. Real firmware logs
	// are 2-100 KiB (a UEFI laptop with a long db/dbx: ~60 KiB); Linux
	// refuses ACPI logs over 1 MiB.
	MaxEventLog = 1 << 20
	// MaxHostChecks bounds the host-check report (JSON from glint host check).
	MaxHostChecks = 64 << 10
	// MaxPublic bounds a TPMT_PUBLIC or a DER public key (RSA-4096 fits).
	MaxPublic = 1024
	// MaxCertificate bounds an EK certificate (real ones are 1-1.5 KiB).
	MaxCertificate = 4096
	// MaxToken bounds a server token (58 bytes today).
	MaxToken = 128
	// MaxAttest bounds a TPMS_ATTEST / TPM_QUOTE_INFO: a quote of 24 PCRs in
	// one bank is under 200 bytes; a signer name and clock info add ~100.
	MaxAttest = 1024
	// MaxSignature bounds a TPMT_SIGNATURE or PKCS#1 signature (RSA-4096: 512).
	MaxSignature = 600
	// MaxPCRs is the PC Client PCR count (PTP 2.0, 4.11): one value each.
	MaxPCRs = 24
	// MaxDigest is the largest PCR value (SHA-512).
	MaxDigest = 64
	// MaxText bounds names and one-line texts (host name, model, firmware).
	MaxText = 255
	// MaxSummary bounds the human-readable verdict text sent back.
	MaxSummary = 64 << 10
	// MaxCredentialPart bounds each half of a TPM credential.
	MaxCredentialPart = 512
	// DeviceIDSize is a device ID: SHA-256 of the AK's public key.
	DeviceIDSize = 32
	// SecretSize is an activation secret (tpm.CredentialSecretSize).
	SecretSize = 32
)

// Error says why bytes were refused as a message.
type Error struct {
	Message string // e.g. "ReportRequest"
	Field   string
	Offset  int
	Reason  string
}

func (e *Error) Error() string {
	return fmt.Sprintf("malformed %s: %s at byte %d: %s", e.Message, e.Field, e.Offset, e.Reason)
}

// Nonce is what a device passes to the TPM as qualifying data for a server
// token: SHA-256(token). It fits both TPM families (TPM 2.0 takes up to 64
// bytes; TPM 1.2 hashes the external data to 20 bytes itself).
func Nonce(token []byte) []byte {
	s := sha256.Sum256(token)
	return s[:]
}

// encoder appends fields.
type encoder struct{ b []byte }

func newEncoder(t Type, sizeHint int) *encoder {
	e := &encoder{b: make([]byte, 0, 6+sizeHint)}
	e.b = append(e.b, magic...)
	e.b = append(e.b, version, byte(t))
	return e
}

func (e *encoder) u8(v uint8)   { e.b = append(e.b, v) }
func (e *encoder) u16(v uint16) { e.b = binary.BigEndian.AppendUint16(e.b, v) }
func (e *encoder) bytes(v []byte) {
	e.b = binary.BigEndian.AppendUint32(e.b, uint32(len(v)))
	e.b = append(e.b, v...)
}
func (e *encoder) str(s string) { e.bytes([]byte(s)) }

// decoder reads fields, stopping at the first error.
type decoder struct {
	msg string
	b   []byte
	off int
	err error
}

func newDecoder(untrusted []byte, t Type) *decoder {
	d := &decoder{msg: t.String(), b: untrusted}
	if len(untrusted) > MaxMessage {
		d.fail("message", "%d bytes, limit %d", len(untrusted), MaxMessage)
		return d
	}
	if len(untrusted) < 6 || string(untrusted[:4]) != magic {
		d.fail("magic", "not a glint attestation message")
		return d
	}
	if untrusted[4] != version {
		d.off = 4
		d.fail("version", "version %d, this glint speaks %d", untrusted[4], version)
		return d
	}
	if Type(untrusted[5]) != t {
		d.off = 5
		d.fail("type", "a %s where a %s was expected", Type(untrusted[5]), t)
		return d
	}
	d.off = 6
	return d
}

func (d *decoder) fail(field, format string, a ...any) {
	if d.err == nil {
		d.err = &Error{Message: d.msg, Field: field, Offset: d.off, Reason: fmt.Sprintf(format, a...)}
	}
}

func (d *decoder) u8(field string) uint8 {
	if d.err != nil {
		return 0
	}
	if len(d.b)-d.off < 1 {
		d.fail(field, "truncated")
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

func (d *decoder) u16(field string) uint16 {
	if d.err != nil {
		return 0
	}
	if len(d.b)-d.off < 2 {
		d.fail(field, "truncated")
		return 0
	}
	v := binary.BigEndian.Uint16(d.b[d.off:])
	d.off += 2
	return v
}

// bytes reads a length-prefixed field of at most max bytes.
func (d *decoder) bytes(field string, max int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b)-d.off < 4 {
		d.fail(field, "truncated length")
		return nil
	}
	claimed := binary.BigEndian.Uint32(d.b[d.off:])
	if uint64(claimed) > uint64(max) {
		d.fail(field, "%d bytes, limit %d", claimed, max)
		return nil
	}
	if int(claimed) > len(d.b)-d.off-4 {
		d.fail(field, "%d bytes declared, %d remain", claimed, len(d.b)-d.off-4)
		return nil
	}
	d.off += 4
	v := d.b[d.off : d.off+int(claimed) : d.off+int(claimed)]
	d.off += int(claimed)
	return v
}

// exact reads a field that must be exactly n bytes.
func (d *decoder) exact(field string, n int) []byte {
	v := d.bytes(field, n)
	if d.err == nil && len(v) != n {
		d.off -= 4 + len(v)
		d.fail(field, "%d bytes, want %d", len(v), n)
		return nil
	}
	return v
}

// text reads a printable one-line string (no control characters), so
// nothing a device claims can forge lines in logs or the dashboard.
func (d *decoder) text(field string, max int) string {
	v := d.bytes(field, max)
	if !utf8.Valid(v) {
		d.off -= 4 + len(v)
		d.fail(field, "not UTF-8")
		return ""
	}
	for _, c := range v {
		if c < 0x20 || c == 0x7f {
			d.off -= 4 + len(v)
			d.fail(field, "control character 0x%02x in text", c)
			return ""
		}
	}
	return string(v)
}

// finish refuses trailing bytes and returns the first error.
func (d *decoder) finish() error {
	if d.err == nil && d.off != len(d.b) {
		d.fail("end", "%d bytes of trailing data", len(d.b)-d.off)
	}
	return d.err
}
