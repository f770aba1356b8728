package wire

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func asError(err error, e **Error) bool { return errors.As(err, e) }

func sampleChallengeRequest() *ChallengeRequest {
	return &ChallengeRequest{DeviceID: bytes.Repeat([]byte{0xd1}, DeviceIDSize), Purpose: PurposeReport}
}

func sampleIdentity() Identity {
	return Identity{TPMVersion: 20, EKPublic: bytes.Repeat([]byte{1}, 314), EKCertificate: bytes.Repeat([]byte{2}, 900),
		AKPublic: bytes.Repeat([]byte{3}, 88), Hostname: "laptop-7", Model: "QEMU Standard PC (Q35 + ICH9, 2009)", Firmware: "coreboot 4.15 glint"}
}

func sampleEnrollRequest() *EnrollRequest { return &EnrollRequest{Identity: sampleIdentity()} }

func sampleActivateRequest() *ActivateRequest {
	return &ActivateRequest{Identity: sampleIdentity(), Token: bytes.Repeat([]byte{9}, 58), Secret: bytes.Repeat([]byte{5}, SecretSize)}
}

func sampleReportRequest() *ReportRequest {
	r := &ReportRequest{DeviceID: bytes.Repeat([]byte{0xd1}, DeviceIDSize), Token: bytes.Repeat([]byte{9}, 58), Purpose: PurposeUnlock,
		Bank: 0x000B, Attest: bytes.Repeat([]byte{4}, 145), Signature: bytes.Repeat([]byte{6}, 72),
		EventLog: bytes.Repeat([]byte{8}, 3000), HostChecks: []byte(`{"checks":[]}`), Firmware: "coreboot 4.15 glint"}
	for i := 0; i < 8; i++ {
		r.PCRs = append(r.PCRs, PCRValue{Index: uint8(i), Value: bytes.Repeat([]byte{byte(i)}, 32)})
	}
	return r
}

func TestRoundTrip(t *testing.T) {
	r := sampleReportRequest()
	got, err := DecodeReportRequest(r.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if got.Firmware != r.Firmware || len(got.PCRs) != 8 || !bytes.Equal(got.EventLog, r.EventLog) || got.Purpose != PurposeUnlock {
		t.Fatalf("round trip lost fields: %+v", got)
	}
	a, err := DecodeActivateRequest(sampleActivateRequest().Marshal())
	if err != nil || a.Model != sampleIdentity().Model || len(a.Secret) != SecretSize {
		t.Fatalf("activate round trip: %+v, %v", a, err)
	}
}

// Each refusal names the field, and nothing past a cap is ever allocated.
func TestRefusals(t *testing.T) {
	r := sampleReportRequest()
	good := r.Marshal()
	cases := []struct {
		name  string
		bytes []byte
		field string
	}{
		{"empty", nil, "magic"},
		{"another message type", sampleChallengeRequest().Marshal(), "type"},
		{"trailing byte", append(append([]byte{}, good...), 0), "end"},
		{"truncated", good[:len(good)-3], "firmware"},
		{"huge declared log", func() []byte {
			m := *r
			m.EventLog = nil
			b := m.Marshal()
			// the event_log length sits before host_checks and firmware
			i := len(b) - (4 + len(m.HostChecks)) - (4 + len(m.Firmware)) - 4
			b[i], b[i+1], b[i+2], b[i+3] = 0xff, 0xff, 0xff, 0xf0
			return b
		}(), "event_log"},
		{"25 PCRs", func() []byte {
			m := *r
			m.PCRs = nil
			for i := 0; i < 25; i++ {
				m.PCRs = append(m.PCRs, PCRValue{Index: uint8(i), Value: make([]byte, 32)})
			}
			return m.Marshal()
		}(), "pcr_count"},
		{"PCRs out of order", func() []byte {
			m := *r
			m.PCRs = []PCRValue{{Index: 3, Value: make([]byte, 32)}, {Index: 1, Value: make([]byte, 32)}}
			return m.Marshal()
		}(), "pcr.index"},
		{"odd digest size", func() []byte {
			m := *r
			m.PCRs = []PCRValue{{Index: 0, Value: make([]byte, 31)}}
			return m.Marshal()
		}(), "pcr.value"},
		{"escape in firmware label", func() []byte {
			m := *r
			m.Firmware = "ok\x1b[2Jforged"
			return m.Marshal()
		}(), "firmware"},
		{"enroll purpose in a report", func() []byte {
			m := *r
			m.Purpose = PurposeEnroll
			return m.Marshal()
		}(), "purpose"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeReportRequest(c.bytes)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *wire.Error", err)
			}
			if e.Field != c.field {
				t.Fatalf("field = %q, want %q (%v)", e.Field, c.field, err)
			}
			if !strings.Contains(err.Error(), "ReportRequest") {
				t.Fatalf("error does not name the message: %v", err)
			}
		})
	}
}
