package eventlog

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/glint-boot/glint/internal/tpm"
)

func seedGolden(f *testing.F) {
	for _, g := range goldenLogs {
		raw := readGolden(f, g.name+".bin")
		f.Add(raw)
		f.Add(raw[:len(raw)/2])
	}
	win, _ := windowsStyleLog(f)
	f.Add(win)
}

// FuzzParseTCG covers both TCG formats (the first event picks the format).
// Besides not panicking, a successful parse must replay in every bank it
// declares, and every event must lie inside the input.
func FuzzParseTCG(f *testing.F) {
	seedGolden(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		l, err := ParseTCG(raw)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Offset < 0 || pe.Offset > int64(len(raw)) {
				t.Fatalf("error without a sane offset: %v", err)
			}
			return
		}
		for _, e := range l.Events {
			if e.Offset < 0 || e.Offset >= int64(len(raw)) || len(e.Data) > len(raw) {
				t.Fatalf("event %d outside the input", e.Index)
			}
		}
		for _, b := range l.Algs {
			l.Replay(b)
		}
		_ = Diff(l, l)
	})
}

// FuzzParseCryptoAgile keeps the Spec ID event of the real OVMF log and
// fuzzes what follows, where the crypto-agile parser does its work.
func FuzzParseCryptoAgile(f *testing.F) {
	raw := readGolden(f, "ovmf-tpm2.bin")
	spec := mustParse(f, raw).Events[1].Offset
	f.Add(raw[spec:])
	f.Add(readGolden(f, "seabios-tpm2.bin")[spec:])
	f.Fuzz(func(t *testing.T, tail []byte) {
		in := append(append([]byte{}, raw[:spec]...), tail...)
		l, err := ParseTCG(in)
		if err != nil {
			return
		}
		if l.Format != FormatCryptoAgile {
			t.Fatalf("format %v", l.Format)
		}
		for _, e := range l.Events[1:] {
			for alg, d := range e.Digests {
				if len(d) != alg.Size() {
					t.Fatalf("%s digest of %d bytes", alg, len(d))
				}
			}
		}
	})
}

// FuzzParseTCPA round-trips: parse(marshal(parse(x))) == parse(x).
func FuzzParseTCPA(f *testing.F) {
	for _, alg := range []tpm.Alg{tpm.SHA1, tpm.SHA256} {
		_, raw := syntheticTCPALog(f, alg)
		f.Add(raw)
	}
	if mems, _ := filepath.Glob("testdata/coreboot-*.mem"); len(mems) > 0 {
		for _, m := range mems {
			if l, err := ReadCorebootLog(loadSparseMemory(f, m)); err == nil {
				if raw, err := MarshalTCPA(l, 50); err == nil {
					f.Add(raw)
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		l, err := ParseTCPA(raw)
		if err != nil {
			return
		}
		out, err := MarshalTCPA(l, len(l.Events))
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseTCPA(out)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if len(again.Events) != len(l.Events) {
			t.Fatal("round trip lost events")
		}
		for i := range l.Events {
			a, b := l.Events[i], again.Events[i]
			if a.PCR != b.PCR || a.Description != b.Description {
				t.Fatalf("event %d: %+v vs %+v", i, a, b)
			}
			for alg, d := range a.Digests {
				if !bytes.Equal(d, b.Digests[alg]) {
					t.Fatalf("event %d digest changed", i)
				}
			}
		}
	})
}

// FuzzCorebootTables walks fuzzed low memory + cbmem. The memory image is
// the fuzz input mapped at address 0.
func FuzzCorebootTables(f *testing.F) {
	_, raw := syntheticTCPALog(f, tpm.SHA256)
	f.Add(syntheticMemory(f, CBMEMIDTCPALog, raw, true))
	f.Add(syntheticMemory(f, CBMEMIDTPM2TCGLog, readGolden(f, "seabios-tpm2.bin"), false))
	if b, err := os.ReadFile("testdata/coreboot-tables.seed"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, mem []byte) {
		_, _ = ReadCorebootLog(bytes.NewReader(mem))
	})
}

func FuzzParseRecords(f *testing.F) {
	for _, g := range goldenLogs {
		b, _ := MarshalRecords(mustParse(f, readGolden(f, g.name+".bin")).Records(tpm.SHA1))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := ParseRecords(b)
		if err != nil {
			return
		}
		l, err := FromRecords(recs)
		if err != nil {
			t.Fatalf("parsed records do not rebuild a log: %v", err)
		}
		if len(l.Algs) == 0 {
			return
		}
		out, _ := MarshalRecords(l.Records(l.Algs[0]))
		if _, err := ParseRecords(out); err != nil {
			t.Fatalf("re-parse: %v", err)
		}
	})
}
