//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	summaryMu sync.Mutex
	summary   = map[string]map[string]*scenarioStats{} // machine -> scenario -> stats
	order     []string
)

type scenarioStats struct {
	boots        int
	took         time.Duration
	toInit, toOS []time.Duration
	kexecHop     []time.Duration // "glint: kexec" to the OS marker
}

func recordBoot(machine string, b BootRecord) {
	summaryMu.Lock()
	defer summaryMu.Unlock()
	if summary[machine] == nil {
		summary[machine] = map[string]*scenarioStats{}
	}
	s := summary[machine][b.Scenario]
	if s == nil {
		s = &scenarioStats{}
		summary[machine][b.Scenario] = s
		order = append(order, machine+"\x00"+b.Scenario)
	}
	s.boots++
	s.took += b.Took
	if b.ToInit > 0 {
		s.toInit = append(s.toInit, b.ToInit)
	}
	if b.ToOS > 0 {
		s.toOS = append(s.toOS, b.ToOS)
		if b.ToKexec > 0 {
			s.kexecHop = append(s.kexecHop, b.ToOS-b.ToKexec)
		}
	}
}

// printSummary writes the table of boots and seconds per scenario (TestMain calls it).
func printSummary(w io.Writer) {
	summaryMu.Lock()
	defer summaryMu.Unlock()
	if len(order) == 0 {
		return
	}
	// machines ran in parallel: group their rows, each machine's rows in the order they ran
	sorted := append([]string(nil), order...)
	sort.SliceStable(sorted, func(i, j int) bool {
		mi, _, _ := strings.Cut(sorted[i], "\x00")
		mj, _, _ := strings.Cut(sorted[j], "\x00")
		return mi < mj
	})
	fmt.Fprintf(w, "\n%-20s %-34s %5s %8s %14s %12s %10s\n", "machine", "scenario", "boots", "seconds", "to glint (s)", "to OS (s)", "kexec (s)")
	var total time.Duration
	var boots int
	for _, k := range sorted {
		machine, scen, _ := strings.Cut(k, "\x00")
		s := summary[machine][scen]
		total += s.took
		boots += s.boots
		fmt.Fprintf(w, "%-20s %-34s %5d %8.1f %14s %12s %10s\n", machine, scen, s.boots, s.took.Seconds(), secs(s.toInit), secs(s.toOS), secs(s.kexecHop))
	}
	fmt.Fprintf(w, "%-20s %-34s %5d %8.1f\n", "total", "", boots, total.Seconds())
}

func secs(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	var parts []string
	for _, d := range ds {
		parts = append(parts, strconv.FormatFloat(d.Seconds(), 'f', 1, 64))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// Screenshot saves the machine's VGA framebuffer (QEMU monitor `screendump`, PPM) as
// out/e2e/screens/<machine>-<name>.png.
func (r *Run) Screenshot(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(r.m.Top, "out", "e2e", "screens")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Errorf("screenshot: %v", err)
		return ""
	}
	ppm := filepath.Join(r.m.Dir, name+".ppm")
	os.Remove(ppm)
	if out, err := r.monitorCmd("screendump " + ppm); err != nil {
		t.Errorf("screendump: %v (%s)", err, out)
		return ""
	}
	if err := waitFor(ppm, 5*time.Second); err != nil {
		t.Errorf("screendump: %v", err)
		return ""
	}
	pngPath := filepath.Join(dir, r.m.Name+"-"+name+".png")
	if err := ppmToPNG(ppm, pngPath); err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return ""
	}
	os.Remove(ppm)
	return pngPath
}

// ppmToPNG converts QEMU's binary P6 dump (8 bits per channel).
func ppmToPNG(src, dst string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var magic string
	var w, h, maxv int
	if _, err := fmt.Fscan(br, &magic, &w, &h, &maxv); err != nil {
		return fmt.Errorf("PPM header: %w", err)
	}
	if magic != "P6" || maxv != 255 || w <= 0 || h <= 0 || w > 8192 || h > 8192 {
		return fmt.Errorf("unexpected PPM %s %dx%d max %d", magic, w, h, maxv)
	}
	if _, err := br.ReadByte(); err != nil { // the single whitespace after the header
		return err
	}
	pix := make([]byte, w*h*3)
	if _, err := io.ReadFull(br, pix); err != nil {
		return fmt.Errorf("PPM pixels: %w", err)
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < w*h; i++ {
		img.Set(i%w, i/w, color.RGBA{pix[3*i], pix[3*i+1], pix[3*i+2], 255})
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if err := png.Encode(out, img); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
