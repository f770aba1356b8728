//go:build qemu

package qemutest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/u-root/u-root/pkg/cpio"
)

const (
	busybox  = "/bin/busybox"
	qemu     = "qemu-system-x86_64"
	bootWait = 100 * time.Second // per guest; a good run takes 20-40 s
)

// stage2Init is stage 2's /init: it proves the second system runs, shows
// the appended key file and whether it runs under Xen, then powers off.
const stage2Init = `#!/bin/busybox sh
bb=/bin/busybox
$bb mount -t proc proc /proc
$bb mount -t sysfs sysfs /sys
$bb mount -t devtmpfs devtmpfs /dev
# Under Xen on coreboot dom0's hvc console can fail to open ("genirq: Flags
# mismatch irq 8 (hvc_console) vs. (rtc0)"), leaving init without stdout:
# then write through the kernel log, which still reaches the console.
[ -e /proc/self/fd/1 ] || exec >/dev/kmsg 2>&1
echo "STAGE2-MARKER uptime=$($bb cut -d' ' -f1 /proc/uptime)"
if [ -f /secret.key ]; then echo "STAGE2-KEY $($bb cat /secret.key)"; else echo "STAGE2-KEY none"; fi
echo "STAGE2-HYPERVISOR $($bb cat /sys/hypervisor/type 2>/dev/null || echo none)"
echo "STAGE2-CMDLINE $($bb cat /proc/cmdline)"
echo "STAGE2-DONE"
$bb poweroff -f
`

type fixture struct {
	dir    string
	root   string
	stage1 string // stage 1 initramfs carrying everything (SeaBIOS, OVMF)
	kernel string // the kernel stage 1 loads: Debian's (cache/kernel)
	// stage1Kernel runs stage 1: glint's payload kernel when built, else Debian's
	stage1Kernel string
	key          string // content of /secret.key
	haveXen      bool
	// For coreboot, whose 16 MiB ROM cannot hold the kernel twice: a small
	// stage 1 (init + key) and the rest as a bundle QEMU's generic loader
	// puts in RAM at bundleAddr (see stage1's fetchBundle).
	miniStage1, bundle string
}

// bundleAddr is where the coreboot case's bundle sits in guest RAM, inside
// the 16 MiB the stage 1 command line reserves with memmap=.
const bundleAddr = 0x40000000

func repoRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

