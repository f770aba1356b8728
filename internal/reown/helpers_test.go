package reown

import (
	"bytes"
	"context"
	"math/rand"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/glint-boot/glint/internal/card"
	"github.com/glint-boot/glint/internal/card/cardsim"
	"github.com/glint-boot/glint/internal/manifest"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/rom"
	"github.com/glint-boot/glint/internal/rom/romtest"
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
	romtest.Need(t)
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

// makeImage is the emulated laptop's firmware image (package romtest).
func makeImage(t *testing.T, v tpm.Version) []byte {
	return romtest.Make(t, romtest.Spec{TPM: int(v), PayloadSeed: 2})
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
