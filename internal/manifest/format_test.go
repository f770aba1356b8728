package manifest

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const sampleManifest = `glint-manifest 1
counter 0x0180474c 7
default debian-6.1.0-18
created 2026-03-01T10:00:00Z
file 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae 3 config
dir grub
file 4a44dc15364204a80fe80e9039455cc1608281820fe2b24f1e5233ade6af1dd5 5 grub/grub.cfg
file fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9 3 odd\x20name\x09\x5c\xff
link vmlinuz-6.1.0-18 vmlinuz
file 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae 3 vmlinuz-6.1.0-18
`

func TestParseSample(t *testing.T) {
	m, err := Parse([]byte(sampleManifest))
	if err != nil {
		t.Fatal(err)
	}
	if m.CounterIndex != 0x0180474c || m.Counter != 7 || m.Default != "debian-6.1.0-18" {
		t.Fatalf("header: %+v", m)
	}
	if !m.Created.Equal(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("created %v", m.Created)
	}
	if len(m.Entries) != 6 {
		t.Fatalf("%d entries", len(m.Entries))
	}
	if got := m.Entries[3].Path; got != "odd name\t\\\xff" {
		t.Fatalf("escaped path decoded to %q", got)
	}
	if e := m.Entries[4]; e.Kind != KindLink || e.Target != "vmlinuz-6.1.0-18" || e.Path != "vmlinuz" {
		t.Fatalf("link %+v", e)
	}
	if string(m.Marshal()) != sampleManifest {
		t.Fatalf("round trip differs:\n%s", m.Marshal())
	}
}

func TestParseRejects(t *testing.T) {
	base := sampleManifest
	cases := []struct {
		name, text, field string
		line              int
	}{
		{"empty", "", "size", 0},
		{"truncated", base[:len(base)-5], "end", 0},
		{"header only", "glint-manifest 1\n", "header", 1},
		{"wrong magic", strings.Replace(base, "glint-manifest", "heads-manifest", 1), "header", 1},
		{"future version", strings.Replace(base, "glint-manifest 1", "glint-manifest 3", 1), "version", 1},
		{"version 2 without its machine line", strings.Replace(base, "glint-manifest 1", "glint-manifest 2", 1), "machine", 3},
		{"uppercase index", strings.Replace(base, "0x0180474c", "0x0180474C", 1), "counter index", 2},
		{"leading zero counter", strings.Replace(base, "474c 7", "474c 07", 1), "counter value", 2},
		{"negative size", strings.Replace(base, " 5 grub", " -5 grub", 1), "size", 7},
		{"huge size", strings.Replace(base, " 5 grub", " 99999999999999999999 grub", 1), "size", 7},
		{"short hash", strings.Replace(base, "4a44dc15", "4a44dc1", 1), "sha256", 7},
		{"uppercase hash", strings.Replace(base, "4a44dc15", "4A44DC15", 1), "sha256", 7},
		{"unsorted", strings.Replace(base, "config\n", "zzz\n", 1), "path", 6},
		{"duplicate", strings.Replace(base, "dir grub\n", "dir config\n", 1), "path", 6},
		{"dotdot", strings.Replace(base, "grub/grub.cfg", "grub/../x", 1), "path", 7},
		{"absolute", strings.Replace(base, " config\n", " /config\n", 1), "path", 5},
		{"missing parent", strings.Replace(base, "dir grub\n", "", 1), "path", 6},
		{"escaped printable", strings.Replace(base, "odd\\x20", "\\x6fdd\\x20", 1), "path", 8},
		{"uppercase escape", strings.Replace(base, "\\x5c", "\\x5C", 1), "path", 8},
		{"raw tab", strings.Replace(base, "\\x09", "\t", 1), "path", 8},
		{"bad escape", strings.Replace(base, "\\xff", "\\x", 1), "path", 8},
		{"unknown line", base + "device sda\n", "entry", 11},
		{"local time", strings.Replace(base, "10:00:00Z", "10:00:00+01:00", 1), "created", 4},
		{"two defaults", strings.Replace(base, "default debian-6.1.0-18\n", "default a\ndefault b\n", 1), "created", 4},
		{"double space", strings.Replace(base, " 3 config", "  3 config", 1), "file", 5},
		{"CRLF", strings.ReplaceAll(base, "\n", "\r\n"), "version", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.text))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("want *ParseError, got %v", err)
			}
			if pe.Field != c.field || pe.Line != c.line {
				t.Fatalf("got line %d field %q (%v), want line %d field %q", pe.Line, pe.Field, err, c.line, c.field)
			}
		})
	}
}

func TestParseCaps(t *testing.T) {
	long := "glint-manifest 1\ncounter 0x0180474c 1\ncreated 2026-03-01T10:00:00Z\nfile " + strings.Repeat("a", MaxLineLen) + "\n"
	_, err := Parse([]byte(long))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("long line: %v", err)
	}
	p := strings.Repeat("a", MaxPathLen+1)
	_, err = Parse([]byte("glint-manifest 1\ncounter 0x0180474c 1\ncreated 2026-03-01T10:00:00Z\ndir " + p + "\n"))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("long path: %v", err)
	}
	var b strings.Builder
	b.WriteString("glint-manifest 1\ncounter 0x0180474c 1\ncreated 2026-03-01T10:00:00Z\n")
	for i := 0; i <= MaxEntries; i++ {
		b.WriteString("dir d")
		b.WriteString(strings.Repeat("0", 6-len(itoa(i))) + itoa(i))
		b.WriteByte('\n')
	}
	_, err = Parse([]byte(b.String()))
	var pe *ParseError
	if !errors.Is(err, ErrTooLarge) || !errors.As(err, &pe) || pe.Line != MaxEntries+4 {
		t.Fatalf("too many entries: %v", err)
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var s []byte
	for ; i > 0; i /= 10 {
		s = append([]byte{byte('0' + i%10)}, s...)
	}
	return string(s)
}

func TestEscapeRoundTrip(t *testing.T) {
	for _, s := range []string{"plain", "a b", "\\", "\x00\x01\x7f\x80\xff", "ünïcode", "x\\x41"} {
		e := escape(s)
		if strings.ContainsAny(e, " \t\n") {
			t.Fatalf("escape(%q) = %q has whitespace", s, e)
		}
		got, err := unescape(e, MaxPathLen)
		if err != nil || got != s {
			t.Fatalf("unescape(escape(%q)) = %q, %v", s, got, err)
		}
	}
}
