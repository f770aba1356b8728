package eventlog

import (
	"encoding/binary"
	"fmt"
	"math/rand"
	"testing"
	"unicode/utf16"
)

// The allocation-lean decoders print exactly what the fmt-based ones did:
// descriptions are stored in sealed records and compared by Diff, so a
// changed character would look like a changed measurement.
func TestLeanDecodersMatchFmt(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 20000; i++ {
		b := make([]byte, rng.Intn(40))
		rng.Read(b)
		if i%3 == 0 {
			// surrogate-rich input
			for j := 0; j+1 < len(b); j += 2 {
				binary.LittleEndian.PutUint16(b[j:], uint16(0xD700+rng.Intn(0x900)))
			}
		}
		if got, want := decodeUTF16(b), string(utf16.Decode(u16s(b))); got != want {
			t.Fatalf("decodeUTF16(%x) = %q, want %q", b, got, want)
		}
		g := make([]byte, 16)
		rng.Read(g)
		want := fmt.Sprintf("%08x-%04x-%04x-%x-%x", binary.LittleEndian.Uint32(g), binary.LittleEndian.Uint16(g[4:]),
			binary.LittleEndian.Uint16(g[6:]), g[8:10], g[10:16])
		if got := formatGUID(g); got != want {
			t.Fatalf("formatGUID(%x) = %s, want %s", g, got, want)
		}
	}
}

// summariseFmt is summarise as it was written with fmt, the reference.
func summariseFmt(d []byte) string {
	if printable(d) {
		s := cString(d)
		if len(s) > 200 {
			s = s[:200] + "..."
		}
		return fmt.Sprintf("%q", s)
	}
	if len(d) == 0 {
		return "(no data)"
	}
	if len(d) <= 8 {
		return fmt.Sprintf("%x", d)
	}
	return fmt.Sprintf("%d bytes", len(d))
}

func TestSummariseMatchesFmt(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	alphabet := []byte("abcXYZ 019\"\\\t\n\x00~{}")
	for i := 0; i < 20000; i++ {
		b := make([]byte, rng.Intn(260))
		for j := range b {
			if i%2 == 0 {
				b[j] = alphabet[rng.Intn(len(alphabet))]
			} else {
				b[j] = byte(rng.Intn(256))
			}
		}
		if got, want := summarise(b), summariseFmt(b); got != want {
			t.Fatalf("summarise(%q) = %s, want %s", b, got, want)
		}
	}
}

// ParseForReplay + Describe gives the same log as Parse.
func TestParseForReplayThenDescribe(t *testing.T) {
	for _, g := range goldenLogs {
		raw := readGolden(t, g.name+".bin")
		want, err := Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseForReplay(raw)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range got.Events {
			if e.Description != "" {
				t.Fatalf("%s: ParseForReplay described event %d", g.name, e.Index)
			}
		}
		got.Describe()
		if fmt.Sprint(got.Events) != fmt.Sprint(want.Events) {
			t.Fatalf("%s: ParseForReplay+Describe differs from Parse", g.name)
		}
	}
}
