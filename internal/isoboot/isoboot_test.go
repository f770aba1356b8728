package isoboot

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/bootcfg"
	"github.com/glint-boot/glint/internal/gpgtest"
	"github.com/glint-boot/glint/internal/isoverify"
)

// liveISO builds, with the real xorriso, an image laid out like Debian's
// and Tails' live ISOs: isolinux and grub configurations naming
// /live/vmlinuz and /live/initrd.img.
func liveISO(t *testing.T, dir string) (path string, kernel, initrd []byte) {
	t.Helper()
	if _, err := exec.LookPath("xorriso"); err != nil {
		t.Skip("xorriso not installed (scripts/install-deps.sh installs it)")
	}
	src := t.TempDir()
	kernel = bytes.Repeat([]byte("KERNEL!!"), 300000) // 2.4 MB, several extents' worth of sectors
	initrd = bytes.Repeat([]byte("initrd"), 100000)
	files := map[string][]byte{
		"isolinux/isolinux.cfg":    []byte("default live\nlabel live\n  menu label Live system\n  kernel /live/vmlinuz\n  append initrd=/live/initrd.img boot=live components quiet splash\n"),
		"live/vmlinuz":             kernel,
		"live/initrd.img":          initrd,
		"live/filesystem.squashfs": bytes.Repeat([]byte{0x5a}, 1<<20),
	}
	for name, data := range files {
		p := filepath.Join(src, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path = filepath.Join(dir, "live-amd64.iso")
	if b, err := exec.Command("xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-V", "LIVE_TEST", "-o", path, src).CombinedOutput(); err != nil {
		t.Fatalf("xorriso: %v\n%s", err, b)
	}
	return path, kernel, initrd
}

func TestSignedLiveISO(t *testing.T) {
	dir := t.TempDir()
	path, kernel, initrd := liveISO(t, dir)
	distro := gpgtest.NewKey(t, "Live Distribution", "ed25519")
	distro.DetachSign(t, path, path+".sig", true)
	dk, err := isoverify.ParseDistributionKeys(distro.Public, "test")
	if err != nil {
		t.Fatal(err)
	}
	kr := isoverify.NewKeyring(nil, dk)

	cands, err := Scan(dir)
	if err != nil || len(cands) != 1 || cands[0].Name != "live-amd64.iso" {
		t.Fatalf("scan: %+v %v", cands, err)
	}
	f, size, err := OpenImage(cands[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	menu, err := Prepare(f, size)
	if err != nil {
		t.Fatal(err)
	}
	if len(menu.Entries) != 1 || menu.Entries[0].Kernel != "live/vmlinuz" || menu.VolumeID != "LIVE_TEST" {
		t.Fatalf("menu: %+v", menu)
	}
	keep, err := menu.Keep(0)
	if err != nil {
		t.Fatal(err)
	}
	res, err := isoverify.Verify(isoverify.Image{Name: cands[0].Name, R: f, Size: size}, os.DirFS(cands[0].Dir), kr, isoverify.Options{Keep: keep})
	if err != nil {
		t.Fatal(err)
	}
	boot, err := menu.Load(0, keep, res.Kept, []string{"glint.usb=1"}, []string{"quiet", "splash"})
	if err != nil {
		t.Fatal(err)
	}
	img := boot.Image()
	if !bytes.Equal(img.Kernel.Data, kernel) || len(img.Initrds) != 1 || !bytes.Equal(img.Initrds[0].Data, initrd) {
		t.Fatal("kernel or initrd differ from the files in the image")
	}
	if boot.Cmdline != "boot=live components glint.usb=1" {
		t.Fatalf("cmdline %q", boot.Cmdline)
	}
	if img.Kind != bootcfg.Linux || !bytes.Equal(img.Kernel.Data, kernel) || img.Cmdline != boot.Cmdline {
		t.Fatalf("kexec image %+v", img.Kind)
	}

	// The same through the flow's API, then with the image changed on the
	// stick: refused as tampered, by name.
	im, err := OpenCandidate(cands[0])
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if b2, res2, err := im.Verify(0, kr, nil, nil, nil); err != nil || !bytes.Equal(b2.Image().Kernel.Data, kernel) || res2.Signer().Source != isoverify.Distribution {
		t.Fatalf("Image.Verify: %v", err)
	}
	raw, _ := os.ReadFile(path)
	raw[len(raw)-3000] ^= 0xff
	os.WriteFile(path, raw, 0o644)
	_, _, err = im.Verify(0, kr, nil, nil, nil)
	if !errors.Is(err, isoverify.ErrTampered) || !strings.Contains(err.Error(), "live-amd64.iso") {
		t.Fatalf("tampered image: %v", err)
	}
	if b3, err := im.LoadUnsigned(0, nil, nil); err != nil || !bytes.Equal(b3.Image().Kernel.Data, kernel) {
		t.Fatalf("LoadUnsigned: %v", err)
	}
}

// phasedReader serves one image for the first reads (while the menu is
// shown) and another afterwards: a USB device that lies about the boot
// menu, then serves genuine bytes to the signature check. A real stick
// cannot be made to do this in a test, hence the fake.
type phasedReader struct {
	first, then []byte
	switched    bool
}

func (p *phasedReader) ReadAt(b []byte, off int64) (int, error) {
	src := p.first
	if p.switched {
		src = p.then
	}
	if off >= int64(len(src)) {
		return 0, io.EOF
	}
	n := copy(b, src[off:])
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

func TestMenuLiesBeforeVerification(t *testing.T) {
	dir := t.TempDir()
	path, _, _ := liveISO(t, dir)
	genuine, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Same length, so the layout does not move: the shown command line
	// hides "init=/bin/sh" behind an innocent one, or the other way round.
	evil := bytes.Replace(genuine, []byte("boot=live components"), []byte("init=/bin/sh quiet  "), 1)
	if bytes.Equal(evil, genuine) {
		t.Fatal("test image has no command line to change")
	}
	r := &phasedReader{first: evil, then: genuine}
	menu, err := Prepare(r, int64(len(genuine)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(menu.Entries[0].Cmdline, "init=/bin/sh") {
		t.Fatalf("shown cmdline %q", menu.Entries[0].Cmdline)
	}
	r.switched = true
	keep, _ := menu.Keep(0)
	kept, err := ReadRanges(r, keep) // stands in for the verification pass
	if err != nil {
		t.Fatal(err)
	}
	if _, err := menu.Load(0, keep, kept, nil, nil); !errors.Is(err, ErrMenuChanged) {
		t.Fatalf("got %v, want ErrMenuChanged", err)
	}
}

func TestAdjustCmdline(t *testing.T) {
	got := AdjustCmdline("BOOT_IMAGE=/live/vmlinuz boot=live quiet splash vga=791 nomodeset", []string{"console=ttyS0"}, []string{"quiet", "splash", "vga="})
	if got != "BOOT_IMAGE=/live/vmlinuz boot=live nomodeset console=ttyS0" {
		t.Fatalf("got %q", got)
	}
}
