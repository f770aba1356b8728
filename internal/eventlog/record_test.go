package eventlog

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/glint-boot/glint/internal/tpm"
)

// The stored form is what milestone 1 wrote (files made before records held
// digest bytes): reading and writing it again gives the same bytes.
func TestRecordsStoredFormUnchanged(t *testing.T) {
	for _, name := range []string{"coreboot-tpm2.predicted.json", "coreboot-tpm12.predicted.json"} {
		raw := bytes.TrimSpace(readGolden(t, name))
		recs, err := ParseRecords(raw)
		if err != nil {
			t.Fatal(err)
		}
		if recs[0].Alg == 0 || len(recs[0].Digest) != recs[0].Alg.Size() || recs[0].Type != EvCorebootMeasurement {
			t.Errorf("%s: first record %+v", name, recs[0])
		}
		out, err := MarshalRecords(recs)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, raw) {
			t.Errorf("%s: written back differently:\n%.200s\nwant\n%.200s", name, out, raw)
		}
	}
}

func TestRecordJSON(t *testing.T) {
	r := EventRecord{PCR: 7, Type: EvIPL, Description: "owner file config", Alg: tpm.SHA1, Digest: bytes.Repeat([]byte{0xab}, 20)}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"pcr":7,"type":"EV_IPL","desc":"owner file config","digest":"` + string(bytes.Repeat([]byte("ab"), 20)) + `"}`
	if string(b) != want {
		t.Fatalf("stored as %s, want %s", b, want)
	}
	var back EventRecord
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.PCR != r.PCR || back.Type != r.Type || back.Description != r.Description || back.Alg != r.Alg || !bytes.Equal(back.Digest, r.Digest) {
		t.Fatalf("read back %+v, want %+v", back, r)
	}
	for _, bad := range []string{
		`{"pcr":7,"type":"EV_IPL","digest":"ab","extra":1}`,
		`{"pcr":7,"type":"EV_IPL","digest":"` + string(bytes.Repeat([]byte("ab"), 21)) + `"}`,
		`{"pcr":1024,"type":"EV_IPL","digest":"` + string(bytes.Repeat([]byte("ab"), 20)) + `"}`,
	} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}
