package reown

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParseAnswers: whatever an answers file holds, the parser returns
// answers for known keys only or an *AnswersError, never panics.
func FuzzParseAnswers(f *testing.F) {
	f.Add([]byte(cardAnswers))
	f.Add([]byte(vendorAnswers))
	f.Add([]byte("confirm = reset everything # the phrase\ncard.user-pin = 12#456\n\n"))
	f.Add([]byte("keys = card\nkeys = file\n"))
	f.Add([]byte("bogus = 1\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAnswers(b)
		if err != nil {
			var ae *AnswersError
			if !errors.As(err, &ae) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		for k, v := range a.values {
			if !knownKey(k) {
				t.Fatalf("unknown key %q accepted", k)
			}
			if bytes.ContainsAny(v, "\n\r") {
				t.Fatalf("value %q holds a line break", v)
			}
		}
	})
}
