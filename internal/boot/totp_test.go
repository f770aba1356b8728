package boot

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/otp"
	"github.com/glint-boot/glint/internal/otp/dongle"
	"github.com/glint-boot/glint/internal/otp/dongle/dongletest"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/sealed"
	"github.com/glint-boot/glint/internal/tpm"
	"github.com/glint-boot/glint/internal/tpm/swtpmtest"
)

// plugged keeps the simulated dongle "plugged in" across Close calls. The
// simulator is written from the Nitrokey Pro protocol notes (no dongle can
// be attached here); it cannot show the LED, touch or firmware timing.
type plugged struct{ *dongletest.Sim }

func (plugged) Close() error { return nil }

// romImage is a Firmware with no log whose image is fixed: it stands in for
// /dev/mem, which a test process cannot map.
type romImage []byte

func (romImage) Events(tpm.Alg) []eventlog.EventRecord { return nil }
func (r romImage) Image() ([]byte, error)              { return r, nil }
func (romImage) Log() ([]byte, error)                  { return nil, eventlog.ErrNotFound }

// Without a TPM, the HOTP secret is the firmware image's hash (Heads'
// fallback): the dongle goes red when the image changes, and the screen
// says how little that proves.
func TestNoTPMHOTPFromROMHash(t *testing.T) {
	sim := dongletest.New()
	sim.BusyPolls = 0
	rom := bytes.Repeat([]byte("coreboot"), 4096)
	if err := dongle.Program(plugged{sim}, []byte("12345678"), sealed.ROMSecret(rom), 0); err != nil {
		t.Fatal(err)
	}
	bootDir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(bootDir, "glint"), 0o755))
	must(t, otp.WriteCounter(filepath.Join(bootDir, sealed.HOTPCounterFile), sealed.ROMSecret(rom), 0))
	boot := func(image []byte) string {
		var out bytes.Buffer
		f := &Flow{Con: NewConsole(strings.NewReader(""), &out), J: NewJournal(nil, nil), BootDir: bootDir,
			Machine: &fakeMachine{dongle: plugged{sim}}, Firmware: romImage(image)}
		f.openTPM()
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

// With a TPM and the dongle programmed with the sealed secret (glint otp
// seal --hotp), every boot's TOTP step also has the dongle check a code.
func TestBootChecksHOTPWithDongle(t *testing.T) {
	sim := dongletest.New()
	sim.BusyPolls = 0
	bootDir, tpmDir := t.TempDir(), t.TempDir()
	tp, err := tpm.Open(swtpmtest.StartDir(t, tpm.Version20, tpmDir))
	must(t, err)
	s := sealed.New(tp, pcr.Coreboot, bootDir)
	must(t, s.RecordStart())
	sec, err := s.SealNewTOTP()
	must(t, err)
	must(t, s.ProgramDongle(plugged{sim}, sec, func(int) ([]byte, error) { return []byte("12345678"), nil }))
	tp.Shutdown()
	tp.Close()

	for i := 0; i < 2; i++ {
		var out bytes.Buffer
		src := &openTPM{spec: swtpmtest.StartDir(t, tpm.Version20, tpmDir)}
		f := &Flow{Con: NewConsole(strings.NewReader(""), &out), J: NewJournal(nil, nil), BootDir: bootDir,
			Machine: &fakeMachine{dongle: plugged{sim}}, TPM: src, Profile: pcr.Coreboot,
			BuildTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		f.openTPM()
		f.ShowTOTP()
		src.opened.Close()
		if !strings.Contains(out.String(), "TOTP code:") || !strings.Contains(out.String(), "HOTP: VALID") {
			t.Fatalf("boot %d: no code or the dongle refused it:\n%s", i, out.String())
		}
	}
}

// A dual-boot machine whose RTC runs on local time (2 h ahead of UTC) shows
// codes two hours off; the owner types the phone's code and glint says why.
func TestPhoneCodeFindsLocalTimeRTC(t *testing.T) {
	bootDir := t.TempDir()
	src := &openTPM{spec: swtpmtest.Start(t, tpm.Version20)}
	var out bytes.Buffer
	rtcNow := time.Now()
	f := &Flow{Con: NewConsole(strings.NewReader(""), &out), J: NewJournal(nil, nil), BootDir: bootDir,
		TPM: src, Profile: pcr.Coreboot, Now: func() time.Time { return rtcNow }}
	f.openTPM()
	defer src.opened.Close()
	sec, err := f.state.SealNewTOTP()
	must(t, err)

	phone, err := otp.TOTP(otp.SHA1, sec, rtcNow.Add(-2*time.Hour), 30*time.Second, 6)
	must(t, err)
	f.Con = NewConsole(strings.NewReader(otp.FormatCode(phone, 6)+"\n"), &out)
	f.checkPhoneCode()
	if !strings.Contains(out.String(), "2 hours ahead") {
		t.Fatalf("local-time RTC not recognised:\n%s", out.String())
	}
}
