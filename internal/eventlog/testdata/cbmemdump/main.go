// Command cbmemdump cuts a full guest-memory dump (QEMU `pmemsave 0 SIZE
// FILE`, file offset = physical address) down to the bytes glint's
// coreboot-table walk reads, so a recorded coreboot boot fits in testdata.
// Output format (read by internal/eventlog's tests): "GLINTMEM", then
// {addr u64, len u64, bytes} chunks, little-endian.
//
// With a ROM and a third path it also writes what glint predicts coreboot
// measured into PCR 2 for that ROM (internal/rom), as stored event records,
// so the test can hold the prediction against the real log:
//
//	go run ./internal/eventlog/testdata/cbmemdump RAM.dump OUT.mem [ROM OUT.predicted.json]
package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"sort"

	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/rom"
	"github.com/glint-boot/glint/internal/tpm"
)

type span struct{ off, n int64 }

type recorder struct {
	f     *os.File
	spans []span
}

func (r *recorder) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.f.ReadAt(p, off)
	if n > 0 {
		r.spans = append(r.spans, span{off, int64(n)})
	}
	return n, err
}

func main() {
	if len(os.Args) != 3 && len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: cbmemdump RAM.dump OUT.mem [ROM OUT.predicted.json]")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	rec := &recorder{f: f}
	log, err := eventlog.ReadCorebootLog(rec)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cbmemdump:", err)
		os.Exit(1)
	}
	sort.Slice(rec.spans, func(i, j int) bool { return rec.spans[i].off < rec.spans[j].off })
	var merged []span
	for _, s := range rec.spans {
		if k := len(merged) - 1; k >= 0 && s.off <= merged[k].off+merged[k].n {
			merged[k].n = max(merged[k].n, s.off+s.n-merged[k].off)
			continue
		}
		merged = append(merged, s)
	}
	out := []byte("GLINTMEM")
	for _, s := range merged {
		buf := make([]byte, s.n)
		if _, err := f.ReadAt(buf, s.off); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		out = binary.LittleEndian.AppendUint64(out, uint64(s.off))
		out = binary.LittleEndian.AppendUint64(out, uint64(s.n))
		out = append(out, buf...)
	}
	if err := os.WriteFile(os.Args[2], out, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if len(os.Args) == 5 {
		img, err := rom.FromFile(os.Args[3])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		p, err := rom.PredictCorebootPCR2(img)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		bank := log.Algs[0]
		if bank != tpm.SHA1 {
			bank = tpm.SHA256
		}
		b, _ := eventlog.MarshalRecords(p.Log.Records(bank))
		if err := os.WriteFile(os.Args[4], append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	fmt.Fprintf(os.Stderr, "cbmemdump: %s: %d events, %d bytes kept in %d ranges\n", log.Source, len(log.Events), len(out), len(merged))
}