func setup(t *testing.T) *fixture {
	t.Helper()
	if _, err := exec.LookPath(qemu); err != nil {
		t.Skipf("%s not installed (apt-get install qemu-system-x86): %v", qemu, err)
	}
	if _, err := os.Stat(busybox); err != nil {
		t.Skipf("%s missing (apt-get install busybox-static): %v", busybox, err)
	}
	root := repoRoot(t)
	kernel := filepath.Join(root, "cache/kernel/vmlinuz")
	if _, err := os.Stat(kernel); err != nil {
		t.Skipf("no kernel cache (run bash scripts/fetch-kernel.sh): %v", err)
	}
	f := &fixture{dir: t.TempDir(), root: root, kernel: kernel, stage1Kernel: kernel}
	// Stage 1 runs on glint's payload kernel when it is built (scripts/build-kernel.sh): the
	// kernel that does the kexec on a real machine. Stage 2 stays Debian's kernel, as on /boot.
	if payload := filepath.Join(root, "out/kernel/bzImage"); fileExists(payload) {
		f.stage1Kernel = payload
	}
	xen := filepath.Join(root, "cache/xen/xen.gz")
	_, err := os.Stat(xen)
	f.haveXen = err == nil

	start := time.Now()
	initBin := filepath.Join(f.dir, "init")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", initBin, "./stage1")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build stage1: %v\n%s", err, out)
	}

	bb, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	stage2 := gzipBytes(t, cpioBytes(t, baseRecords(),
		cpio.StaticRecord(bb, cpio.Info{Name: "bin/busybox", Mode: cpio.S_IFREG | 0o755}),
		cpio.StaticFile("init", stage2Init, 0o755)))

	var r [12]byte
	rand.Read(r[:])
	f.key = "glint-test-key-" + hex.EncodeToString(r[:])
	// The disk-key cpio as internal/diskkey appends it: uncompressed newc,
	// after the (gzip'd) main initrd.
	keyCpio := cpioBytes(t, nil, cpio.StaticFile("secret.key", f.key, 0o400))

	initData, err := os.ReadFile(initBin)
	if err != nil {
		t.Fatal(err)
	}
	kdata, err := os.ReadFile(kernel)
	if err != nil {
		t.Fatal(err)
	}
	recs := []cpio.Record{
		cpio.StaticRecord(initData, cpio.Info{Name: "init", Mode: cpio.S_IFREG | 0o755}),
		cpio.StaticRecord(kdata, cpio.Info{Name: "vmlinuz", Mode: cpio.S_IFREG | 0o644}),
		cpio.StaticRecord(stage2, cpio.Info{Name: "stage2.cpio.gz", Mode: cpio.S_IFREG | 0o644}),
		cpio.StaticRecord(keyCpio, cpio.Info{Name: "key.cpio", Mode: cpio.S_IFREG | 0o600}),
	}
	if f.haveXen {
		xdata, err := os.ReadFile(xen)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, cpio.StaticRecord(xdata, cpio.Info{Name: "xen.gz", Mode: cpio.S_IFREG | 0o644}))
	}
	// Stage 1 stays uncompressed: what it carries is compressed already, and
	// inflating 12 MB under TCG would only add boot time.
	f.stage1 = filepath.Join(f.dir, "stage1.cpio")
	if err := os.WriteFile(f.stage1, cpioBytes(t, baseRecords(), recs...), 0o644); err != nil {
		t.Fatal(err)
	}
	f.miniStage1 = filepath.Join(f.dir, "stage1-mini.cpio")
	if err := os.WriteFile(f.miniStage1, cpioBytes(t, baseRecords(), recs[0], recs[3]), 0o644); err != nil {
		t.Fatal(err)
	}
	bundle := cpioBytes(t, nil, recs[1:3]...)
	if f.haveXen {
		bundle = cpioBytes(t, nil, recs[1], recs[2], recs[4])
	}
	var hdr [16]byte
	copy(hdr[:], "GLINTBND")
	binary.LittleEndian.PutUint64(hdr[8:], uint64(len(bundle)))
	f.bundle = filepath.Join(f.dir, "bundle.bin")
	if err := os.WriteFile(f.bundle, append(hdr[:], bundle...), 0o644); err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv("GLINT_QEMU_KEEP"); dir != "" {
		_ = os.MkdirAll(dir, 0o755)
		_ = os.WriteFile(filepath.Join(dir, "stage1.cpio"), mustRead(t, f.stage1), 0o644)
	}
	t.Logf("built stage1 init, stage2 initramfs (%d bytes) and stage1 initramfs in %v", len(stage2), time.Since(start).Round(time.Millisecond))
	return f
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func baseRecords() []cpio.Record {
	return []cpio.Record{
		cpio.Directory("dev", 0o755), cpio.Directory("proc", 0o755), cpio.Directory("sys", 0o755),
		cpio.Directory("bin", 0o755),
		// The kernel opens /dev/console for init before anything is mounted.
		cpio.CharDev("dev/console", 0o600, 5, 1),
	}
}

func cpioBytes(t *testing.T, base []cpio.Record, recs ...cpio.Record) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := cpio.Newc.Writer(&buf)
	all := append(append([]cpio.Record(nil), base...), recs...)
	for i := range all {
		all[i] = cpio.MakeReproducible(all[i])
	}
	if err := cpio.WriteRecords(w, all); err != nil {
		t.Fatal(err)
	}
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// serialLine is one line of the guest's serial console with its arrival time.
type serialLine struct {
	at   time.Duration
	text string
}

type bootRun struct {
	lines []serialLine
	log   string
}

// find returns the first line at or after index from containing s.
func (b *bootRun) find(s string, from int) (int, serialLine, bool) {
	for i := max(from, 0); i < len(b.lines); i++ {
		if strings.Contains(b.lines[i].text, s) {
			return i, b.lines[i], true
		}
	}
	return -1, serialLine{}, false
}

