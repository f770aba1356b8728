package boot

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/glint-boot/glint/internal/kexec"
	"github.com/glint-boot/glint/internal/ownerconfig"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/rom"
	"github.com/glint-boot/glint/internal/tpm"
	"github.com/glint-boot/glint/internal/tpm/swtpmtest"
)

// BenchmarkNormalBoot is one normal power-on of an owned machine, from the
// start of the flow to the kexec call: measure the owner files, unseal the
// TOTP secret and show the code, verify /boot (signature, rollback counter,
// every file's hash), read the default entry's kernel and initrd and check
// them again against the manifest, extend "leaving" into PCR 4, lock the
// platform hierarchy, shut the TPM down, kexec (recorded by a fake machine).
//
// The TPM is a real swtpm, power-cycled before every iteration outside the
// timer (PCRs reset, NV and the sealed secret kept), and the keys are real
// gpg keys. /boot looks like a Debian one: an 8 MiB kernel, a 40 MiB initrd,
// System.map, config and grub.cfg, of random bytes, in the page cache.
//
// Metrics, all per boot:
//
//	tpm-cmds/op  TPM commands glint sent (tpm.OpenWithStats)
//	tpm-ms/op    time spent waiting for those commands
//	own-ms/op    glint's own time from flow start to kexec: total minus TPM
//	             time minus time waiting for the owner (zero here: countdown 0)
//	cpu-ms/op    CPU time the process used in that span (all threads): the
//	             figure to trust when other work shares the machine
//
// Run (about 30 s; bench/boot.sh compares with the shell pipeline):
//
//	go test ./internal/boot/ -run '^$' -bench NormalBoot -benchtime 10x
func BenchmarkNormalBoot(b *testing.B) {
	for _, c := range []struct {
		name string
		v    tpm.Version
	}{{"tpm20", tpm.Version20}, {"tpm12", tpm.Version12}} {
		b.Run(c.name, func(b *testing.B) { benchNormalBoot(b, c.v) })
	}
}

func benchNormalBoot(b *testing.B, v tpm.Version) {
	pub, sec := ownerKeys(b)
	tpmDir, bootDir := b.TempDir(), b.TempDir()
	writeDebianBoot(b, bootDir)
	m := &timedMachine{fakeMachine: fakeMachine{key: sec}, tb: b}
	owner := map[string][]byte{rom.OwnerKeyFile: pub}

	// First power-on: the owner sets the machine up (signs /boot, seals the
	// TOTP secret), as flow_test.go's first power does.
	spec := swtpmtest.StartDir(b, v, tpmDir)
	f, out := benchFlow(m, spec, bootDir, owner, ownerPass+"\ny\n\n")
	err := f.Run()
	if f.tpm != nil {
		f.tpm.Close()
	}
	if err != nil && !errors.Is(err, ErrNoInput) || !strings.Contains(out.String(), "Set-up complete") {
		b.Fatalf("owner set-up failed: %v\n%s", err, out)
	}

	var boots, cmds int
	var inTPM, own, cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		spec := swtpmtest.StartDir(b, v, tpmDir) // power cycle
		m.fakeMachine.kexecs, m.at, m.cpu = nil, time.Time{}, 0
		// Flush what set-up and the last iteration wrote, so the flow's own
		// sync before kexec does not pay for the bench.
		unix.Sync()
		f, out := benchFlow(m, spec, bootDir, owner, "")
		b.StartTimer()

		cpu0 := processCPU(b)
		f.Started = time.Now()
		err := f.Run()

		b.StopTimer()
		if f.tpm != nil {
			f.tpm.Close()
		}
		if !errors.Is(err, ErrNoInput) || len(m.kexecs) != 1 || !strings.Contains(out.String(), "TOTP code:") {
			b.Fatalf("normal boot did not show TOTP and kexec once (%d kexecs, err %v):\n%s", len(m.kexecs), err, out)
		}
		boots++
		cmds += m.cmds
		inTPM += m.inTPM
		own += m.at.Sub(f.Started) - m.inTPM - f.Con.waited
		cpu += m.cpu - cpu0
		b.StartTimer()
	}
	b.ReportMetric(float64(cmds)/float64(boots), "tpm-cmds/op")
	b.ReportMetric(float64(inTPM.Microseconds())/1000/float64(boots), "tpm-ms/op")
	b.ReportMetric(float64(own.Microseconds())/1000/float64(boots), "own-ms/op")
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(boots), "cpu-ms/op")
}

// benchFlow is one power-on's Flow, the TPM opened with counting.
func benchFlow(m *timedMachine, spec, bootDir string, owner map[string][]byte, input string) (*Flow, *bytes.Buffer) {
	out := &bytes.Buffer{}
	src := &tpmDevice{spec: spec}
	f := &Flow{
		Con: NewConsole(strings.NewReader(input), out), J: NewJournal(nil, nil),
		Machine: m, TPM: src,
		BootDir: bootDir, OwnerFiles: owner,
		Config: ownerconfig.Default(), Profile: pcr.Coreboot,
		BuildTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	f.Config.Countdown = 0
	m.stats = src.Stats
	return f, out
}

// timedMachine is the fake machine (kexec cannot run in a test process) that
// also notes when the flow called kexec and the TPM totals at that moment.
type timedMachine struct {
	fakeMachine
	stats func() *tpm.Stats
	at    time.Time
	cpu   time.Duration // processCPU at kexec
	cmds  int
	inTPM time.Duration
	tb    testing.TB
}

func (m *timedMachine) Kexec(img kexec.Image) error {
	m.at = time.Now()
	m.cpu = processCPU(m.tb)
	if st := m.stats(); st != nil {
		m.cmds, m.inTPM = st.Snapshot()
	}
	return m.fakeMachine.Kexec(img)
}

// processCPU is the user+system time of this process so far.
func processCPU(tb testing.TB) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// writeDebianBoot fills dir like Debian 12's /boot after one kernel install
// (sizes of 6.1.0-28-amd64, initramfs-tools with MODULES=most), with random
// bytes so nothing compresses or dedups.
func writeDebianBoot(tb testing.TB, dir string) {
	tb.Helper()
	files := []struct {
		name string
		size int64
	}{
		{"vmlinuz-6.1.0-28-amd64", 8 << 20},
		{"initrd.img-6.1.0-28-amd64", 40 << 20},
		{"System.map-6.1.0-28-amd64", 4_800_000},
		{"config-6.1.0-28-amd64", 270_000},
	}
	for _, f := range files {
		w, err := os.Create(filepath.Join(dir, f.name))
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := io.CopyN(w, rand.Reader, f.size); err != nil {
			tb.Fatal(err)
		}
		if err := w.Close(); err != nil {
			tb.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "grub"), 0o755); err != nil {
		tb.Fatal(err)
	}
	cfg := "set default=0\nset timeout=5\n" +
		"menuentry 'Debian GNU/Linux' {\n" +
		"  linux /vmlinuz-6.1.0-28-amd64 root=UUID=0b3c7c5e-2b1a-4f2e-9d8c-2f1f6f0f7a11 ro quiet\n" +
		"  initrd /initrd.img-6.1.0-28-amd64\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "grub", "grub.cfg"), []byte(cfg), 0o644); err != nil {
		tb.Fatal(err)
	}
}
