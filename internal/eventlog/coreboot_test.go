package eventlog

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/tpm"
)

// corebootNames is what coreboot 4.15 measures into PCR 2, in order, with
// the names it logs (src/security/tpm/tspi/crtm.c).
var corebootNames = []string{
	"FMAP: FMAP",
	"FMAP: COREBOOT CBFS: bootblock",
	"FMAP: COREBOOT CBFS: fallback/romstage",
	"FMAP: COREBOOT CBFS: fallback/postcar",
	"FMAP: COREBOOT CBFS: fallback/ramstage",
	"FMAP: COREBOOT CBFS: fallback/payload",
}

// syntheticTCPALog builds a coreboot TCPA log in the 4.15 layout from
// made-up contents. It is synthetic because it stands in where no coreboot
// ROM has been booted; the layout is coreboot's, checked by the real log
// when testdata/coreboot-*.mem exists.
func syntheticTCPALog(t testing.TB, alg tpm.Alg) (*Log, []byte) {
	t.Helper()
	l := &Log{Format: FormatCorebootTCPA, Algs: []tpm.Alg{alg}}
	h, _ := alg.Hash()
	for i, n := range corebootNames {
		w := h.New()
		w.Write([]byte("contents of " + n))
		l.Events = append(l.Events, Event{Index: i, PCR: 2, Type: EvCorebootMeasurement,
			Digests: map[tpm.Alg][]byte{alg: w.Sum(nil)}, Description: n, Data: []byte(n)})
	}
	raw, err := MarshalTCPA(l, 50) // MAX_TCPA_LOG_ENTRIES in 4.15
	if err != nil {
		t.Fatal(err)
	}
	return l, raw
}

type lbRecord struct {
	tag  uint32
	body []byte
}

func lbTable(records []lbRecord) []byte {
	var table []byte
	for _, r := range records {
		rec := make([]byte, 8+len(r.body))
		binary.LittleEndian.PutUint32(rec, r.tag)
		binary.LittleEndian.PutUint32(rec[4:], uint32(len(rec)))
		copy(rec[8:], r.body)
		table = append(table, rec...)
	}
	hdr := make([]byte, lbHeaderSize)
	copy(hdr, "LBIO")
	binary.LittleEndian.PutUint32(hdr[4:], lbHeaderSize)
	binary.LittleEndian.PutUint32(hdr[12:], uint32(len(table)))
	binary.LittleEndian.PutUint32(hdr[16:], uint32(ipChecksum(table)))
	binary.LittleEndian.PutUint32(hdr[20:], uint32(len(records)))
	binary.LittleEndian.PutUint32(hdr[8:], uint32(ipChecksum(hdr)))
	return append(hdr, table...)
}

func cbmemEntryRecord(id uint32, addr uint64, size uint32) lbRecord {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint64(b, addr)
	binary.LittleEndian.PutUint32(b[8:], size)
	binary.LittleEndian.PutUint32(b[12:], id)
	return lbRecord{lbTagCBMEMEntry, b}
}

// syntheticMemory lays out physical memory the way coreboot on QEMU does: a
// stub table in low memory forwarding to the real one in cbmem, which lists
// cbmem entries (among them an all-zero ACPI TPM2 log area, as coreboot 4.15
// leaves) and the TCPA log.
func syntheticMemory(t testing.TB, logID uint32, log []byte, useTCPATag bool) []byte {
	t.Helper()
	const high, logAt, acpiLog = 0x10000, 0x20000, 0x30000
	mem := make([]byte, 0x40000)
	fwd := make([]byte, 8)
	binary.LittleEndian.PutUint64(fwd, high)
	copy(mem[0x500:], lbTable([]lbRecord{{lbTagForward, fwd}}))
	recs := []lbRecord{
		{0x1, make([]byte, 24)}, // LB_TAG_MEMORY, ignored
		cbmemEntryRecord(CBMEMIDTPM2TCGLog, acpiLog, 0x1000),
		cbmemEntryRecord(logID, logAt, uint32(len(log))),
	}
	if useTCPATag {
		ref := make([]byte, 8)
		binary.LittleEndian.PutUint64(ref, logAt)
		recs = append(recs, lbRecord{lbTagTCPALog, ref})
	}
	copy(mem[high:], lbTable(recs))
	copy(mem[logAt:], log)
	return mem
}

