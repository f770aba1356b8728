package reown

import (
	"bytes"
	"context"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glint-boot/glint/internal/card"
	"github.com/glint-boot/glint/internal/card/cardsim"
	"github.com/glint-boot/glint/internal/manifest"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/rom"
	"github.com/glint-boot/glint/internal/sealed"
	"github.com/glint-boot/glint/internal/tpm"
	"github.com/glint-boot/glint/internal/tpm/swtpmtest"
)

// bench is one emulated machine on the host: a real swtpm (its state
// directory is the chip), a /boot directory, a coreboot-style image file
// made with the real cbfstool (the flash chip), a simulated OpenPGP card,
// a directory standing for the owner's USB drive.
type bench struct {
	t       *testing.T
	version tpm.Version
	tpmDir  string
	spec    string
	bootDir string
	rom     string
	usb     string
	sim     *cardsim.Card
	now     time.Time
}

func newBench(t *testing.T, v tpm.Version) *bench {
	t.Helper()
	for _, tool := range []string{"cbfstool", "fmaptool"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (scripts/install-deps.sh installs coreboot-utils)", tool)
		}
	}
	dir := t.TempDir()
	b := &bench{t: t, version: v, tpmDir: filepath.Join(dir, "tpm"), bootDir: filepath.Join(dir, "boot"),
		rom: filepath.Join(dir, "flash.rom"), usb: filepath.Join(dir, "usb"),
		now: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}
	for _, d := range []string{b.tpmDir, b.usb, filepath.Join(b.bootDir, "grub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b.spec = swtpmtest.StartDir(t, v, b.tpmDir)
	rnd := rand.New(rand.NewSource(1))
	kernel := make([]byte, 200_000)
	rnd.Read(kernel)
	write(t, filepath.Join(b.bootDir, "vmlinuz-6.1.0-test"), kernel)
	write(t, filepath.Join(b.bootDir, "initrd.img-6.1.0-test"), kernel[:50_000])
	write(t, filepath.Join(b.bootDir, "grub", "grub.cfg"), []byte("menuentry 'Debian' {\n linux /vmlinuz-6.1.0-test root=/dev/vda2\n initrd /initrd.img-6.1.0-test\n}\n"))
	write(t, b.rom, makeImage(t, v))
	sim, err := cardsim.New(cardsim.Options{Path: filepath.Join(dir, "card.json")})
	if err != nil {
		t.Fatal(err)
	}
	b.sim = sim
	return b
}

func write(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// makeImage builds a 16 MiB coreboot-style image with fmaptool and
// cbfstool: a flash map, a COREBOOT CBFS with the build's config (TPM
// family, measured boot) and a payload, as coreboot's build leaves it.
func makeImage(t *testing.T, v tpm.Version) []byte {
	t.Helper()
	dir := t.TempDir()
	fmd := "FLASH@0xff000000 0x1000000 {\n\tBIOS@0 0x1000000 {\n\t\tFMAP@0 0x200\n\t\tCOREBOOT(CBFS)@0x200 0xfffe00\n\t}\n}\n"
	write(t, filepath.Join(dir, "l.fmd"), []byte(fmd))
	run(t, "fmaptool", filepath.Join(dir, "l.fmd"), filepath.Join(dir, "l.fmap"))
	romPath := filepath.Join(dir, "rom.bin")
	run(t, "cbfstool", romPath, "create", "-M", filepath.Join(dir, "l.fmap"), "-r", "COREBOOT")
	family := "CONFIG_TPM2=y\n"
	if v == tpm.Version12 {
		family = "CONFIG_TPM1=y\n"
	}
	add := func(name string, data []byte) {
		p := filepath.Join(dir, "f-"+strings.ReplaceAll(name, "/", "_"))
		write(t, p, data)
		run(t, "cbfstool", romPath, "add", "-f", p, "-n", name, "-t", "raw")
	}
	add("build_info", []byte("COREBOOT_VERSION: test\nMAINBOARD_VENDOR: Emulation\nMAINBOARD_PART_NUMBER: QEMU q35\n"))
	add("config", []byte(family+"CONFIG_TPM_MEASURED_BOOT=y\nCONFIG_BOARD_EMULATION_QEMU_X86_Q35=y\n"))
	pay := make([]byte, 1_000_000)
	rand.New(rand.NewSource(2)).Read(pay)
	add("fallback/payload", pay)
	img, err := os.ReadFile(romPath)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

func (b *bench) openTPM() tpm.TPM {
	b.t.Helper()
	dev, err := tpm.Open(b.spec)
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { dev.Close() })
	return dev
}

// powerCycle restarts swtpm on the same state (PCRs reset, NV kept) and
// powers the card off, as a power cut does.
func (b *bench) powerCycle() {
	b.t.Helper()
	b.spec = swtpmtest.StartDir(b.t, b.version, b.tpmDir)
	b.sim.PowerOff()
}

// out collects what the wizard shows.
type out struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *out) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *out) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// wizard returns a wizard for the bench answering from answers.
func (b *bench) wizard(answers string, o *out, withCard bool) (*Wizard, tpm.TPM) {
	b.t.Helper()
	a, err := ParseAnswers([]byte(answers))
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(a.Wipe)
	dev := b.openTPM()
	w := &Wizard{
		UI: &AnswersUI{Answers: a, Out: o}, TPM: dev, BootDir: b.bootDir,
		Firmware: &ImageFile{Path: b.rom}, Where: InFirmware, DefaultBackupDir: b.usb,
		Now: func() time.Time { return b.now },
		Sealing: func() (*sealed.State, error) {
			s := sealed.New(dev, pcr.Coreboot, b.bootDir)
			s.Now = func() time.Time { return b.now }
			return s, s.RecordStart()
		},
	}
	if withCard {
		w.OpenCard = func() (*card.Card, string, error) {
			c, err := card.Open(b.sim.Transport(true))
			return c, "the simulated card", err
		}
	}
	return w, dev
}

