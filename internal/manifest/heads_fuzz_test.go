package manifest

import (
	"errors"
	"strings"
	"testing"
)

func FuzzParseHeadsHashes(f *testing.F) {
	h := strings.Repeat("0f", 32)
	f.Add([]byte(h + "  ./vmlinuz-6.1.0-18-amd64\n" + h + "  ./grub/grub.cfg\n"))
	f.Add([]byte("\\" + h + "  ./a\\nb\n"))
	f.Add([]byte(h + " *./bin\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := ParseHeadsHashes(data)
		if err != nil {
			var pe *HeadsParseError
			if !errors.As(err, &pe) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		for _, e := range es {
			if ValidPath(e.Path) != nil {
				t.Fatalf("invalid path accepted: %q", e.Path)
			}
		}
	})
}

func FuzzParseHeadsTree(f *testing.F) {
	f.Add([]byte("./\x00./grub\x00./grub/grub.cfg\x00./vmlinuz\x00"))
	f.Add([]byte("./\x00"))
	f.Add([]byte("./a"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, err := ParseHeadsTree(data)
		if err != nil {
			var pe *HeadsParseError
			if !errors.As(err, &pe) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		for _, p := range ps {
			if ValidPath(p) != nil {
				t.Fatalf("invalid path accepted: %q", p)
			}
		}
	})
}

func FuzzParseHeadsRollback(f *testing.F) {
	f.Add([]byte(strings.Repeat("ab", 32) + "  /tmp/counter-1a2b3c\n"))
	f.Add([]byte(strings.Repeat("ab", 32) + "  /tmp/counter-\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, _, err := parseHeadsRollback(data); err != nil {
			var pe *HeadsParseError
			if !errors.As(err, &pe) {
				t.Fatalf("untyped error: %v", err)
			}
		}
	})
}
