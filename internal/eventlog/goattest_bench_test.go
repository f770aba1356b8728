package eventlog

import (
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/google/go-attestation/attest"

	"github.com/glint-boot/glint/internal/tpm"
)

// Parse + replay side by side with go-attestation (the field's reference
// log verifier) on the same bytes, in one run (bench/eventlog-goattest.sh):
// glint's ParseTCG + Verify against go-attestation's ParseEventLog +
// Verify, both checking the same PCR values. go-attestation is a test
// dependency only; it is not in glint's binary.
//
// The logs: the OVMF log recorded from the emulated laptop; coreboot's
// measurements of the emulated laptop re-encoded in the TCG crypto-agile
// format newer coreboot writes (go-attestation cannot read coreboot 4.15's
// own TCPA table); and a 2,000-event crypto-agile log with sha1 and sha256
// digests shaped like a big UEFI machine's (drivers, variables, option
// ROMs, separators).

type benchLog struct {
	name string
	raw  []byte
	bank tpm.Alg
	pcrs map[int][]byte
}

func benchLogs(b testing.TB) []benchLog {
	ovmf := readGolden(b, "ovmf-tpm2.bin")
	ovmfPCRs := firmwarePCRs(readPCRs(b, "ovmf-tpm2")[tpm.SHA256])
	cb := corebootTCG(b)
	big := syntheticLog(2000)
	out := []benchLog{{"ovmf", ovmf, tpm.SHA256, ovmfPCRs}}
	for _, l := range []struct {
		name string
		raw  []byte
	}{{"coreboot", cb}, {"2000-events", big}} {
		pl := mustParse(b, l.raw)
		pcrs := pl.Replay(tpm.SHA256)
		for i := 0; i < 8; i++ {
			if _, ok := pcrs[i]; !ok {
				pcrs[i] = make([]byte, 32)
			}
		}
		out = append(out, benchLog{l.name, l.raw, tpm.SHA256, pcrs})
	}
	return out
}

// agileLog writes a crypto-agile log with the given banks.
type agileLog struct {
	b     []byte
	banks []tpm.Alg
}

func newAgileLog(banks ...tpm.Alg) *agileLog {
	var d []byte
	d = append(d, "Spec ID Event03\x00"...)
	d = binary.LittleEndian.AppendUint32(d, 0)
	d = append(d, 0, 2, 0, 2)
	d = binary.LittleEndian.AppendUint32(d, uint32(len(banks)))
	for _, a := range banks {
		d = binary.LittleEndian.AppendUint16(d, uint16(a))
		d = binary.LittleEndian.AppendUint16(d, uint16(a.Size()))
	}
	d = append(d, 0)
	var e []byte
	e = binary.LittleEndian.AppendUint32(e, 0)
	e = binary.LittleEndian.AppendUint32(e, uint32(EvNoAction))
	e = append(e, make([]byte, 20)...)
	e = binary.LittleEndian.AppendUint32(e, uint32(len(d)))
	return &agileLog{b: append(e, d...), banks: banks}
}

// add logs an event whose digests are given per bank (or hash data).
func (l *agileLog) add(pcr int, typ EventType, data []byte, digests map[tpm.Alg][]byte) {
	l.b = binary.LittleEndian.AppendUint32(l.b, uint32(pcr))
	l.b = binary.LittleEndian.AppendUint32(l.b, uint32(typ))
	l.b = binary.LittleEndian.AppendUint32(l.b, uint32(len(l.banks)))
	for _, a := range l.banks {
		l.b = binary.LittleEndian.AppendUint16(l.b, uint16(a))
		d, ok := digests[a]
		if !ok {
			hf, _ := a.Hash()
			h := hf.New()
			h.Write(data)
			d = h.Sum(nil)
		}
		l.b = append(l.b, d...)
	}
	l.b = binary.LittleEndian.AppendUint32(l.b, uint32(len(data)))
	l.b = append(l.b, data...)
}

