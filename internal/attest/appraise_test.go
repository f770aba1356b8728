package attest

import (
	"bytes"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/attest/wire"
	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/tpm"
)

// readPCRs reads "bank index hex" lines recorded from the TPM that
// produced a testdata log.
func readPCRs(t testing.TB, name string, bank string, upTo int) map[int][]byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int][]byte{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != bank {
			continue
		}
		i, _ := strconv.Atoi(f[1])
		if i > upTo {
			continue
		}
		v, err := hex.DecodeString(f[2])
		if err != nil {
			t.Fatal(err)
		}
		out[i] = v
	}
	return out
}

func readLog(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// goldenFrom learns a golden set from a log and PCR values, as an
// administrator's "approve this machine's measurements" does.
func goldenFrom(t testing.TB, raw []byte, bank tpm.Alg, pcrs map[int][]byte) Golden {
	t.Helper()
	l, err := eventlog.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return Golden{ID: 1, Model: "QEMU q35", Label: "OVMF", Bank: bank, PCRs: pcrs, Events: l.Records(bank)}
}

func TestAppraiseOVMF(t *testing.T) {
	raw := readLog(t, "ovmf-tpm2.bin")
	pcrs := readPCRs(t, "ovmf-tpm2.pcrs", "sha256", 7)
	golden := goldenFrom(t, raw, tpm.SHA256, pcrs)

	t.Run("matches its golden set", func(t *testing.T) {
		a := Appraise(tpm.SHA256, pcrs, raw, []Golden{golden}, "")
		if a.Verdict != wire.Trusted || len(a.Unexplained) != 0 || a.LogError != "" {
			t.Fatalf("verdict %s, unexplained %v, log error %q", a.Verdict, a.Unexplained, a.LogError)
		}
		if !strings.HasPrefix(a.Summary(), "trusted") {
			t.Fatalf("summary: %s", a.Summary())
		}
	})

	t.Run("no golden set", func(t *testing.T) {
		a := Appraise(tpm.SHA256, pcrs, raw, nil, "")
		if a.Verdict != wire.Unknown {
			t.Fatalf("verdict %s, want unknown", a.Verdict)
		}
		sha1Only := golden
		sha1Only.Bank = tpm.SHA1
		if a := Appraise(tpm.SHA256, pcrs, raw, []Golden{sha1Only}, ""); a.Verdict != wire.Unknown {
			t.Fatalf("a sha1 golden set judged a sha256 quote: %s", a.Verdict)
		}
	})

	// The machine booted another firmware: the golden events carry another
	// digest for one event (as if learned from the other image). The PCR
	// differs, the log explains it, and the event is named.
	t.Run("changed firmware is named at event level", func(t *testing.T) {
		g := golden
		g.Events = append([]eventlog.EventRecord(nil), golden.Events...)
		var victim int = -1
		for i, r := range g.Events {
			if r.PCR == 0 && r.Type == eventlog.EvEFIPlatformFirmwareBlob {
				victim = i
				break
			}
		}
		if victim < 0 {
			t.Fatal("no firmware blob event in PCR 0 of the OVMF log")
		}
		g.Events[victim].Digest = bytes.Repeat([]byte{0xab}, 32)
		g.PCRs = map[int][]byte{}
		for p, v := range pcrs {
			g.PCRs[p] = v
		}
		g.PCRs[0] = bytes.Repeat([]byte{0xab}, 32)
		a := Appraise(tpm.SHA256, pcrs, raw, []Golden{g}, "")
		if a.Verdict != wire.Changed || len(a.PCRDiffs) != 1 || a.PCRDiffs[0].PCR != 0 || !a.PCRDiffs[0].Explained {
			t.Fatalf("verdict %s, PCR diffs %+v", a.Verdict, a.PCRDiffs)
		}
		if len(a.EventDiffs) != 1 || a.EventDiffs[0].Kind != "changed" || a.EventDiffs[0].Golden != strings.Repeat("ab", 32) {
			t.Fatalf("event diffs %+v", a.EventDiffs)
		}
		if s := a.Summary(); !strings.Contains(s, "CHANGED") || !strings.Contains(s, "PCR 0:") {
			t.Fatalf("summary does not name PCR 0: %s", s)
		}
	})

	// The device edits its log but its PCRs are genuine: the verdict rests
	// on the signed values, and the edited PCR is marked unexplained.
	t.Run("an edited log changes no verdict", func(t *testing.T) {
		l, _ := eventlog.Parse(raw)
		off := -1
		for _, e := range l.Events {
			if e.PCR == 4 && e.Extended() {
				off = bytes.Index(raw[e.Offset:], e.Digests[tpm.SHA256]) + int(e.Offset)
				break
			}
		}
		edited := bytes.Clone(raw)
		edited[off] ^= 0xff // the event's sha256 digest
		a := Appraise(tpm.SHA256, pcrs, edited, []Golden{golden}, "")
		if a.Verdict != wire.Trusted {
			t.Fatalf("verdict %s", a.Verdict)
		}
		if len(a.Unexplained) != 1 || a.Unexplained[0] != 4 {
			t.Fatalf("unexplained PCRs %v, want [4]", a.Unexplained)
		}
	})

	t.Run("garbage log", func(t *testing.T) {
		a := Appraise(tpm.SHA256, pcrs, []byte("not a log at all"), []Golden{golden}, "")
		if a.Verdict != wire.Trusted || a.LogError == "" || len(a.Unexplained) != 8 {
			t.Fatalf("verdict %s, log error %q, unexplained %v", a.Verdict, a.LogError, a.Unexplained)
		}
	})

	t.Run("the claimed firmware picks among equals", func(t *testing.T) {
		a2 := golden
		a2.ID, a2.Label = 2, "OVMF rebuilt"
		a := Appraise(tpm.SHA256, pcrs, raw, []Golden{golden, a2}, "OVMF rebuilt")
		if a.Golden.ID != 2 {
			t.Fatalf("compared with golden %d, want 2", a.Golden.ID)
		}
	})
}

func TestAppraiseCorebootTCPA(t *testing.T) {
	raw := readLog(t, "coreboot-tpm2.tcpa")
	l, err := eventlog.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	pcrs := l.Replay(tpm.SHA256)
	for _, p := range QuotedPCRs {
		if _, ok := pcrs[p]; !ok {
			pcrs[p] = make([]byte, 32)
		}
	}
	a := Appraise(tpm.SHA256, pcrs, raw, []Golden{goldenFrom(t, raw, tpm.SHA256, pcrs)}, "")
	if a.Verdict != wire.Trusted || a.EventCount != 6 || len(a.Unexplained) != 0 {
		t.Fatalf("verdict %s, %d events, unexplained %v", a.Verdict, a.EventCount, a.Unexplained)
	}
}
