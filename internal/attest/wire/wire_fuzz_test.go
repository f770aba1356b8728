package wire

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// Every decoder of bytes from the network has a fuzz target: no panic, and
// whatever is accepted encodes back to exactly the same bytes (so two
// parties can never read one message two ways). Seeds are real messages
// recorded from a swtpm-backed enrolment and report (testdata/*.msg, written
// by the client tests with -update) plus the hand-made samples below.

func seeds(f *testing.F, t Type, samples ...interface{ Marshal() []byte }) {
	f.Helper()
	for _, s := range samples {
		f.Add(s.Marshal())
	}
	files, _ := filepath.Glob(filepath.Join("testdata", t.String()+"*.msg"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func roundTrip[M interface{ Marshal() []byte }](t *testing.T, untrusted []byte, decode func([]byte) (M, error)) {
	m, err := decode(untrusted)
	if err != nil {
		var e *Error
		if !asError(err, &e) {
			t.Fatalf("decoder returned %T, want *wire.Error: %v", err, err)
		}
		return
	}
	if again := m.Marshal(); !bytes.Equal(again, untrusted) {
		t.Fatalf("accepted message re-encodes differently:\n in  %x\n out %x", untrusted, again)
	}
}

func FuzzDecodeChallengeRequest(f *testing.F) {
	seeds(f, TypeChallengeRequest, sampleChallengeRequest())
	f.Fuzz(func(t *testing.T, b []byte) { roundTrip(t, b, DecodeChallengeRequest) })
}

func FuzzDecodeEnrollRequest(f *testing.F) {
	seeds(f, TypeEnrollRequest, sampleEnrollRequest())
	f.Fuzz(func(t *testing.T, b []byte) { roundTrip(t, b, DecodeEnrollRequest) })
}

func FuzzDecodeActivateRequest(f *testing.F) {
	seeds(f, TypeActivateRequest, sampleActivateRequest())
	f.Fuzz(func(t *testing.T, b []byte) { roundTrip(t, b, DecodeActivateRequest) })
}

func FuzzDecodeReportRequest(f *testing.F) {
	seeds(f, TypeReportRequest, sampleReportRequest())
	f.Fuzz(func(t *testing.T, b []byte) { roundTrip(t, b, DecodeReportRequest) })
}

// The client decodes the server's answers: a hostile or impersonated
// server must not crash it either (it may run as PID 1).
func FuzzDecodeResponses(f *testing.F) {
	seeds(f, TypeChallenge, &Challenge{Token: bytes.Repeat([]byte{7}, 58)})
	seeds(f, TypeEnrollChallenge, &EnrollChallenge{Token: []byte("tok"), Credential: Credential{EKEncrypted: make([]byte, 256), Blob: make([]byte, 68)}})
	seeds(f, TypeEnrolled, &Enrolled{DeviceID: make([]byte, 32), Status: "pending", Message: "ask your administrator"})
	seeds(f, TypeReportResult, &ReportResult{Verdict: Changed, Summary: "PCR 2: fallback/payload changed", Credential: &Credential{EKEncrypted: []byte{1}, Blob: []byte{2}}})
	seeds(f, TypeError, &ErrorMessage{Code: 429, Message: "slow down"})
	f.Fuzz(func(t *testing.T, b []byte) {
		roundTrip(t, b, DecodeChallenge)
		roundTrip(t, b, DecodeEnrollChallenge)
		roundTrip(t, b, DecodeEnrolled)
		roundTrip(t, b, DecodeReportResult)
		roundTrip(t, b, DecodeErrorMessage)
	})
}