// boot runs QEMU on the stage 1 initramfs until stage 2 says it is done (or
// the guest exits, or bootWait passes) and returns the serial lines.
func boot(t *testing.T, f *fixture, c bootCase) *bootRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bootWait)
	defer cancel()
	cmdline := "console=ttyS0 panic=-1 quiet glint.test=" + c.mode
	args := []string{"-machine", "q35", "-accel", "tcg", "-cpu", "max", "-m", "1536", "-nographic", "-no-reboot"}
	switch c.firmware {
	case seabios, ovmf:
		if c.firmware == ovmf {
			args = append(args, "-bios", ovmfPath)
		}
		args = append(args, "-kernel", f.stage1Kernel, "-initrd", f.stage1, "-append", cmdline)
	case coreboot:
		rom := corebootROM(t, f, cmdline+fmt.Sprintf(" memmap=16M$%#x glint.bundle=%#x", bundleAddr, bundleAddr))
		args = append(args, "-bios", rom,
			"-device", fmt.Sprintf("loader,file=%s,addr=%#x,force-raw=on", f.bundle, bundleAddr))
	}
	cmd := exec.CommandContext(ctx, qemu, args...)
	cmd.Stdin = nil
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	run := &bootRun{}
	var logBuf strings.Builder
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var killOnce sync.Once
		for sc.Scan() {
			line := strings.TrimRight(sc.Text(), "\r")
			mu.Lock()
			run.lines = append(run.lines, serialLine{time.Since(start), line})
			fmt.Fprintf(&logBuf, "[%7.3f] %s\n", time.Since(start).Seconds(), line)
			mu.Unlock()
			if strings.Contains(line, "STAGE2-DONE") || strings.Contains(line, "STAGE1-FAIL") {
				// Give poweroff a moment, then stop the guest whatever it does
				// (Xen's poweroff path is not what is under test).
				killOnce.Do(func() { time.AfterFunc(3*time.Second, cancel) })
			}
		}
		io.Copy(io.Discard, out)
	}()
	<-done
	_ = cmd.Wait()
	run.log = logBuf.String()
	if dir := os.Getenv("GLINT_QEMU_KEEP"); dir != "" {
		_ = os.MkdirAll(dir, 0o755)
		_ = os.WriteFile(filepath.Join(dir, c.name+"-serial.log"), []byte(run.log), 0o644)
	}
	return run
}

// expect fails the test with the serial log when s is not found after from.
func expect(t *testing.T, run *bootRun, s string, from int) (int, serialLine) {
	t.Helper()
	i, l, ok := run.find(s, from)
	if !ok {
		t.Fatalf("serial output has no %q after line %d; serial log:\n%s", s, from, tail(run.log, 120))
	}
	return i, l
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d lines before)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

func field(line, key string) string {
	for _, w := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(w, key+"="); ok {
			return v
		}
	}
	return "?"
}

// checkStages asserts stage 1 loaded and executed, stage 2 ran with the key,
// and logs the timings. It returns the index of the STAGE1-EXEC line.
func checkStages(t *testing.T, f *fixture, run *bootRun) int {
	t.Helper()
	if _, l, ok := run.find("STAGE1-FAIL", 0); ok {
		t.Fatalf("stage 1 failed: %s\nserial log:\n%s", l.text, tail(run.log, 80))
	}
	iInit, lInit := expect(t, run, "STAGE1-INIT", 0)
	_, lLoad := expect(t, run, "STAGE1-LOADED", iInit)
	iExec, lExec := expect(t, run, "STAGE1-EXEC", iInit)
	iMark, lMark := expect(t, run, "STAGE2-MARKER", iExec)
	_, lKey := expect(t, run, "STAGE2-KEY", iMark)
	if got := strings.TrimSpace(strings.TrimPrefix(lKey.text[strings.Index(lKey.text, "STAGE2-KEY"):], "STAGE2-KEY")); got != f.key {
		t.Errorf("stage 2 /secret.key = %q, want %q (the appended ExtraInitrd cpio)", got, f.key)
	}
	_, lCmd := expect(t, run, "STAGE2-CMDLINE", iMark)
	if !strings.Contains(lCmd.text, "glint.stage=2") {
		t.Errorf("stage 2 command line %q lacks glint.stage=2", lCmd.text)
	}
	t.Logf("timings: stage 1 /init at %.1f s (guest uptime %s s); load %s ms; kexec -> stage 2 marker %.1f s (second kernel's uptime %s s); total %.1f s",
		lInit.at.Seconds(), field(lInit.text, "uptime"), field(lLoad.text, "load_ms"),
		(lMark.at - lExec.at).Seconds(), field(lMark.text, "uptime"), lMark.at.Seconds())
	return iExec
}