func TestTCPARoundTrip(t *testing.T) {
	for _, alg := range []tpm.Alg{tpm.SHA1, tpm.SHA256} {
		want, raw := syntheticTCPALog(t, alg)
		got, err := ParseTCPA(raw)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Events) != len(want.Events) {
			t.Fatalf("%d events, want %d", len(got.Events), len(want.Events))
		}
		for i := range want.Events {
			g, w := got.Events[i], want.Events[i]
			if g.PCR != 2 || g.Description != w.Description || !bytes.Equal(g.Digests[alg], w.Digests[alg]) {
				t.Errorf("entry %d: %+v, want %+v", i, g, w)
			}
		}
		// Replay: PCR 2 = fold of extends over the digests in order.
		h, _ := alg.Hash()
		pcr := make([]byte, h.Size())
		for _, e := range want.Events {
			pcr = extend(h, pcr, e.Digests[alg])
		}
		if err := got.Verify(alg, map[int][]byte{2: pcr}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReadCorebootLogSynthetic(t *testing.T) {
	want, raw := syntheticTCPALog(t, tpm.SHA256)
	for _, tc := range []struct {
		name   string
		tag    bool
		id     uint32
		source string
	}{
		{"LB_TAG_TCPA_LOG record", true, 0x12345678, "cbmem TCPA log at 0x20000"},
		{"CBMEM_ID_TCPA_LOG entry only", false, CBMEMIDTCPALog, "cbmem TCPA log at 0x20000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := syntheticMemory(t, tc.id, raw, tc.tag)
			got, err := ReadCorebootLog(bytes.NewReader(mem))
			if err != nil {
				t.Fatal(err)
			}
			if got.Source != tc.source || len(got.Events) != len(want.Events) || got.Events[5].Description != "FMAP: COREBOOT CBFS: fallback/payload" {
				t.Fatalf("got %s with %d events", got.Source, len(got.Events))
			}
		})
	}
	t.Run("TCG log in cbmem (newer coreboot)", func(t *testing.T) {
		tcg := readGolden(t, "seabios-tpm2.bin")
		padded := append(append([]byte{}, tcg...), make([]byte, 4096)...) // cbmem areas are zero-padded
		mem := syntheticMemory(t, CBMEMIDTPM2TCGLog, padded, false)
		// The all-zero ACPI area is listed first and must be skipped.
		got, err := ReadCorebootLog(bytes.NewReader(mem))
		if err != nil {
			t.Fatal(err)
		}
		if got.Format != FormatCryptoAgile || len(got.Events) != 16 {
			t.Fatalf("got %v with %d events", got.Format, len(got.Events))
		}
	})
	t.Run("no coreboot", func(t *testing.T) {
		_, err := ReadCorebootLog(bytes.NewReader(make([]byte, 0x100000)))
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("want ErrNotFound, got %v", err)
		}
	})
	t.Run("table checksum broken", func(t *testing.T) {
		mem := syntheticMemory(t, CBMEMIDTCPALog, raw, true)
		mem[0x10000+lbHeaderSize+40] ^= 1 // a byte inside the high table
		_, err := ReadCorebootLog(bytes.NewReader(mem))
		var pe *ParseError
		if !errors.As(err, &pe) && !errors.Is(err, ErrNotFound) {
			t.Fatalf("want a checksum error, got %v", err)
		}
		if err == nil || !strings.Contains(err.Error(), "checksum") {
			t.Fatalf("error does not name the checksum: %v", err)
		}
	})
}

// sparseMemory is a memory image holding only some ranges (the bytes the
// coreboot-table walk read when the real log was recorded; see
// testdata/cbmemdump). Format: "GLINTMEM", then {addr u64, len u64, bytes}.
// Test-only: it reads files this repository wrote.
type sparseMemory struct {
	chunks []sparseChunk
}

type sparseChunk struct {
	addr int64
	data []byte
}

func loadSparseMemory(t testing.TB, path string) *sparseMemory {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("GLINTMEM")) {
		t.Fatalf("%s: not a sparse memory image", path)
	}
	b = b[8:]
	m := &sparseMemory{}
	for len(b) >= 16 {
		addr := binary.LittleEndian.Uint64(b)
		n := binary.LittleEndian.Uint64(b[8:])
		if n > uint64(len(b)-16) {
			t.Fatalf("%s: chunk truncated", path)
		}
		m.chunks = append(m.chunks, sparseChunk{int64(addr), b[16 : 16+n]})
		b = b[16+n:]
	}
	sort.Slice(m.chunks, func(i, j int) bool { return m.chunks[i].addr < m.chunks[j].addr })
	return m
}

