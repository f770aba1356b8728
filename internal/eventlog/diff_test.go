package eventlog

import (
	"errors"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/tpm"
)

func TestDiffCoreboot(t *testing.T) {
	old, _ := syntheticTCPALog(t, tpm.SHA256)
	// The owner rebuilt the payload, and a new stage appeared.
	newLog, _ := syntheticTCPALog(t, tpm.SHA256)
	newLog.Events[5].Digests = map[tpm.Alg][]byte{tpm.SHA256: make([]byte, 32)}
	newLog.Events = append(newLog.Events, Event{Index: 6, PCR: 2, Type: EvCorebootMeasurement,
		Description: "FMAP: COREBOOT CBFS: glint/owner.gpg", Digests: map[tpm.Alg][]byte{tpm.SHA256: make([]byte, 32)}})

	// The seal package stores records and diffs them later: go through the
	// stored form.
	stored, err := MarshalRecords(old.Records(tpm.SHA256))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := ParseRecords(stored)
	if err != nil {
		t.Fatal(err)
	}
	back, err := FromRecords(recs)
	if err != nil {
		t.Fatal(err)
	}
	changes := Diff(back, newLog)
	got := Explain(changes)
	want := "PCR 2: FMAP: COREBOOT CBFS: fallback/payload changed (sha256 "
	if len(changes) != 2 || !strings.HasPrefix(got, want) || !strings.Contains(got, "\nPCR 2: FMAP: COREBOOT CBFS: glint/owner.gpg added") {
		t.Fatalf("diff:\n%s", got)
	}
	if d := Diff(back, old); len(d) != 0 {
		t.Fatalf("identical logs differ: %v", Explain(d))
	}
	// Removal.
	if d := Diff(newLog, back); len(d) != 2 || d[1].Kind != Removed {
		t.Fatalf("reverse diff: %s", Explain(d))
	}
}

func TestDiffRealLogs(t *testing.T) {
	// OVMF's TPM 1.2 and TPM 2.0 runs measure the same firmware: their SHA-1
	// digests of the firmware blobs agree, while the variable events moved
	// PCR (the TPM 1.2 OVMF logs boot variables into PCR 5).
	a := mustParse(t, readGolden(t, "ovmf-tpm2.bin"))
	b := mustParse(t, readGolden(t, "ovmf-tpm12.bin"))
	var kinds []string
	for _, c := range Diff(a, b) {
		if c.PCR == 0 {
			kinds = append(kinds, c.String())
		}
	}
	if len(kinds) != 0 {
		t.Fatalf("PCR 0 should be identical between the two OVMF runs: %v", kinds)
	}
}

func TestParseRecordsRejects(t *testing.T) {
	for _, bad := range []string{
		``, `{}`, `[`, `[{"pcr":2,"type":"EV_SEPARATOR","digest":"zz"}]`,
		`[{"pcr":2,"type":"EV_SEPARATOR","digest":"00"}]`,
		`[{"pcr":-1,"type":"EV_SEPARATOR","digest":"` + strings.Repeat("00", 32) + `"}]`,
		`[{"pcr":1,"type":"EV_BOGUS","digest":"` + strings.Repeat("00", 32) + `"}]`,
		`[{"pcr":1,"type":"EV_SEPARATOR","digest":"` + strings.Repeat("00", 32) + `"}`,
		strings.Repeat(" ", MaxRecordsSize+1),
	} {
		_, err := ParseRecords([]byte(bad))
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("%.60q: want *ParseError, got %v", bad, err)
		}
	}
}
