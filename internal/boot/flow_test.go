package boot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/glint-boot/glint/internal/kexec"
	"github.com/glint-boot/glint/internal/netconf"
	"github.com/glint-boot/glint/internal/otp"
	"github.com/glint-boot/glint/internal/otp/dongle"
	"github.com/glint-boot/glint/internal/ownerconfig"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/rom"
	"github.com/glint-boot/glint/internal/tpm"
	"github.com/glint-boot/glint/internal/tpm/swtpmtest"
	"github.com/glint-boot/glint/internal/usbboot"
)

// fakeMachine records the side effects the flow asks for. It stands in for
// kexec, reboot and the shell, which cannot run in a test process; the TPM,
// the keys and /boot are real.
type fakeMachine struct {
	key      []byte
	kexecs   []kexec.Image
	reboots  int
	poweroff int
	dongle   dongle.Device // nil: none plugged in
	// usb is a directory standing in for a mounted USB stick ("": none);
	// root for the mounted root file system. Mounting is the kernel's and
	// runs on the emulated laptop (e2e/media_test.go).
	usb, root string
	// networkUps counts NetworkUp calls (the attestation report's).
	networkUps int
}

func (m *fakeMachine) USBStorage() usbboot.Storage { return dirStorage(m.usb) }

// NetworkUp: the test's attestation server listens on the host's loopback,
// which needs no configuring (netconf itself is tested against a real DHCP
// server across network namespaces).
func (m *fakeMachine) NetworkUp(ctx context.Context, cfg netconf.Config) (string, error) {
	m.networkUps++
	return "loopback (test)", nil
}
func (m *fakeMachine) MountRoot(spec string) (string, func(), error) {
	if m.root == "" {
		return "", nil, errors.New("no root file system " + spec)
	}
	return m.root, func() {}, nil
}

// dirStorage is a mounted stick as a directory.
type dirStorage string

func (d dirStorage) MountAll() ([]usbboot.Mount, error) {
	if d == "" {
		return nil, nil
	}
	return []usbboot.Mount{{Device: "/dev/sdb1", Dir: string(d)}}, nil
}
func (d dirStorage) UnmountAll() error { return nil }

func (m *fakeMachine) PowerOff() error { m.poweroff++; return errors.New("powered off (test)") }
func (m *fakeMachine) Reboot() error   { m.reboots++; return nil }
func (m *fakeMachine) Kexec(img kexec.Image) error {
	img.ExtraInitrd = append([]byte(nil), img.ExtraInitrd...)
	m.kexecs = append(m.kexecs, img)
	return errors.New("kexec not possible in a test")
}
func (m *fakeMachine) SetClock(time.Time) error { return nil }
func (m *fakeMachine) RemountBoot(bool) error   { return nil }
func (m *fakeMachine) OwnerKeyMedia() ([]KeyFile, error) {
	return []KeyFile{{Where: "test-stick", Data: m.key}}, nil
}
func (m *fakeMachine) Dongle() (dongle.Device, error) {
	if m.dongle == nil {
		return nil, dongle.ErrNoDongle
	}
	return m.dongle, nil
}

// openTPM is a TPMSource that opens a swtpm and keeps it for the test.
type openTPM struct {
	spec   string
	opened tpm.TPM
}

func (o *openTPM) OpenTPM() (tpm.TPM, error) {
	t, err := tpm.Open(o.spec)
	o.opened = t
	return t, err
}

const ownerPass = "owner-pass"

// ownerKeys makes a real OpenPGP key with gpg: public (for the firmware) and
// passphrase-protected secret (for the key stick).
func ownerKeys(tb testing.TB) (pub, sec []byte) {
	tb.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		tb.Skip("gpg not installed (make deps installs it)")
	}
	home := tb.TempDir()
	tb.Cleanup(func() { exec.Command("gpgconf", "--homedir", home, "--kill", "gpg-agent").Run() })
	gpg := func(args ...string) []byte {
		c := exec.Command("gpg", append([]string{"--homedir", home, "--batch", "--pinentry-mode", "loopback", "--passphrase", ownerPass}, args...)...)
		out, err := c.Output()
		if err != nil {
			tb.Fatalf("gpg %v: %v", args, err)
		}
		return out
	}
	gpg("--quick-gen-key", "Test Owner <owner@example.org>", "ed25519", "sign", "never")
	return gpg("--armor", "--export"), gpg("--armor", "--export-secret-keys")
}

