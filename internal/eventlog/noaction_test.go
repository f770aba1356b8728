package eventlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/tpm"
)

// Windows writes EV_NO_ACTION records with pcrIndex 0xFFFFFFFF into its TCG
// logs; a real TPM 1.2 log carrying them was refused whole ("PCR
// 4294967295"). No such log from a real machine may be committed here (the
// public samples found are other projects' data), so windowsStyleLog builds
// an equivalent: the real SeaBIOS TPM 1.2 log recorded from QEMU + swtpm
// (testdata/seabios-tpm12.bin), with Windows-style EV_NO_ACTION records at
// index 0xFFFFFFFF inserted after the first event, between the BIOS events
// and at the end, as Windows' boot manager appends them.

// sha1Event encodes one TCG_PCR_EVENT (PFP 1.05, 10.2.1, Table 4).
func sha1Event(pcr, typ uint32, digest [20]byte, data []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, pcr)
	b = binary.LittleEndian.AppendUint32(b, typ)
	b = append(b, digest[:]...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

// windowsNoAction is the kind of informational record Windows logs at
// index 0xFFFFFFFF: zero digest, tagged data that was never extended.
func windowsNoAction(text string) []byte {
	return sha1Event(noActionPCRIndex, uint32(EvNoAction), [20]byte{}, []byte(text))
}

// windowsStyleLog returns the modified log and how many records it inserted.
func windowsStyleLog(t testing.TB) ([]byte, int) {
	t.Helper()
	raw := readGolden(t, "seabios-tpm12.bin")
	l := mustParse(t, raw)
	if len(l.Events) < 4 {
		t.Fatalf("the SeaBIOS log has %d events", len(l.Events))
	}
	cut1, cut2 := int(l.Events[1].Offset), int(l.Events[len(l.Events)/2].Offset)
	end := len(raw)
	for end > 0 && raw[end-1] == 0 { // zero padding after the last event
		end--
	}
	// The last event's data might end in zero bytes: keep whole events.
	last := l.Events[len(l.Events)-1]
	if min := int(last.Offset) + 32 + len(last.Data); end < min {
		end = min
	}
	var out []byte
	out = append(out, raw[:cut1]...)
	out = append(out, windowsNoAction("WBCL: SIPA log version 1\x00")...)
	out = append(out, raw[cut1:cut2]...)
	out = append(out, windowsNoAction("WBCL: SIPA boot counter\x00")...)
	out = append(out, raw[cut2:end]...)
	out = append(out, windowsNoAction("WBCL: SIPA transfer control\x00")...)
	return out, 3
}

func TestWindowsNoActionAtIndexMinusOneParses(t *testing.T) {
	raw, inserted := windowsStyleLog(t)
	orig := mustParse(t, readGolden(t, "seabios-tpm12.bin"))
	l, err := ParseTCG(raw)
	if err != nil {
		t.Fatalf("a TPM 1.2 log with EV_NO_ACTION at index 0xFFFFFFFF is refused: %v", err)
	}
	if l.Format != FormatSHA1 {
		t.Fatalf("format %v, want the SHA-1 format", l.Format)
	}
	if len(l.Events) != len(orig.Events)+inserted {
		t.Fatalf("%d events, want %d", len(l.Events), len(orig.Events)+inserted)
	}
	n := 0
	for _, e := range l.Events {
		if e.PCR == NoPCR {
			n++
			if e.Extended() || e.Type != EvNoAction || !strings.Contains(e.Description, "WBCL") {
				t.Errorf("event %d: %s %q extended=%v", e.Index, e.Type, e.Description, e.Extended())
			}
		}
	}
	if n != inserted {
		t.Fatalf("%d events at NoPCR, want %d", n, inserted)
	}
	// Nothing was extended by them: the log still reproduces what the
	// guest's TPM held, and no PCR appears that the original lacks.
	live := readPCRs(t, "seabios-tpm12")[tpm.SHA1]
	if err := l.Verify(tpm.SHA1, firmwarePCRs(live)); err != nil {
		t.Fatal(err)
	}
	got, want := l.Replay(tpm.SHA1), orig.Replay(tpm.SHA1)
	if len(got) != len(want) {
		t.Fatalf("replay covers %d PCRs, the original log %d", len(got), len(want))
	}
	for p, v := range want {
		if !bytes.Equal(got[p], v) {
			t.Errorf("PCR %d: %x, want %x", p, got[p], v)
		}
	}
	if recs := l.Records(tpm.SHA1); len(recs) != len(orig.Records(tpm.SHA1)) {
		t.Errorf("records include informational events: %d, want %d", len(recs), len(orig.Records(tpm.SHA1)))
	}
	if d := Diff(orig, l); len(d) != 0 {
		t.Errorf("informational records show as changes: %v", d)
	}
}

// TestIndexMinusOneOnlyForNoAction: the caps stay for everything that is
// extended; index 0xFFFFFFFF on a measurement, or an out-of-range index on
// EV_NO_ACTION other than 0xFFFFFFFF, is still a malformed log.
func TestIndexMinusOneOnlyForNoAction(t *testing.T) {
	raw := readGolden(t, "seabios-tpm12.bin")
	first := int(mustParse(t, raw).Events[1].Offset)
	for _, c := range []struct {
		name     string
		pcr, typ uint32
	}{
		{"EV_ACTION at 0xFFFFFFFF", noActionPCRIndex, uint32(EvAction)},
		{"EV_SEPARATOR at 0xFFFFFFFF", noActionPCRIndex, uint32(EvSeparator)},
		{"EV_NO_ACTION at 32", 32, uint32(EvNoAction)},
		{"EV_NO_ACTION at 0xFFFFFFFE", 0xFFFFFFFE, uint32(EvNoAction)},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := append(append(append([]byte{}, raw[:first]...), sha1Event(c.pcr, c.typ, [20]byte{}, []byte("x"))...), raw[first:]...)
			_, err := ParseTCG(in)
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrFormat) || pe.Offset != int64(first) || pe.Field != "TCG_PCR_EVENT.pcrIndex" {
				t.Fatalf("want a ParseError at byte %d naming pcrIndex, got %v", first, err)
			}
		})
	}
}

