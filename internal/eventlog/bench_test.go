package eventlog

import (
	"testing"

	"github.com/glint-boot/glint/internal/tpm"
)

// BenchmarkParseReplay parses the largest real log (OVMF, TPM 2.0, four
// banks) and replays its SHA-256 bank. Reported per log and as events/s.
func BenchmarkParseReplay(b *testing.B) {
	raw := readGolden(b, "ovmf-tpm2.bin")
	n := len(mustParse(b, raw).Events)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		l, err := ParseTCG(raw)
		if err != nil {
			b.Fatal(err)
		}
		l.Replay(tpm.SHA256)
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkParse(b *testing.B) {
	raw := readGolden(b, "ovmf-tpm2.bin")
	n := len(mustParse(b, raw).Events)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseTCG(raw); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkReplay(b *testing.B) {
	l := mustParse(b, readGolden(b, "ovmf-tpm2.bin"))
	for b.Loop() {
		l.Replay(tpm.SHA256)
	}
	b.ReportMetric(float64(len(l.Events)*b.N)/b.Elapsed().Seconds(), "events/s")
}
