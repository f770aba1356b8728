package luks

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

func FuzzReadInitrd(f *testing.F) {
	for _, s := range seedFiles(f, "*initrd.cpio*") {
		f.Add(s)
	}
	if a, err := BuildKeyCpio([]byte("key"), []CrypttabEntry{KeyEntry("root_crypt", testUUID)}, StyleBoth); err == nil {
		f.Add(a)
	}
	f.Fuzz(func(t *testing.T, untrusted []byte) {
		info, err := ReadInitrd(bytes.NewReader(untrusted))
		if err != nil {
			return
		}
		if len(info.Crypttab) > maxCrypttabEntries || len(info.Segments) > maxInitrdSegments {
			t.Fatalf("caps not enforced: %d entries, %d segments", len(info.Crypttab), len(info.Segments))
		}
	})
}

func FuzzParseCrypttab(f *testing.F) {
	f.Add([]byte("root_crypt UUID=" + testUUID + " none luks,discard\n"))
	f.Add([]byte("# comment\nswap /dev/sda3 /dev/urandom swap\nhome UUID=x\n"))
	f.Fuzz(func(t *testing.T, untrusted []byte) {
		entries, err := ParseCrypttab(untrusted)
		if err != nil {
			return
		}
		if len(entries) > maxCrypttabEntries {
			t.Fatalf("%d entries", len(entries))
		}
	})
}

// FuzzBuildKeyCpio: whatever BuildKeyCpio accepts, reading it back gives
// the key and the same crypttab entries (write -> parse round trip), and a
// crafted field can never add a line.
func FuzzBuildKeyCpio(f *testing.F) {
	f.Add([]byte("key"), "root_crypt", testUUID, "discard", uint8(0))
	f.Add([]byte{0, '\n', 0xff}, "luks-x", "abc", "", uint8(1))
	f.Fuzz(func(t *testing.T, key []byte, name, uuid, opt string, style uint8) {
		st := Style(style % 3)
		e := KeyEntry(name, uuid)
		if opt != "" {
			e.Options = []string{opt}
		}
		a, err := BuildKeyCpio(key, []CrypttabEntry{e}, st)
		if err != nil {
			return
		}
		info, err := ReadInitrd(bytes.NewReader(a))
		if err != nil {
			t.Fatalf("own archive unreadable: %v", err)
		}
		if len(info.Crypttab) != 1 {
			t.Fatalf("%d entries read back from one: %+v", len(info.Crypttab), info.Crypttab)
		}
		got := info.Crypttab[0]
		if got.Name != e.Name || got.Device != e.Device || got.KeyFile != KeyPath || !slices.Contains(got.Options, "luks") {
			t.Fatalf("round trip: wrote %+v, read %+v", e, got)
		}
		if opt != "" && !strings.HasPrefix(opt, "keyscript") && !slices.Contains(got.Options, opt) {
			name, _, _ := strings.Cut(opt, "=")
			switch name {
			case "luks", "keyscript", "keyfile-size", "keyfile-offset", "keyfile-timeout", "tries", "plain", "tcrypt", "bitlk", "none":
			default:
				t.Fatalf("option %q lost: %+v", opt, got)
			}
		}
	})
}