type firmware int

const (
	seabios  firmware = iota // QEMU's default BIOS, direct kernel boot
	coreboot                 // glint's real target: coreboot 4.15 with a Linux payload
	ovmf                     // UEFI without a CSM, direct kernel boot
)

const ovmfPath = "/usr/share/ovmf/OVMF.fd"

type bootCase struct {
	name     string
	mode     string // stage 1's glint.test=
	firmware firmware
}

// corebootROM returns a copy of glint's coreboot ROM (make rom) whose
// payload is stage 1's kernel with the small stage 1 initramfs.
func corebootROM(t *testing.T, f *fixture, cmdline string) string {
	t.Helper()
	src, cbfstool := corebootTools(t, f)
	rom := filepath.Join(t.TempDir(), "coreboot.rom")
	if err := os.WriteFile(rom, mustRead(t, src), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{rom, "remove", "-n", "fallback/payload"},
		{rom, "add-payload", "-n", "fallback/payload", "-f", f.stage1Kernel, "-I", f.miniStage1, "-C", cmdline},
	} {
		if out, err := exec.Command(cbfstool, args...).CombinedOutput(); err != nil {
			t.Fatalf("cbfstool %v: %v\n%s", args[1:], err, out)
		}
	}
	return rom
}

// corebootTools returns the ROM to start from and cbfstool, or skips.
func corebootTools(t *testing.T, f *fixture) (rom, cbfstool string) {
	t.Helper()
	rom = os.Getenv("GLINT_COREBOOT_ROM")
	if rom == "" {
		rom = filepath.Join(f.root, "out/coreboot-tpm2.rom")
	}
	if _, err := os.Stat(rom); err != nil {
		t.Skipf("no coreboot ROM (run make rom, or set GLINT_COREBOOT_ROM): %v", err)
	}
	cbfstool, err := exec.LookPath("cbfstool")
	if err != nil {
		t.Skipf("cbfstool not installed (apt-get install coreboot-utils): %v", err)
	}
	return rom, cbfstool
}

func TestKexec(t *testing.T) {
	f := setup(t)
	cases := []bootCase{
		{"linux", "linux", seabios},
		{"linux-ovmf", "linux", ovmf},
		{"xen", "xen", seabios},
		{"xen-coreboot", "xen", coreboot},
		{"xen-ovmf", "xen", ovmf},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.mode == "xen" && !f.haveXen {
				t.Skip("no Xen cache (run bash internal/kexec/testdata/fetch-xen.sh)")
			}
			if c.firmware == ovmf {
				if _, err := os.Stat(ovmfPath); err != nil {
					t.Skipf("no OVMF (apt-get install ovmf): %v", err)
				}
			}
			if c.firmware == coreboot {
				corebootTools(t, f) // skip before t.Parallel when missing
			}
			t.Parallel()
			run := boot(t, f, c)
			iExec := checkStages(t, f, run)
			_, hv := expect(t, run, "STAGE2-HYPERVISOR", iExec)
			if c.mode == "linux" {
				// The second kernel's own console output (console=ttyS0, no quiet).
				expect(t, run, "Linux version", iExec)
				expect(t, run, "Command line: console=ttyS0 panic=-1 glint.stage=2", iExec)
				if !strings.HasSuffix(hv.text, " none") {
					t.Errorf("Linux stage 2 reports a hypervisor: %q", hv.text)
				}
				return
			}
			// Xen's own lines on com1, then dom0 (its console is hvc0, which
			// Xen copies to com1).
			expect(t, run, "Xen version", iExec)
			_, cl := expect(t, run, "(XEN) Command line:", iExec)
			if !strings.Contains(cl.text, " no-real-mode") {
				t.Errorf("Xen command line lacks no-real-mode: %q", cl.text)
			}
			expect(t, run, "Dom0 has maximum", iExec)
			if !strings.HasSuffix(hv.text, " xen") {
				t.Errorf("stage 2 does not run under Xen: %q", hv.text)
			}
			if _, _, off := run.find("ACPI is disabled", iExec); off {
				// Xen 4.17 finds the RSDP only by scanning the EBDA and
				// 0xE0000-0xFFFFF; see the package doc.
				t.Logf("note: Xen found no ACPI RSDP on this firmware (dom0 runs with acpi=off)")
			}
		})
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