// corebootTCG re-encodes the emulated laptop's coreboot measurements.
func corebootTCG(b testing.TB) []byte {
	m := loadSparseMemory(b, "testdata/coreboot-tpm2.mem")
	cb, err := ReadCorebootLog(m)
	if err != nil {
		b.Fatal(err)
	}
	l := newAgileLog(tpm.SHA256)
	for _, e := range cb.Events {
		l.add(e.PCR, EvPostCode, []byte(e.Description), e.Digests)
	}
	return l.b
}

// syntheticLog is n events over PCRs 0-7, closed by separators.
func syntheticLog(n int) []byte {
	l := newAgileLog(tpm.SHA1, tpm.SHA256)
	types := []EventType{EvEFIBootServicesDriver, EvEFIPlatformFirmwareBlob, EvPostCode, EvEFIVariableBoot, EvEFIBootServicesApp, EvEFIHandoffTables}
	for i := 0; i < n-9; i++ {
		data := []byte(fmt.Sprintf("synthetic measurement %06d: option ROM / driver / variable content, %s", i, "padding to a realistic size of about a hundred bytes"))
		s1 := sha1.Sum(data)
		s256 := sha256.Sum256(data)
		l.add(i%8, types[i%len(types)], data[:48], map[tpm.Alg][]byte{tpm.SHA1: s1[:], tpm.SHA256: s256[:]})
	}
	for pcr := 0; pcr < 8; pcr++ {
		l.add(pcr, EvSeparator, []byte{0, 0, 0, 0}, nil)
	}
	return l.b
}

func gaPCRs(bank tpm.Alg, pcrs map[int][]byte) []attest.PCR {
	h := crypto.SHA256
	if bank == tpm.SHA1 {
		h = crypto.SHA1
	}
	var out []attest.PCR
	for i, v := range pcrs {
		out = append(out, attest.PCR{Index: i, Digest: v, DigestAlg: h})
	}
	return out
}

// TestBenchLogsVerify: both verifiers accept every benchmark log against
// its PCRs, so the benchmark compares equal work.
func TestBenchLogsVerify(t *testing.T) {
	for _, l := range benchLogs(t) {
		t.Run(l.name, func(t *testing.T) {
			gl := mustParse(t, l.raw)
			if err := gl.Verify(l.bank, l.pcrs); err != nil {
				t.Fatalf("glint: %v", err)
			}
			el, err := attest.ParseEventLog(l.raw)
			if err != nil {
				t.Fatalf("go-attestation parse: %v", err)
			}
			if _, err := el.Verify(gaPCRs(l.bank, l.pcrs)); err != nil {
				t.Fatalf("go-attestation verify: %v", err)
			}
		})
	}
}

func BenchmarkParseReplayVsGoAttestation(b *testing.B) {
	for _, l := range benchLogs(b) {
		n := len(mustParse(b, l.raw).Events)
		// What the attestation server does for every report: parse without
		// describing events, replay, compare.
		b.Run(l.name+"/glint", func(b *testing.B) {
			b.SetBytes(int64(len(l.raw)))
			b.ReportAllocs()
			for b.Loop() {
				pl, err := ParseForReplay(l.raw)
				if err != nil {
					b.Fatal(err)
				}
				if err := pl.Verify(l.bank, l.pcrs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n), "events")
		})
		// The same with every event decoded into text for people (glint
		// eventlog show, the boot menu); go-attestation decodes nothing.
		b.Run(l.name+"/glint-described", func(b *testing.B) {
			b.SetBytes(int64(len(l.raw)))
			b.ReportAllocs()
			for b.Loop() {
				pl, err := ParseTCG(l.raw)
				if err != nil {
					b.Fatal(err)
				}
				if err := pl.Verify(l.bank, l.pcrs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n), "events")
		})
		pcrs := gaPCRs(l.bank, l.pcrs)
		b.Run(l.name+"/go-attestation", func(b *testing.B) {
			b.SetBytes(int64(len(l.raw)))
			b.ReportAllocs()
			for b.Loop() {
				el, err := attest.ParseEventLog(l.raw)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := el.Verify(pcrs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n), "events")
		})
	}
}
