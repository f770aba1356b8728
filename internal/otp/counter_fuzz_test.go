package otp

import (
	"bytes"
	"testing"
)

func FuzzParseCounterFile(f *testing.F) {
	f.Add(NewCounterRecord(rfc4226Secret, 0).Marshal())
	f.Add(NewCounterRecord(rfc4226Secret, 42).Marshal())
	f.Add(NewCounterRecord([]byte("x"), ^uint64(0)).Marshal())
	f.Add([]byte("42\n")) // Heads' /boot/kexec_hotp_counter
	f.Add([]byte("glint-hotp-counter v1\ncounter 1\nmac 00\n"))
	f.Fuzz(func(t *testing.T, untrusted []byte) {
		r, err := ParseCounterFile(untrusted)
		if err != nil {
			return
		}
		// One spelling per meaning: what parses is exactly what Marshal writes.
		if out := r.Marshal(); !bytes.Equal(out, untrusted) {
			t.Fatalf("parsed %q but Marshal gives %q", untrusted, out)
		}
	})
}