// TestWindowsNoActionCryptoAgile: the same records in a TPM 2.0 log.
func TestWindowsNoActionCryptoAgile(t *testing.T) {
	raw := readGolden(t, "ovmf-tpm2.bin")
	orig := mustParse(t, raw)
	spec := parseSpecIDFrom(t, orig)
	// TCG_PCR_EVENT2 with a zero digest in every bank (PFP 1.05, 10.2.2).
	ev := binary.LittleEndian.AppendUint32(nil, noActionPCRIndex)
	ev = binary.LittleEndian.AppendUint32(ev, uint32(EvNoAction))
	ev = binary.LittleEndian.AppendUint32(ev, uint32(len(spec.Algs)))
	for _, a := range spec.Algs {
		ev = binary.LittleEndian.AppendUint16(ev, uint16(a))
		ev = append(ev, make([]byte, spec.Sizes[a])...)
	}
	data := []byte("WBCL: SIPA log version 1\x00")
	ev = binary.LittleEndian.AppendUint32(ev, uint32(len(data)))
	ev = append(ev, data...)
	cut := int(orig.Events[2].Offset)
	in := append(append(append([]byte{}, raw[:cut]...), ev...), raw[cut:]...)
	l, err := ParseTCG(in)
	if err != nil {
		t.Fatal(err)
	}
	if e := l.Events[2]; e.PCR != NoPCR || e.Extended() {
		t.Fatalf("event 2: PCR %d extended=%v", e.PCR, e.Extended())
	}
	live := readPCRs(t, "ovmf-tpm2")
	for _, bank := range l.Algs {
		if err := l.Verify(bank, firmwarePCRs(live[bank])); err != nil {
			t.Errorf("%s: %v", bank.String(), err)
		}
	}
}

func parseSpecIDFrom(t testing.TB, l *Log) *SpecID {
	t.Helper()
	s, err := parseSpecID(l.Events[0].Data, 0)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
