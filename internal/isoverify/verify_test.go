package isoverify

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/glint-boot/glint/internal/gpgtest"
)

const isoName = "distro-1.0-amd64.iso"

// release is a directory laid out as a distribution mirror: an image and
// whatever files the test adds beside it.
type release struct {
	dir  string
	iso  []byte
	path string
}

func newRelease(t *testing.T) *release {
	t.Helper()
	dir := t.TempDir()
	iso := make([]byte, 3<<20+12345) // spans several of Verify's 1 MiB reads
	rand.New(rand.NewSource(1)).Read(iso)
	p := filepath.Join(dir, isoName)
	if err := os.WriteFile(p, iso, 0o644); err != nil {
		t.Fatal(err)
	}
	return &release{dir: dir, iso: iso, path: p}
}

// sh runs a real coreutils command in the release directory and writes its
// output to out.
func (r *release) sh(t *testing.T, out string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = r.dir
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	if err := os.WriteFile(filepath.Join(r.dir, out), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (r *release) file(name string) string { return filepath.Join(r.dir, name) }

func (r *release) verify(t *testing.T, kr *Keyring, opts Options) (*Result, error) {
	t.Helper()
	f, err := os.Open(r.path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return Verify(Image{Name: isoName, R: f, Size: int64(len(r.iso))}, os.DirFS(r.dir), kr, opts)
}

// tamper flips one byte of the image on disk, as a modified download would.
func (r *release) tamper(t *testing.T) {
	t.Helper()
	b := bytes.Clone(r.iso)
	b[2<<20+7] ^= 0x40
	if err := os.WriteFile(r.path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func keyringOf(t *testing.T, distro *gpgtest.Key, owner *gpgtest.Key) *Keyring {
	t.Helper()
	var dk []TrustedKey
	if distro != nil {
		var err error
		if dk, err = ParseDistributionKeys(distro.Public, "test"); err != nil {
			t.Fatal(err)
		}
	}
	var ok openpgp.EntityList
	if owner != nil {
		el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(owner.Public))
		if err != nil {
			t.Fatal(err)
		}
		ok = el
	}
	return NewKeyring(ok, dk)
}

// Each way distributions publish signatures, made with the real gpg and
// coreutils, verifies; the same files over a changed image are TAMPERED and
// the error names the image and the file that says so.
func TestDistributionLayouts(t *testing.T) {
	distro := gpgtest.NewKey(t, "Test Distribution", "rsa3072")
	kr := keyringOf(t, distro, nil)
	layouts := map[string]func(t *testing.T, r *release){
		"tails: armored .sig over the image": func(t *testing.T, r *release) {
			distro.DetachSign(t, r.path, r.file(isoName+".sig"), true)
		},
		"arch: binary .sig over the image": func(t *testing.T, r *release) {
			distro.DetachSign(t, r.path, r.file(isoName+".sig"), false)
		},
		"qubes: .asc over the image": func(t *testing.T, r *release) {
			distro.DetachSign(t, r.path, r.file(isoName+".asc"), true)
		},
		"debian: SHA512SUMS + SHA512SUMS.sign": func(t *testing.T, r *release) {
			r.sh(t, "SHA512SUMS", "sha512sum", isoName)
			distro.DetachSign(t, r.file("SHA512SUMS"), r.file("SHA512SUMS.sign"), true)
		},
		"ubuntu: SHA256SUMS (binary mode) + SHA256SUMS.gpg": func(t *testing.T, r *release) {
			r.sh(t, "SHA256SUMS", "sha256sum", "--binary", isoName)
			distro.DetachSign(t, r.file("SHA256SUMS"), r.file("SHA256SUMS.gpg"), true)
		},
		"fedora: clearsigned BSD-style CHECKSUM": func(t *testing.T, r *release) {
			r.sh(t, "plain", "sha256sum", "--tag", isoName)
			b, _ := os.ReadFile(r.file("plain"))
			os.WriteFile(r.file("plain"), append([]byte("# "+isoName+": 3158273 bytes\n"), b...), 0o644)
			distro.ClearSign(t, r.file("plain"), r.file("Distro-1.0-x86_64-CHECKSUM"))
			os.Remove(r.file("plain"))
		},
		"qubes: clearsigned DIGESTS with MD5, SHA-1, SHA-256, SHA-512": func(t *testing.T, r *release) {
			var all []byte
			for _, tool := range []string{"md5sum", "sha1sum", "sha256sum", "sha512sum"} {
				r.sh(t, "part", tool, isoName)
				b, _ := os.ReadFile(r.file("part"))
				all = append(all, b...)
			}
			os.WriteFile(r.file("part"), all, 0o644)
			distro.ClearSign(t, r.file("part"), r.file(isoName+".DIGESTS"))
			os.Remove(r.file("part"))
		},
	}
	for name, lay := range layouts {
		t.Run(name, func(t *testing.T) {
			r := newRelease(t)
			lay(t, r)
			res, err := r.verify(t, kr, Options{})
			if err != nil {
				t.Fatalf("genuine image refused: %v", err)
			}
			if res.Signer().Source != Distribution || !strings.Contains(res.Signer().Label, "Test Distribution") {
				t.Fatalf("signer %v", res.Signer())
			}
			if res.SHA256 != sha256.Sum256(r.iso) {
				t.Fatal("wrong SHA-256")
			}
			r.tamper(t)
			_, err = r.verify(t, kr, Options{})
			var ve *VerifyError
			if !errors.As(err, &ve) || !errors.Is(err, ErrTampered) {
				t.Fatalf("tampered image: got %v, want ErrTampered", err)
			}
			if !strings.Contains(err.Error(), isoName) || len(ve.Findings) == 0 {
				t.Fatalf("error does not name the image and the evidence: %v", err)
			}
		})
	}
}

// A checksum file edited after signing (the attacker lists the hash of
// their own image) is tampering, named as such.
func TestChecksumFileChangedAfterSigning(t *testing.T) {
	distro := gpgtest.NewKey(t, "Test Distribution", "ed25519")
	r := newRelease(t)
	r.sh(t, "SHA256SUMS", "sha256sum", isoName)
	distro.DetachSign(t, r.file("SHA256SUMS"), r.file("SHA256SUMS.sign"), true)
	r.tamper(t)
	// The attacker puts the hash of the modified image into SHA256SUMS.
	r.sh(t, "SHA256SUMS", "sha256sum", isoName)
	_, err := r.verify(t, keyringOf(t, distro, nil), Options{})
	if !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), "changed after it was signed") {
		t.Fatalf("got %v", err)
	}
}

// Signatures by keys glint does not trust, unsigned checksum files and no
// files at all are told apart.
func TestUntrustedAndUnsigned(t *testing.T) {
	trusted := gpgtest.NewKey(t, "Trusted", "ed25519")
	stranger := gpgtest.NewKey(t, "Stranger", "ed25519")
	kr := keyringOf(t, trusted, nil)

	r := newRelease(t)
	_, err := r.verify(t, kr, Options{})
	if !errors.Is(err, ErrNotSigned) || !strings.Contains(err.Error(), isoName+".sig") {
		t.Fatalf("bare image: %v", err)
	}
	r.sh(t, "SHA256SUMS", "sha256sum", isoName) // no signature: proves nothing
	if _, err := r.verify(t, kr, Options{}); !errors.Is(err, ErrNotSigned) || !strings.Contains(err.Error(), "SHA256SUMS") {
		t.Fatalf("unsigned SHA256SUMS: %v", err)
	}
	stranger.DetachSign(t, r.path, r.file(isoName+".asc"), true)
	_, err = r.verify(t, kr, Options{})
	if !errors.Is(err, ErrUntrustedSigner) || !strings.Contains(err.Error(), stranger.ID) {
		t.Fatalf("stranger's signature: %v", err)
	}
	// The owner's own key is trusted like a distribution's.
	res, err := r.verify(t, keyringOf(t, trusted, stranger), Options{})
	if err != nil || res.Signer().Source != Owner {
		t.Fatalf("owner-signed: %v", err)
	}
}

// Kept ranges are the bytes as hashed, across read boundaries.
func TestKeepRanges(t *testing.T) {
	distro := gpgtest.NewKey(t, "D", "ed25519")
	r := newRelease(t)
	distro.DetachSign(t, r.path, r.file(isoName+".sig"), false)
	ranges := []Range{{0, 10}, {1<<20 - 5, 10}, {int64(len(r.iso)) - 100, 100}, {5, 0}}
	res, err := r.verify(t, keyringOf(t, distro, nil), Options{Keep: ranges})
	if err != nil {
		t.Fatal(err)
	}
	for i, rg := range ranges {
		if !bytes.Equal(res.Kept[i], r.iso[rg.Offset:rg.Offset+rg.Length]) {
			t.Errorf("range %d differs", i)
		}
	}
	if _, err := r.verify(t, keyringOf(t, distro, nil), Options{Keep: []Range{{int64(len(r.iso)) - 1, 2}}}); err == nil {
		t.Fatal("range past the end accepted")
	}
}

// changingReader answers the first full pass with the genuine bytes and
// every later read with other bytes: what a malicious USB device can do. A
// real stick cannot be made to do this on demand in a test, hence the fake.
type changingReader struct {
	good, evil []byte
	passes     int64
}

func (c *changingReader) ReadAt(p []byte, off int64) (int, error) {
	src := c.good
	if c.passes >= int64(len(c.good)) {
		src = c.evil
	}
	if off >= int64(len(src)) {
		return 0, io.EOF
	}
	n := copy(p, src[off:])
	c.passes += int64(n)
	return n, nil
}

func TestKeptBytesAreTheVerifiedOnes(t *testing.T) {
	distro := gpgtest.NewKey(t, "D", "ed25519")
	r := newRelease(t)
	distro.DetachSign(t, r.path, r.file(isoName+".sig"), false)
	evil := bytes.Repeat([]byte{0xcc}, len(r.iso))
	cr := &changingReader{good: r.iso, evil: evil}
	rg := Range{100, 1 << 20}
	res, err := Verify(Image{Name: isoName, R: cr, Size: int64(len(r.iso))}, os.DirFS(r.dir), keyringOf(t, distro, nil), Options{Keep: []Range{rg}})
	if err != nil {
		t.Fatal(err)
	}
	after := make([]byte, rg.Length)
	cr.ReadAt(after, rg.Offset)
	if bytes.Equal(after, res.Kept[0]) {
		t.Fatal("the fake did not change its answer")
	}
	if !bytes.Equal(res.Kept[0], r.iso[rg.Offset:rg.Offset+rg.Length]) {
		t.Fatal("kept bytes are not the verified ones")
	}
}

// A truncated image (an interrupted copy) is an I/O error, not a pass.
func TestTruncatedImage(t *testing.T) {
	distro := gpgtest.NewKey(t, "D", "ed25519")
	r := newRelease(t)
	distro.DetachSign(t, r.path, r.file(isoName+".sig"), false)
	short := r.iso[:len(r.iso)-4096]
	_, err := Verify(Image{Name: isoName, R: bytes.NewReader(short), Size: int64(len(r.iso))}, os.DirFS(r.dir), keyringOf(t, distro, nil), Options{})
	if err == nil || !strings.Contains(err.Error(), isoName) {
		t.Fatalf("got %v", err)
	}
}

func TestDefaultKeysArePinned(t *testing.T) {
	keys, err := DefaultDistributionKeys()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != len(pinned) {
		t.Fatalf("%d keys, %d pinned", len(keys), len(pinned))
	}
	ents, _ := builtinKeys.ReadDir("keys")
	asc := 0
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".asc") {
			asc++
		}
	}
	if asc != len(pinned) {
		t.Fatalf("%d key files, %d pinned: pin every file (and document it in keys/README.md)", asc, len(pinned))
	}
	readme, _ := os.ReadFile("keys/README.md")
	for _, k := range keys {
		fp := k.Fingerprint()
		spaced := ""
		for i := 0; i < len(fp); i += 4 {
			if i > 0 {
				spaced += " "
			}
			spaced += fp[i : i+4]
		}
		if !bytes.Contains(readme, []byte(strings.Replace(spaced, " ", " ", -1))) {
			t.Errorf("%s: fingerprint %s is not documented in keys/README.md", k.Origin, spaced)
		}
	}
	// The set can be written into a firmware image as one file and read
	// back (ParseDistributionKeys reads concatenated armor blocks).
	var all []byte
	for _, p := range pinned {
		b, _ := builtinKeys.ReadFile("keys/" + p.file)
		all = append(all, b...)
	}
	again, err := ParseDistributionKeys(all, "concatenated")
	if err != nil || len(again) != len(pinned) {
		t.Fatalf("concatenated set: %d keys, %v", len(again), err)
	}
}

// A checksum file signed by a stranger is "signed, not trusted", not
// "not signed".
func TestChecksumFileByStranger(t *testing.T) {
	trusted := gpgtest.NewKey(t, "Trusted", "ed25519")
	stranger := gpgtest.NewKey(t, "Stranger", "ed25519")
	r := newRelease(t)
	r.sh(t, "SHA256SUMS", "sha256sum", isoName)
	stranger.DetachSign(t, r.file("SHA256SUMS"), r.file("SHA256SUMS.sign"), true)
	_, err := r.verify(t, keyringOf(t, trusted, nil), Options{})
	if !errors.Is(err, ErrUntrustedSigner) || !strings.Contains(err.Error(), stranger.ID) {
		t.Fatalf("got %v", err)
	}
}