func (b *bench) run(answers string, withCard bool) (string, error) {
	b.t.Helper()
	o := &out{}
	w, _ := b.wizard(answers, o, withCard)
	_, err := w.Run(context.Background())
	return o.String(), err
}

// ownerFiles are the owner files of the bench's image now.
func (b *bench) ownerFiles() map[string][]byte {
	b.t.Helper()
	img, err := rom.FromFile(b.rom)
	if err != nil {
		b.t.Fatal(err)
	}
	files, err := rom.OwnerFiles(img)
	if err != nil {
		b.t.Fatal(err)
	}
	return files
}

// nextBoot powers the machine off and on and measures the image's owner
// files into PCR 7 as glint does at boot; it returns the TPM and the
// measured state for unsealing.
func (b *bench) nextBoot() (tpm.TPM, *sealed.State) {
	b.t.Helper()
	b.powerCycle()
	dev := b.openTPM()
	s := sealed.New(dev, pcr.Coreboot, b.bootDir)
	if err := s.RecordStart(); err != nil {
		b.t.Fatal(err)
	}
	for _, m := range pcr.OwnerFiles(b.ownerFiles()) {
		if err := s.Measure(m); err != nil {
			b.t.Fatal(err)
		}
	}
	return dev, s
}

// keyring is the owner key in the image.
func (b *bench) keyring() []byte { return b.ownerFiles()[rom.OwnerKeyFile] }

// verifyBoot checks /boot against the image's owner key and the TPM's
// counter.
func (b *bench) verifyBoot(dev tpm.TPM) error {
	kr, err := manifest.ReadKeyring(b.keyring())
	if err != nil {
		return err
	}
	_, err = manifest.Verify(b.bootDir, kr, dev)
	return err
}

var codeRE = regexp.MustCompile(`TOTP code now: (\d{6})`)
