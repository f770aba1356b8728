package flash

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/manifest"
)

// publisher is a real gpg key in a temporary GNUPGHOME, as a firmware
// publisher would sign with.
type publisher struct {
	home, id string
	public   []byte
}

func newPublisher(t testing.TB, name string) *publisher {
	t.Helper()
	gpgBin := needTool(t, "gpg")
	home, err := os.MkdirTemp("/tmp", "glint-gpg-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(home, 0o700)
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
		os.RemoveAll(home)
	})
	g := func(args ...string) []byte {
		out, err := exec.Command(gpgBin, append([]string{"--homedir", home, "--no-tty", "--quiet", "--batch"}, args...)...).Output()
		if err != nil {
			t.Fatalf("gpg %v: %v", args, err)
		}
		return out
	}
	g("--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", name+" <release@example.org>", "ed25519", "sign", "never")
	var id string
	for _, l := range strings.Split(string(g("--with-colons", "--list-keys")), "\n") {
		if f := strings.Split(l, ":"); f[0] == "pub" && len(f) > 4 {
			id = f[4]
		}
	}
	return &publisher{home: home, id: id, public: g("--armor", "--export", id)}
}

func (p *publisher) signer() manifest.Signer { return &manifest.GPG{Home: p.home, KeyID: p.id} }

func TestBundleRoundTripAndRefusals(t *testing.T) {
	pub := newPublisher(t, "Firmware Publisher")
	keys, err := manifest.ReadKeyring(pub.public)
	if err != nil {
		t.Fatal(err)
	}
	image := bytes.Repeat([]byte("coreboot image bytes "), 3000)
	raw, err := BuildBundle(image, "Emulation QEMU x86 q35/ich9", "glint 2.0", pub.signer())
	if err != nil {
		t.Fatal(err)
	}
	if !IsBundle(raw) || IsBundle(image) {
		t.Fatal("IsBundle")
	}
	b, err := ParseBundle(raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Verify(keys); err != nil {
		t.Fatal(err)
	}
	if b.Board != "Emulation QEMU x86 q35/ich9" || b.Release != "glint 2.0" || !bytes.Equal(b.Image, image) {
		t.Fatalf("%+v", b)
	}

	imageAt := 8 + 2 + 1 + len(b.Board) + 1 + len(b.Release) + 4 + 32
	sigAt := imageAt + len(image) + 2
	flip := func(at int) []byte { c := bytes.Clone(raw); c[at] ^= 1; return c }
	other := newPublisher(t, "Someone Else")
	forged, err := BuildBundle(image, b.Board, b.Release, other.signer())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		bundle []byte
		want   error
		says   string
	}{
		{"truncated in the header", raw[:20], ErrTruncated, "ends early"},
		{"truncated in the image", raw[:imageAt+1000], ErrTruncated, "announces 63000 image bytes, 1000 remain"},
		{"truncated before the signature", raw[:imageAt+len(image)], ErrTruncated, "signature is missing"},
		{"truncated in the signature", raw[:len(raw)-10], ErrTruncated, ""},
		{"one image bit flipped", flip(imageAt + 500), ErrChecksum, "damaged"},
		{"release label changed", flip(8 + 2 + 1 + len(b.Board) + 1), ErrSignature, ""},
		{"signature damaged", flip(sigAt + 100), ErrSignature, ""},
		{"signed by another key", forged, ErrSignature, "not the publisher key"},
		{"bytes appended", append(bytes.Clone(raw), 0), ErrBundle, "after the signature"},
		{"a raw image", image, ErrBundle, "not a glint update bundle"},
		{"version 2", func() []byte { c := bytes.Clone(raw); c[8] = 2; return c }(), ErrBundle, "update glint first"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := ParseBundle(tc.bundle)
			if err == nil {
				_, _, err = b.Verify(keys)
			}
			var be *BundleError
			if !errors.Is(err, tc.want) || !errors.As(err, &be) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("got %v, want %v saying %q", err, tc.want, tc.says)
			}
		})
	}
}

func TestUpdateFromBundle(t *testing.T) {
	pub := newPublisher(t, "Firmware Publisher")
	owner := map[string][]byte{"glint/" + PublisherKeyFile: pub.public, "glint/owner.asc": []byte("owner key\n")}
	board := imageSpec{vendor: "Emulation", part: "QEMU x86 q35/ich9", payload: 1, owner: owner}
	old := makeImage(t, board)
	board.payload = 2
	next := makeImage(t, board)
	other := board
	other.part = "QEMU x86 i440fx/piix4"
	otherImg := makeImage(t, other)

	good, err := BuildBundle(next, "Emulation QEMU x86 q35/ich9", "2.0", pub.signer())
	if err != nil {
		t.Fatal(err)
	}
	forger := newPublisher(t, "Forger")
	forged, _ := BuildBundle(next, "Emulation QEMU x86 q35/ich9", "2.0", forger.signer())
	// Validly signed, but for another board (the publisher's mistake, or
	// a bundle for the owner's other machine).
	wrongBoard, _ := BuildBundle(otherImg, "Emulation QEMU x86 i440fx/piix4", "2.0", pub.signer())
	// Validly signed, label lying about the board.
	lying, _ := BuildBundle(otherImg, "Emulation QEMU x86 q35/ich9", "2.0", pub.signer())

	for _, tc := range []struct {
		name string
		raw  []byte
		want error
		says string
	}{
		{"forged signature", forged, ErrSignature, "not the publisher key"},
		{"for another board", wrongBoard, ErrWrongBoard, `the image is for "Emulation QEMU x86 i440fx/piix4"`},
		{"board label lies", lying, ErrWrongBoard, "the bundle says it is for"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chip := newDummyChip(t, old)
			b, err := ParseBundle(tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			backups := filepath.Join(t.TempDir(), "b")
			_, err = (&Update{Device: chip.dev, Bundle: b, BackupDir: backups}).Run(ctx(t))
			if !errors.Is(err, tc.want) || !IsNotWritten(err) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("%v", err)
			}
			mustEqual(t, "chip", chip.contents(t), old)
			if _, err := os.Stat(backups); !os.IsNotExist(err) {
				t.Error("a refused bundle left a backup directory")
			}
		})
	}

	chip := newDummyChip(t, old)
	b, err := ParseBundle(good)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	if _, err := (&Update{Device: chip.dev, Bundle: b, BackupDir: t.TempDir(), Log: &log}).Run(ctx(t)); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	mustEqual(t, "chip", chip.contents(t), next)
	if !strings.Contains(log.String(), "bundle signature verified") || !strings.Contains(log.String(), "current firmware's glint/publisher.asc") {
		t.Errorf("log:\n%s", log.String())
	}
}
