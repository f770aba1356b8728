package eventlog

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/tpm"
)

// Every cut of a real log must fail with a *ParseError at or before the cut
// (or parse as a shorter log when the cut falls exactly between events).
func TestTruncatedLogs(t *testing.T) {
	for _, g := range goldenLogs {
		raw := readGolden(t, g.name+".bin")
		full, err := ParseTCG(raw)
		if err != nil {
			t.Fatal(err)
		}
		boundaries := map[int]bool{}
		for _, e := range full.Events {
			boundaries[int(e.Offset)] = true
		}
		for cut := 1; cut < len(raw); cut++ {
			l, err := ParseTCG(raw[:cut])
			if boundaries[cut] {
				if err != nil {
					t.Fatalf("%s cut at event boundary %d: %v", g.name, cut, err)
				}
				continue
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("%s cut at %d: want *ParseError, got %v (log %v)", g.name, cut, err, l != nil)
			}
			if pe.Offset > int64(cut) || !errors.Is(err, ErrTruncated) {
				t.Fatalf("%s cut at %d: error %v", g.name, cut, err)
			}
		}
	}
}

func TestMalformedLogs(t *testing.T) {
	agile := readGolden(t, "ovmf-tpm2.bin")
	second := int(mustParse(t, agile).Events[1].Offset)
	mut := func(f func(b []byte)) []byte {
		b := append([]byte{}, agile...)
		f(b)
		return b
	}
	for _, tc := range []struct {
		name   string
		raw    []byte
		field  string
		offset int
		is     error
	}{
		{"empty", nil, "log", 0, ErrTruncated},
		{"huge event size", mut(func(b []byte) { binary.LittleEndian.PutUint32(b[28:], 0xFFFFFFF0) }), "TCG_PCR_EVENT.event", 32, ErrTooLarge},
		{"too many algorithms", mut(func(b []byte) { binary.LittleEndian.PutUint32(b[32+24:], 1000) }), "TCG_EfiSpecIdEvent.numberOfAlgorithms", 56, ErrTooLarge},
		{"wrong sha256 size", mut(func(b []byte) { binary.LittleEndian.PutUint16(b[32+28+6:], 20) }), "TCG_EfiSpecIdEvent.digestSizes.digestSize", 32 + 28 + 4, ErrFormat},
		{"digest count over banks", mut(func(b []byte) { binary.LittleEndian.PutUint32(b[second+8:], 5) }), "TCG_PCR_EVENT2.digests.count", second + 8, ErrTooLarge},
		{"unknown digest alg", mut(func(b []byte) { binary.LittleEndian.PutUint16(b[second+12:], 0x99) }), "TCG_PCR_EVENT2.digests.hashAlg", second + 12, ErrFormat},
		{"pcr out of range", mut(func(b []byte) { binary.LittleEndian.PutUint32(b[second:], 4000) }), "TCG_PCR_EVENT2.pcrIndex", second, ErrFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTCG(tc.raw)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("want *ParseError, got %v", err)
			}
			if pe.Field != tc.field || pe.Offset != int64(tc.offset) || !errors.Is(err, tc.is) {
				t.Fatalf("got field %q offset %d (%v), want %q at %d (%v)", pe.Field, pe.Offset, err, tc.field, tc.offset, tc.is)
			}
			if !strings.Contains(err.Error(), "at byte") {
				t.Errorf("message lacks the offset: %v", err)
			}
		})
	}
}

func TestMalformedTCPA(t *testing.T) {
	_, raw := syntheticTCPALog(t, tpm.SHA256)
	for _, tc := range []struct {
		name string
		f    func(b []byte) []byte
		is   error
	}{
		{"num over max", func(b []byte) []byte { binary.LittleEndian.PutUint16(b[2:], 51); return b }, ErrFormat},
		{"num past end", func(b []byte) []byte { return b[:4+3*tcpaEntrySize] }, ErrTruncated},
		{"digest length", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[4+78:], 65); return b }, ErrFormat},
		{"digest type", func(b []byte) []byte { copy(b[4+4:], "MD5\x00\x00\x00"); return b }, ErrFormat},
		{"header only", func(b []byte) []byte { return b[:3] }, ErrTruncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTCPA(tc.f(append([]byte{}, raw...)))
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, tc.is) {
				t.Fatalf("want *ParseError %v, got %v", tc.is, err)
			}
		})
	}
}

func mustParse(t testing.TB, raw []byte) *Log {
	t.Helper()
	l, err := ParseTCG(raw)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Replay errors name the PCR and, where the log shows it, the event.
func TestReplayErrorExplains(t *testing.T) {
	raw := readGolden(t, "ovmf-tpm2.bin")
	live := firmwarePCRs(readPCRs(t, "ovmf-tpm2")[tpm.SHA256])

	t.Run("edited event data", func(t *testing.T) {
		l := mustParse(t, raw)
		// Event 14 is EV_EFI_ACTION in PCR 4: its digest is the hash of its
		// text, so editing the text and the digest with it is caught by
		// replay, editing only the text by the data check.
		l.Events[14].Data = []byte("Calling EFI Application from Boot Optioz")
		l.Events[14].Digests[tpm.SHA256][0] ^= 1
		err := l.Verify(tpm.SHA256, live)
		var re *ReplayError
		if !errors.As(err, &re) || len(re.Mismatches) != 1 || re.Mismatches[0].PCR != 4 {
			t.Fatalf("want PCR 4 alone, got %v", err)
		}
		if re.Mismatches[0].Event == nil || re.Mismatches[0].Event.Index != 14 || !strings.Contains(err.Error(), "the log was altered") {
			t.Fatalf("explanation: %v", err)
		}
	})
	t.Run("event the TPM never saw", func(t *testing.T) {
		l := mustParse(t, raw)
		extra := l.Events[14]
		extra.Index = 99
		extra.Type = EvIPL // not a type whose digest is the hash of its data
		extra.Description = "smuggled"
		extra.Digests = map[tpm.Alg][]byte{tpm.SHA256: make([]byte, 32)}
		l.Events = append(l.Events, extra)
		err := l.Verify(tpm.SHA256, live)
		var re *ReplayError
		if !errors.As(err, &re) || len(re.Mismatches) != 1 || re.Mismatches[0].Event == nil || re.Mismatches[0].Event.Index != 99 {
			t.Fatalf("want event 99 named, got %v", err)
		}
	})
	t.Run("missing bank", func(t *testing.T) {
		l := mustParse(t, raw)
		delete(l.Events[17].Digests, tpm.SHA256) // PCR 2 separator
		err := l.Verify(tpm.SHA256, live)
		if err == nil || !strings.Contains(err.Error(), "has no sha256 digest") {
			t.Fatalf("got %v", err)
		}
		if _, ok := l.Replay(tpm.SHA256)[2]; ok {
			t.Fatal("Replay gave a PCR 2 value it cannot know")
		}
	})
	t.Run("startup locality", func(t *testing.T) {
		l := &Log{Events: []Event{{Type: EvNoAction, PCR: 0, Data: append([]byte("StartupLocality\x00"), 3)}}}
		want := make([]byte, 32)
		want[31] = 3
		if err := l.Verify(tpm.SHA256, map[int][]byte{0: want}); err != nil {
			t.Fatal(err)
		}
	})
}
