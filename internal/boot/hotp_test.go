package boot

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/otp"
	"github.com/glint-boot/glint/internal/otp/dongle"
	"github.com/glint-boot/glint/internal/otp/dongle/dongletest"
	"github.com/glint-boot/glint/internal/tpm"
	"github.com/glint-boot/glint/internal/tpm/swtpmtest"
)

// plugged keeps the simulated dongle "plugged in" across Close calls. The
// simulator is written from the Nitrokey Pro protocol notes (no dongle can
// be attached here); it cannot show the LED, touch or firmware timing.
type plugged struct{ *dongletest.Sim }

func (plugged) Close() error { return nil }

func TestHOTPWithDongle(t *testing.T) {
	sim := dongletest.New()
	sim.BusyPolls = 0
	bootDir := t.TempDir()
	tpmDir := t.TempDir()
	open := func() (dongle.Device, error) { return plugged{sim}, nil }

	// Seal the TOTP secret and program the dongle with it (factory admin PIN).
	spec := swtpmtest.StartDir(t, tpm.Version20, tpmDir)
	tp, err := tpm.Open(spec)
	must(t, err)
	f, err := workstationWith(tp, bootDir, "12345678\n")
	must(t, err)
	f.OpenDongle = open
	if _, err := f.NewTOTPURI(true); err != nil {
		t.Fatalf("seal with --hotp: %v", err)
	}
	tp.Shutdown()
	tp.Close()
	if c, ok := sim.SlotCounter(); !ok || c != 0 {
		t.Fatalf("dongle slot not programmed at counter 0 (ok=%v, counter=%d)", ok, c)
	}

	show := func() string {
		spec := swtpmtest.StartDir(t, tpm.Version20, tpmDir)
		tp, err := tpm.Open(spec)
		must(t, err)
		defer func() { tp.Shutdown(); tp.Close() }()
		var out bytes.Buffer
		f, err := workstationWith(tp, bootDir, "")
		must(t, err)
		f.Con = NewConsole(strings.NewReader(""), &out)
		f.OpenDongle = open
		f.ShowTOTP()
		return out.String()
	}
	for i := 0; i < 2; i++ {
		if out := show(); !strings.Contains(out, "HOTP: VALID") {
			t.Fatalf("boot %d: dongle did not accept the code:\n%s", i, out)
		}
	}
	// An attacker who edits the counter (to replay an old code) without the
	// secret is caught by the counter's MAC.
	path := filepath.Join(bootDir, HOTPCounterFile)
	b, _ := os.ReadFile(path)
	must(t, os.WriteFile(path, bytes.Replace(b, []byte("counter 2"), []byte("counter 0"), 1), 0o644))
	if out := show(); !strings.Contains(out, "HOTP: counter file refused") {
		t.Fatalf("edited counter accepted:\n%s", out)
	}
}

func workstationWith(tp tpm.TPM, bootDir, input string) (*Flow, error) {
	f, err := Workstation(tp, bootDir, pcrCoreboot(), ownerDefault(), strings.NewReader(input), &bytes.Buffer{})
	return f, err
}

// Without a TPM, the HOTP secret is the firmware image's hash (Heads'
// fallback): the dongle goes red when the image changes, and the screen
// says how little that proves.
func TestNoTPMHOTPFromROMHash(t *testing.T) {
	sim := dongletest.New()
	sim.BusyPolls = 0
	rom := bytes.Repeat([]byte("coreboot"), 4096)
	sum := sha256.Sum256(rom)
	if err := dongle.Program(plugged{sim}, []byte("12345678"), sum[:20], 0); err != nil {
		t.Fatal(err)
	}
	bootDir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(bootDir, "glint"), 0o755))
	must(t, otp.WriteCounter(filepath.Join(bootDir, HOTPCounterFile), sum[:20], 0))
	boot := func(image []byte) string {
		var out bytes.Buffer
		f := &Flow{Con: NewConsole(strings.NewReader(""), &out), J: NewJournal(nil, nil), BootDir: bootDir,
			OpenDongle: func() (dongle.Device, error) { return plugged{sim}, nil },
			ROMImage:   func() ([]byte, error) { return image, nil }}
		f.ShowTOTP()
		return out.String()
	}
	if out := boot(rom); !strings.Contains(out, "NO TPM") || !strings.Contains(out, "HOTP: VALID") {
		t.Fatalf("unchanged image:\n%s", out)
	}
	evil := append(append([]byte(nil), rom...), "evil"...)
	if out := boot(evil); !strings.Contains(out, "HOTP: counter file refused") && !strings.Contains(out, "HOTP: INVALID") {
		t.Fatalf("changed image not refused:\n%s", out)
	}
}
