package manifest

import (
	"errors"
	"reflect"
	"testing"
)

const sampleNote = `glint-expected-update 1
update 2026-03-01T10:00:00Z debian-kernel 6.1.0-18-amd64
file vmlinuz-6.1.0-18-amd64
file initrd.img-6.1.0-18-amd64
update 2026-03-02T08:30:00Z apt grub-pc
file grub/grub.cfg
`

// FuzzParseExpectedNote: no panic, typed errors, round trip.
func FuzzParseExpectedNote(f *testing.F) {
	f.Add([]byte(sampleNote))
	f.Add([]byte("glint-expected-update 1\n"))
	f.Add([]byte("glint-expected-update 1\nfile x\n"))
	f.Add([]byte("glint-expected-update 1\nupdate 2026-03-01T10:00:00Z a\\x20b c\nfile a/\\xff\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := ParseExpectedNote(data)
		if err != nil {
			var pe *NoteParseError
			if !errors.As(err, &pe) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		n2, err := ParseExpectedNote(n.Marshal())
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if !reflect.DeepEqual(n, n2) {
			t.Fatalf("round trip differs:\n%+v\n%+v", n, n2)
		}
	})
}
