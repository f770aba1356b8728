package iso9660

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// makeTree writes a small tree shaped like a live ISO: boot configurations,
// a kernel, a long mixed-case name, a directory deeper than ISO 9660's 8
// levels (Rock Ridge relocates it: CL/RE) and Debian's "debian -> ." link.
func makeTree(t testing.TB) string {
	t.Helper()
	src := t.TempDir()
	files := map[string][]byte{
		"isolinux/isolinux.cfg": []byte("default live\nlabel live\n  kernel /live/vmlinuz\n  append initrd=/live/initrd.img boot=live quiet\n"),
		"boot/grub/grub.cfg":    []byte("menuentry \"Live\" {\n  linux /live/vmlinuz boot=live\n  initrd /live/initrd.img\n}\n"),
		"live/vmlinuz":          bytes.Repeat([]byte("KERNEL01"), 40000), // 320,000 bytes: several sectors
		"live/initrd.img":       []byte("initrd"),
		"Long File Name With Spaces and MixedCase.txt": []byte("long"),
		"a/b/c/d/e/f/g/h/i/j/k/deep.txt":               []byte("deep"),
		"EFI/boot/grubx64.efi":                         {},
		// 250 bytes: Rock Ridge needs a continuation area (CE) for it.
		"long/" + strings.Repeat("n", 250): []byte("very long name"),
	}
	for name, data := range files {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(".", filepath.Join(src, "debian")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("live/vmlinuz", filepath.Join(src, "vmlinuz")); err != nil {
		t.Fatal(err)
	}
	longTarget := strings.Repeat("../long/", 1) + strings.Repeat("n", 250)
	if err := os.Symlink(longTarget, filepath.Join(src, "live", "longlink")); err != nil {
		t.Fatal(err)
	}
	return src
}

// buildISO runs the real xorriso (Debian package xorriso) on src, in its
// mkisofs emulation (which always writes Rock Ridge) with args.
func buildISO(t testing.TB, src string, args ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "test.iso")
	runXorriso(t, append(append([]string{"-as", "mkisofs", "-quiet", "-o", out, "-V", "GLINT_TEST"}, args...), src)...)
	return out
}

// buildISONative uses xorriso's own commands, which can leave Rock Ridge
// out: joliet says whether to write a Joliet tree.
func buildISONative(t testing.TB, src string, joliet bool) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "test.iso")
	j := "off"
	if joliet {
		j = "on"
	}
	runXorriso(t, "-report_about", "SORRY", "-rockridge", "off", "-joliet", j, "-volid", "GLINT_TEST", "-outdev", out, "-map", src, "/")
	return out
}

func runXorriso(t testing.TB, args ...string) {
	t.Helper()
	if _, err := exec.LookPath("xorriso"); err != nil {
		t.Skip("xorriso not installed (scripts/install-deps.sh installs it)")
	}
	if b, err := exec.Command("xorriso", args...).CombinedOutput(); err != nil {
		t.Fatalf("xorriso %v: %v\n%s", args, err, b)
	}
}