type bench struct {
	t       *testing.T
	tpmDir  string
	bootDir string
	machine *fakeMachine
	pub     []byte
	// ownerFiles are added to the firmware's owner files (owner.asc is
	// always there).
	ownerFiles map[string][]byte
	// firmwareLocksPlatform: before glint runs, "firmware" sets a random
	// platform authorisation, as OVMF does.
	firmwareLocksPlatform bool
	// last is the flow of the last power-on, for tests that look at its state.
	last *Flow
	// countdown before the default entry boots (0: at once); a test that
	// wants the menu of a verified boot sets it and starts its input with
	// an empty line.
	countdown int
}

func newBench(t *testing.T, v tpm.Version) *bench {
	pub, sec := ownerKeys(t)
	b := &bench{t: t, tpmDir: t.TempDir(), bootDir: t.TempDir(), machine: &fakeMachine{key: sec}, pub: pub}
	must(t, os.MkdirAll(filepath.Join(b.bootDir, "grub"), 0o755))
	must(t, os.WriteFile(filepath.Join(b.bootDir, "vmlinuz-6.1.0-test"), bytes.Repeat([]byte("K"), 100000), 0o644))
	must(t, os.WriteFile(filepath.Join(b.bootDir, "initrd.img-6.1.0-test"), bytes.Repeat([]byte("I"), 200000), 0o644))
	must(t, os.WriteFile(filepath.Join(b.bootDir, "grub", "grub.cfg"), []byte(
		"set default=0\nmenuentry 'Debian GNU/Linux' {\n  linux /vmlinuz-6.1.0-test root=/dev/vda2 ro quiet\n  initrd /initrd.img-6.1.0-test\n}\n"), 0o644))
	return b
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// power boots the machine once: a fresh swtpm process on the same state (PCRs
// reset, NV kept), then the whole flow with the given console input.
func (b *bench) power(v tpm.Version, input string) string {
	b.t.Helper()
	return b.powerMachine(b.machine, v, input)
}

// powerMachine is power with another Machine (re-ownership needs one that
// can write the flash: reown_test.go).
func (b *bench) powerMachine(machine Machine, v tpm.Version, input string) string {
	b.t.Helper()
	spec := swtpmtest.StartDir(b.t, v, b.tpmDir)
	if b.firmwareLocksPlatform {
		fw, err := tpm.Open(spec)
		must(b.t, err)
		must(b.t, fw.LockPlatform()) // the firmware's own random platform auth
		fw.Close()
	}
	var out bytes.Buffer
	src := &openTPM{spec: spec}
	f := &Flow{
		Con: NewConsole(strings.NewReader(input), &out), J: NewJournal(nil, nil),
		Machine: machine, TPM: src,
		BootDir: b.bootDir, OwnerFiles: b.firmwareFiles(),
		Config: ownerconfig.Default(), Profile: pcr.Coreboot,
		BuildTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	if raw, ok := b.ownerFiles[rom.OwnerConfigFile]; ok {
		c, err := ownerconfig.Parse(raw)
		must(b.t, err)
		f.Config = c // as init does with the measured glint/config
	}
	f.Config.Countdown = b.countdown
	b.last = f
	err := f.Run()
	if src.opened != nil {
		src.opened.Close()
	}
	if err != nil && !errors.Is(err, ErrNoInput) && !strings.Contains(err.Error(), "powered off") {
		b.t.Fatalf("Run: %v\n%s", err, out.String())
	}
	return out.String()
}

var uriRE = regexp.MustCompile(`otpauth://totp/[^\s]+`)

func secretFromOutput(t *testing.T, out string) []byte {
	t.Helper()
	m := uriRE.FindString(out)
	if m == "" {
		t.Fatalf("no otpauth URI in output:\n%s", out)
	}
	u, err := url.Parse(m)
	must(t, err)
	k, err := otp.ParseURI(u.String())
	must(t, err)
	return k.Secret
}

func TestFlowSetupTOTPAndKexec(t *testing.T) {
	for _, v := range []tpm.Version{tpm.Version20, tpm.Version12} {
		t.Run(v.String(), func(t *testing.T) {
			b := newBench(t, v)
			out := b.power(v, ownerPass+"\ny\n\n")
			if !strings.Contains(out, "OWNER SET-UP") || !strings.Contains(out, "Set-up complete") || b.machine.reboots != 1 {
				t.Fatalf("first boot did not set up and reboot (reboots=%d):\n%s", b.machine.reboots, out)
			}
			secret := secretFromOutput(t, out)

			out = b.power(v, "")
			now := time.Now()
			want := map[string]bool{}
			for _, d := range []time.Duration{-30 * time.Second, 0, 30 * time.Second} {
				c, _ := otp.TOTP(otp.SHA1, secret, now.Add(d), 30*time.Second, 6)
				want[otp.FormatCode(c, 6)] = true
			}
			m := regexp.MustCompile(`TOTP code: (\d{6})`).FindStringSubmatch(out)
			if m == nil || !want[m[1]] {
				t.Fatalf("second boot: TOTP code missing or wrong (want one of %v):\n%s", want, out)
			}
			if !strings.Contains(out, "/boot: verified") {
				t.Fatalf("second boot: /boot not verified:\n%s", out)
			}
			if len(b.machine.kexecs) != 1 {
				t.Fatalf("second boot: %d kexecs, want 1:\n%s", len(b.machine.kexecs), out)
			}
			img := b.machine.kexecs[0]
			kernel, _ := os.ReadFile(filepath.Join(b.bootDir, "vmlinuz-6.1.0-test"))
			if sha256.Sum256(img.Kernel.Data) != sha256.Sum256(kernel) || img.Cmdline != "root=/dev/vda2 ro quiet" || len(img.Initrds) != 1 {
				t.Fatalf("kexec image: kernel %d bytes, cmdline %q, %d initrds", len(img.Kernel.Data), img.Cmdline, len(img.Initrds))
			}
		})
	}
}

func TestFlowTamperAndRecovery(t *testing.T) {
	v := tpm.Version20
	b := newBench(t, v)
	b.power(v, ownerPass+"\ny\n\n")

	// An evil maid appends to the kernel: named, and nothing boots.
	kpath := filepath.Join(b.bootDir, "vmlinuz-6.1.0-test")
	orig, _ := os.ReadFile(kpath)
	must(t, os.WriteFile(kpath, append(append([]byte(nil), orig...), "evil"...), 0o644))
	out := b.power(v, "d\np\n")
	if !regexp.MustCompile(`TAMPER: changed: "?vmlinuz-6.1.0-test`).MatchString(out) || len(b.machine.kexecs) != 0 {
		t.Fatalf("modified kernel not refused by name (kexecs=%d):\n%s", len(b.machine.kexecs), out)
	}
	if !strings.Contains(out, "refusing to boot") {
		t.Fatalf("'d' on a tampered /boot did not refuse:\n%s", out)
	}
	must(t, os.WriteFile(kpath, orig, 0o644))

	// Recovery shell: the owner authenticates, PCR 4 is extended first, and
	// the TOTP secret no longer unseals in this boot.
	out = b.power(v, "\nx\n"+ownerPass+"\nls /\nexit\no\np\n")
	if !strings.Contains(out, "glint-recovery# ") {
		t.Fatalf("recovery shell not started:\n%s", out)
	}
	after := out[strings.Index(out, "RECOVERY SHELL"):]
	if !strings.Contains(after, "TOTP REFUSED") || !strings.Contains(after, "PCR 4 changed") {
		t.Fatalf("TOTP still unseals after the recovery shell, or PCR 4 not named:\n%s", after)
	}
	// Next power-on is normal again.
	out = b.power(v, "")
	if !strings.Contains(out, "TOTP code:") {
		t.Fatalf("TOTP not back after reboot:\n%s", out)
	}
}

// The owner changes their configuration in the firmware (PCR 7 moves): the
// TOTP is refused with PCR 7 named, and after authenticating the owner
// reseals and the next boot shows a code for the new secret again.
func TestFlowResealAfterLegitimateChange(t *testing.T) {
	for _, v := range []tpm.Version{tpm.Version20, tpm.Version12} {
		t.Run(v.String(), func(t *testing.T) {
			b := newBench(t, v)
			b.power(v, ownerPass+"\ny\n\n")
			b.ownerFiles = map[string][]byte{"config": []byte("countdown = 0\n")}
			out := b.power(v, "r\n"+ownerPass+"\np\n")
			if !strings.Contains(out, "TOTP REFUSED") || !strings.Contains(out, "PCR 7 changed") {
				t.Fatalf("changed owner config not named:\n%s", out)
			}
			after := out[strings.Index(out, "A NEW TOTP secret"):]
			secret := secretFromOutput(t, after)
			if !strings.Contains(after, "TOTP code:") {
				t.Fatalf("no code after resealing:\n%s", after)
			}
			out = b.power(v, "")
			m := regexp.MustCompile(`TOTP code: (\d{6})`).FindStringSubmatch(out)
			now := time.Now()
			ok := false
			for _, d := range []time.Duration{-30 * time.Second, 0, 30 * time.Second} {
				c, _ := otp.TOTP(otp.SHA1, secret, now.Add(d), 30*time.Second, 6)
				ok = ok || (m != nil && m[1] == otp.FormatCode(c, 6))
			}
			if !ok {
				t.Fatalf("next boot does not show the resealed secret's code:\n%s", out)
			}
		})
	}
}

func (b *bench) firmwareFiles() map[string][]byte {
	files := map[string][]byte{rom.OwnerKeyFile: b.pub}
	for n, c := range b.ownerFiles {
		files[n] = c
	}
	return files
}
