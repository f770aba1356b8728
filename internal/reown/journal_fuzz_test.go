package reown

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// FuzzParseJournal: a journal on /boot is untrusted; the parser returns a
// checked journal or a *JournalError, and what it accepts survives a
// round trip.
func FuzzParseJournal(f *testing.F) {
	j := &Journal{Version: journalVersion, Started: time.Unix(1764849600, 0).UTC(), Done: []string{MarkCheck, MarkTPM, MarkKeysMade},
		TPMFamily: 20, TPMIdentity: "tpm2-srk-name:" + "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
		KeysWhere: WhereCard, Fingerprint: "0123456789abcdef0123456789abcdef01234567", CardSerial: "00000042",
		Predicted: map[string]map[string]string{"sha256": {"7": "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"}}}
	good, _ := json.Marshal(j)
	f.Add(good)
	f.Add([]byte(`{"version":1,"done":["tpm","check"]}`))
	f.Add([]byte(`{"version":1,"done":["complete"],"predicted":{"sha1":{"07":"00"}}}`))
	f.Add([]byte(`{"version":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		j, err := ParseJournal(b)
		if err != nil {
			var je *JournalError
			if !errors.As(err, &je) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		again, err := json.Marshal(j)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseJournal(again); err != nil {
			t.Fatalf("a parsed journal does not parse again: %v\n%s", err, again)
		}
	})
}