func openISO(t testing.TB, path string) *FS {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	iso, err := Open(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	return iso
}

// walkFiles lists every regular file and symlink with its content (or
// "-> target"), not following symlinks.
func walkFiles(t testing.TB, iso *FS) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := fs.WalkDir(iso, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := iso.ReadLink(p)
			if err != nil {
				return err
			}
			got[p] = "-> " + target
		case d.Type().IsRegular():
			b, err := fs.ReadFile(iso, p)
			if err != nil {
				return err
			}
			got[p] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestRockRidgeAndJolietImage(t *testing.T) {
	src := makeTree(t)
	// Relocate directories deeper than 8 levels, as mkisofs does, so the
	// Rock Ridge CL/RE entries are read.
	out := filepath.Join(t.TempDir(), "rr.iso")
	runXorriso(t, "-report_about", "SORRY", "-rockridge", "on", "-joliet", "on", "-compliance", "deep_paths_off",
		"-rr_reloc_dir", "rr_moved", "-volid", "GLINT_TEST", "-outdev", out, "-map", src, "/")
	iso := openISO(t, out)
	if iso.Names != "rockridge" || iso.VolumeID != "GLINT_TEST" {
		t.Fatalf("names %q volume %q", iso.Names, iso.VolumeID)
	}
	got := walkFiles(t, iso)
	want := map[string]string{}
	if !relocated(t, out) {
		t.Fatal("xorriso did not relocate the deep directory; the CL/RE path is untested")
	}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			want[rel] = "-> " + target
		case d.Type().IsRegular():
			b, _ := os.ReadFile(p)
			want[rel] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := diffMaps(want, got); d != "" {
		t.Fatalf("tree read from the ISO differs from the source tree:\n%s", d)
	}
	// Symlinks resolve inside the image; "debian -> ." may be walked
	// through (Debian's ISOs have it).
	b, err := fs.ReadFile(iso, "debian/debian/live/vmlinuz")
	if err != nil || !bytes.Equal(b, []byte(want["live/vmlinuz"])) {
		t.Fatalf("through debian -> .: %v", err)
	}
	if b, err := fs.ReadFile(iso, "vmlinuz"); err != nil || len(b) != 320000 {
		t.Fatalf("vmlinuz -> live/vmlinuz: %d bytes, %v", len(b), err)
	}
	st, err := iso.Stat("a/b/c/d/e/f/g/h/i/j/k")
	if err != nil || !st.IsDir() {
		t.Fatalf("relocated deep directory: %v", err)
	}
	if b, err := fs.ReadFile(iso, "live/longlink"); err != nil || string(b) != "very long name" {
		t.Fatalf("long symlink to a long name: %q %v", b, err)
	}
}

func TestJolietOnlyImage(t *testing.T) {
	src := makeTree(t)
	os.Remove(filepath.Join(src, "debian"))
	os.Remove(filepath.Join(src, "vmlinuz"))
	os.RemoveAll(filepath.Join(src, "a")) // Joliet allows 8 levels only without relocation
	iso := openISO(t, buildISONative(t, src, true))
	if iso.Names != "joliet" {
		t.Fatalf("names %q, want joliet", iso.Names)
	}
	got := walkFiles(t, iso)
	for _, name := range []string{"Long File Name With Spaces and MixedCase.txt", "isolinux/isolinux.cfg", "live/vmlinuz", "EFI/boot/grubx64.efi"} {
		if _, ok := got[name]; !ok {
			t.Errorf("%q missing from the Joliet tree; have %v", name, keys(got))
		}
	}
}

func TestPlainImage(t *testing.T) {
	src := makeTree(t)
	os.Remove(filepath.Join(src, "debian"))
	os.Remove(filepath.Join(src, "vmlinuz"))
	os.RemoveAll(filepath.Join(src, "a"))
	iso := openISO(t, buildISONative(t, src, false))
	if iso.Names != "iso9660" {
		t.Fatalf("names %q", iso.Names)
	}
	got := walkFiles(t, iso)
	// Level 1 names, shown in lower case without ";1" as Linux does.
	for _, name := range []string{"isolinux/isolinux.cfg", "live/vmlinuz", "live/initrd.img"} {
		if _, ok := got[name]; !ok {
			t.Errorf("%q missing; have %v", name, keys(got))
		}
	}
}

func TestExtentsAreTheFileBytes(t *testing.T) {
	src := makeTree(t)
	path := buildISO(t, src, "-R", "-J")
	iso := openISO(t, path)
	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ext, err := iso.Extents("live/vmlinuz")
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	for _, x := range ext {
		b = append(b, img[x.Offset:x.Offset+x.Length]...)
	}
	want, _ := os.ReadFile(filepath.Join(src, "live/vmlinuz"))
	if !bytes.Equal(b, want) {
		t.Fatal("the extents do not hold the file's bytes")
	}
	if _, err := iso.Extents("live"); err == nil {
		t.Fatal("extents of a directory")
	}
}

func TestNotISO(t *testing.T) {
	img := make([]byte, 40*SectorSize)
	_, err := Open(bytes.NewReader(img), int64(len(img)))
	var pe *ParseError
	if !errors.As(err, &pe) || !errors.Is(err, ErrNotISO) {
		t.Fatalf("got %v", err)
	}
	if _, err := Open(bytes.NewReader(img[:100]), 100); !errors.Is(err, ErrNotISO) {
		t.Fatalf("tiny file: %v", err)
	}
}

// A truncated image (a download cut short) is named as truncated when the
// missing bytes are needed, never read past its end.
func TestTruncatedImage(t *testing.T) {
	src := makeTree(t)
	full, err := os.ReadFile(buildISO(t, src, "-R", "-J"))
	if err != nil {
		t.Fatal(err)
	}
	iso, err := Open(bytes.NewReader(full), int64(len(full)))
	if err != nil {
		t.Fatal(err)
	}
	ext, err := iso.Extents("live/vmlinuz")
	if err != nil {
		t.Fatal(err)
	}
	cut := full[:ext[0].Offset+100]
	iso2, err := Open(bytes.NewReader(cut), int64(len(cut)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = fs.ReadFile(iso2, "live/vmlinuz")
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("got %v, want ErrTruncated", err)
	}
}

// A directory record whose extent points past the end of the image, a
// crafted length byte, or a name with '/' is a ParseError, not a panic.
func TestCraftedRecords(t *testing.T) {
	src := makeTree(t)
	full, err := os.ReadFile(buildISO(t, src, "-R", "-J"))
	if err != nil {
		t.Fatal(err)
	}
	iso, err := Open(bytes.NewReader(full), int64(len(full)))
	if err != nil {
		t.Fatal(err)
	}
	live, err := iso.lookup("t", "live", false)
	if err != nil {
		t.Fatal(err)
	}
	// Find vmlinuz's record in live/ by its ISO 9660 identifier.
	dirOff := int64(live.extents[0].lba) * SectorSize
	pos := dirOff
	for full[pos] != 0 && !bytes.HasPrefix(full[pos+33:], []byte("VMLINUZ")) {
		pos += int64(full[pos])
	}
	if full[pos] == 0 {
		t.Fatal("vmlinuz record not found")
	}
	mutate := func(f func(b []byte)) []byte {
		b := bytes.Clone(full)
		f(b)
		return b
	}
	cases := map[string][]byte{
		"extent past end": mutate(func(b []byte) { b[pos+2], b[pos+3], b[pos+4], b[pos+5] = 0xff, 0xff, 0xff, 0x0f }),
		"record length":   mutate(func(b []byte) { b[pos] = 20 }),
		"name length":     mutate(func(b []byte) { b[pos+32] = 250 }),
	}
	for name, img := range cases {
		t.Run(name, func(t *testing.T) {
			iso, err := Open(bytes.NewReader(img), int64(len(img)))
			if err != nil {
				t.Fatal(err)
			}
			_, err = fs.ReadFile(iso, "live/vmlinuz")
			_, err2 := iso.ReadDir("live")
			var pe *ParseError
			if !errors.As(err, &pe) && !errors.As(err2, &pe) {
				t.Fatalf("no ParseError: %v / %v", err, err2)
			}
		})
	}
}

// relocated reports whether the image has a Rock Ridge CL entry.
func relocated(t *testing.T, path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(b, []byte("CL\x0c\x01"))
}

func diffMaps(want, got map[string]string) string {
	var out []string
	for k, v := range want {
		g, ok := got[k]
		switch {
		case !ok:
			out = append(out, "missing "+k)
		case g != v:
			out = append(out, "differs "+k)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			out = append(out, "extra "+k)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

var _ = io.EOF
