package manifest

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse: no panic, typed errors, and parse(write(parse(x))) == parse(x).
func FuzzParse(f *testing.F) {
	f.Add([]byte(sampleManifest))
	f.Add([]byte("glint-manifest 1\ncounter 0x0180474c 0\ncreated 2026-03-01T10:00:00Z\n"))
	f.Add([]byte("glint-manifest 1\ncounter 0xffffffff 18446744073709551615\ndefault a\\x20b\ncreated 1970-01-01T00:00:00Z\ndir a\ndir a/b\nlink ../x a/b/c\n"))
	f.Add([]byte("glint-manifest 1\n"))
	f.Add([]byte("glint-manifest 2\ncounter 0x0180474c 7\nmachine tpm2-srk-name:" + strings.Repeat("ab", 32) + "\ndefault d\ncreated 2026-03-01T10:00:00Z\ndir efi\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		out := m.Marshal()
		if !bytes.Equal(out, data) {
			t.Fatalf("accepted non-canonical input:\n%q\nmarshals to\n%q", data, out)
		}
		m2, err := Parse(out)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip differs")
		}
	})
}