// ReadAt serves a read from one chunk; reads outside any chunk return zeros
// for the low-memory search areas (as RAM would) and EOF elsewhere.
func (m *sparseMemory) ReadAt(p []byte, off int64) (int, error) {
	for _, c := range m.chunks {
		if off >= c.addr && off+int64(len(p)) <= c.addr+int64(len(c.data)) {
			return copy(p, c.data[off-c.addr:]), nil
		}
	}
	if off < 0x100000 && off+int64(len(p)) <= 0x100000 {
		clear(p)
		for _, c := range m.chunks { // overlay partial chunks
			if c.addr < off+int64(len(p)) && c.addr+int64(len(c.data)) > off {
				lo := max(c.addr, off)
				hi := min(c.addr+int64(len(c.data)), off+int64(len(p)))
				copy(p[lo-off:hi-off], c.data[lo-c.addr:hi-c.addr])
			}
		}
		return len(p), nil
	}
	return 0, io.EOF
}

// TestRealCorebootLog reads the cbmem log recorded from a real coreboot 4.15
// boot (testdata/record.sh coreboot ROM), replays it, and compares with the
// PCR values the guest read from the TPM and with coreboot's own console.
func TestRealCorebootLog(t *testing.T) {
	mems, _ := filepath.Glob("testdata/coreboot-*.mem")
	if len(mems) == 0 {
		t.Skip("no recorded coreboot log yet: run testdata/record.sh coreboot cache/coreboot/<rom>")
	}
	for _, path := range mems {
		name := strings.TrimSuffix(filepath.Base(path), ".mem")
		t.Run(name, func(t *testing.T) {
			log, err := ReadCorebootLog(loadSparseMemory(t, path))
			if err != nil {
				t.Fatal(err)
			}
			if log.Format != FormatCorebootTCPA {
				t.Fatalf("format %v", log.Format)
			}
			var names []string
			for _, e := range log.Events {
				names = append(names, e.Description)
			}
			if !strings.Contains(strings.Join(names, "\n"), "fallback/payload") {
				t.Errorf("no payload measurement in %q", names)
			}
			live := readPCRs(t, name)
			bank := log.Algs[0]
			if err := log.Verify(bank, map[int][]byte{0: live[bank][0], 2: live[bank][2]}); err != nil {
				t.Fatal(err)
			}
			// coreboot's own console lines ("PCR-2 <hex> SHA256 [name]") are
			// a second witness of what it measured.
			console := strings.Split(strings.TrimSpace(string(readGolden(t, name+".console-measurements"))), "\n")
			if len(console) != len(log.Events) {
				t.Fatalf("console shows %d measurements, cbmem log %d", len(console), len(log.Events))
			}
			for i, line := range console {
				f := strings.Fields(line)
				e := log.Events[i]
				if len(f) < 4 || f[0] != fmt.Sprintf("PCR-%d", e.PCR) || f[1] != hex.EncodeToString(e.Digests[bank]) ||
					strings.Join(f[3:], " ") != "["+e.Description+"]" {
					t.Errorf("console %q, log %d %x %q", line, e.PCR, e.Digests[bank], e.Description)
				}
			}
			// glint's prediction from the booted ROM's bytes (internal/rom,
			// written by cbmemdump) must name and hash exactly what coreboot
			// measured.
			recs, err := ParseRecords(readGolden(t, name+".predicted.json"))
			if err != nil {
				t.Fatal(err)
			}
			pred, err := FromRecords(recs)
			if err != nil {
				t.Fatal(err)
			}
			if d := Diff(pred, log); len(d) != 0 {
				t.Fatalf("prediction differs from the real log:\n%s", Explain(d))
			}
			if !bytes.Equal(pred.Replay(bank)[2], live[bank][2]) {
				t.Fatalf("predicted PCR 2 %x, TPM %x", pred.Replay(bank)[2], live[bank][2])
			}
		})
	}
}

func TestIPChecksum(t *testing.T) {
	// RFC 1071, 3: the example words 0001 f203 f4f5 f6f7 sum to ddf2
	// (big-endian); coreboot reads words little-endian, so feed them swapped.
	b := []byte{0x01, 0x00, 0x03, 0xf2, 0xf5, 0xf4, 0xf7, 0xf6}
	if got := ipChecksum(b); got != ^uint16(0xddf2) {
		t.Fatalf("checksum %04x, want %04x", got, ^uint16(0xddf2))
	}
	_ = sha256.New
}
