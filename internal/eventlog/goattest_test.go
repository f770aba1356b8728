package eventlog

import (
	"bytes"
	"crypto"
	"testing"

	"github.com/google/go-attestation/attest"

	"github.com/glint-boot/glint/internal/tpm"
)

// TestWindowsNoActionGoAttestation is the second opinion for logs carrying
// EV_NO_ACTION at index 0xFFFFFFFF: go-attestation (the field's reference
// log verifier) parses the same bytes and its replay against the PCRs the
// guest's TPM held succeeds, as glint's does. (tpm2_eventlog, the second
// opinion for the golden logs, crashes on such a log: tpm2-tools 5.4 indexes
// its PCR table with the logged index.)
func TestWindowsNoActionGoAttestation(t *testing.T) {
	raw, _ := windowsStyleLog(t)
	ga, err := attest.ParseEventLog(raw)
	if err != nil {
		t.Fatalf("go-attestation refuses the log: %v", err)
	}
	live := readPCRs(t, "seabios-tpm12")[tpm.SHA1]
	var pcrs []attest.PCR
	for i, v := range firmwarePCRs(live) {
		pcrs = append(pcrs, attest.PCR{Index: i, Digest: v, DigestAlg: crypto.SHA1})
	}
	verified, err := ga.Verify(pcrs)
	if err != nil {
		t.Fatalf("go-attestation's replay: %v", err)
	}
	l := mustParse(t, raw)
	if err := l.Verify(tpm.SHA1, firmwarePCRs(live)); err != nil {
		t.Fatalf("glint's replay: %v", err)
	}
	// Both agree on which events were extended, in order, with which digests.
	recs := l.Records(tpm.SHA1)
	if len(verified) != len(recs) {
		t.Fatalf("go-attestation verified %d events, glint records %d extended ones", len(verified), len(recs))
	}
	var ext []Event
	for _, e := range l.Events {
		if e.Extended() {
			ext = append(ext, e)
		}
	}
	for i, v := range verified {
		if v.Index != ext[i].PCR || !bytes.Equal(v.Digest, ext[i].Digests[tpm.SHA1]) {
			t.Errorf("event %d: go-attestation PCR %d %x, glint PCR %d %x", i, v.Index, v.Digest, ext[i].PCR, ext[i].Digests[tpm.SHA1])
		}
	}
	// go-attestation keeps the informational events too, at their logged index.
	n := 0
	for _, e := range ga.Events(attest.HashSHA1) {
		if uint32(e.Index) == noActionPCRIndex {
			n++
		}
	}
	if n != 3 {
		t.Errorf("go-attestation sees %d events at index 0xFFFFFFFF, want 3", n)
	}
}
