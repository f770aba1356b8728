package manifest

import (
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
)

func TestBuildListsTree(t *testing.T) {
	dir := makeBoot(t)
	write(t, dir, "glint/hotp-counter", "17") // state dir: never listed
	m, err := Build(dir, BuildOptions{Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, e := range m.Entries {
		paths = append(paths, e.Kind.String()+":"+e.Path)
	}
	want := []string{
		"file:config-6.1.0-18-amd64", "directory:empty", "directory:grub", "directory:grub/fonts",
		"file:grub/fonts/unicode.pf2", "file:grub/grub.cfg", "file:initrd.img-6.1.0-18-amd64",
		"file:odd name\twith\\bytes\xff", "symlink:vmlinuz", "file:vmlinuz-6.1.0-18-amd64",
	}
	if len(paths) != len(want) {
		t.Fatalf("got %q\nwant %q", paths, want)
	}
	for i := range want {
		if paths[i] != want[i] {
			t.Fatalf("entry %d: got %q want %q", i, paths[i], want[i])
		}
	}
	k := m.Entries[len(m.Entries)-1]
	if k.SHA256 != sha256.Sum256([]byte("kernel image\x00\x01\x02")) || k.Size != 15 {
		t.Fatalf("kernel entry %+v", k)
	}
	// What Build writes, Parse reads back.
	m.CounterIndex, m.Counter = DefaultCounterIndex, 1
	if _, err := Parse(m.Marshal()); err != nil {
		t.Fatal(err)
	}
}

func TestBuildRefusesEscapingLinks(t *testing.T) {
	cases := map[string]func(dir string) error{
		"absolute": func(dir string) error { return os.Symlink("/etc/passwd", filepath.Join(dir, "l")) },
		"dotdot":   func(dir string) error { return os.Symlink("../../etc/passwd", filepath.Join(dir, "grub/l")) },
		"through a link to the top": func(dir string) error {
			// "self" -> "." is harmless alone, but "self/../x" climbs out
			// of /boot: a lexical check would miss this.
			if err := os.Symlink(".", filepath.Join(dir, "self")); err != nil {
				return err
			}
			return os.Symlink("self/../outside", filepath.Join(dir, "l"))
		},
		"through a link to an absolute dir": func(dir string) error {
			if err := os.Symlink("/etc", filepath.Join(dir, "grub/etc")); err != nil {
				return err
			}
			return os.Symlink("grub/etc/passwd", filepath.Join(dir, "l"))
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			dir := makeBoot(t)
			if err := mk(dir); err != nil {
				t.Fatal(err)
			}
			_, err := Build(dir, BuildOptions{})
			var le *LinkEscapeError
			if !errors.As(err, &le) {
				t.Fatalf("want *LinkEscapeError, got %v", err)
			}
		})
	}
	// Links that stay inside are fine, dangling ones too (a file created
	// there later is "added").
	dir := makeBoot(t)
	for target, link := range map[string]string{"../vmlinuz-6.1.0-18-amd64": "grub/k", "fonts/../grub.cfg": "grub/c", "nowhere": "d"} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Build(dir, BuildOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestBuildRefusesSpecialFiles(t *testing.T) {
	dir := makeBoot(t)
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	_, err := Build(dir, BuildOptions{})
	var ue *UnsupportedFileError
	if !errors.As(err, &ue) || ue.Path != "fifo" {
		t.Fatalf("got %v", err)
	}
}

// TestBuildFileChangedDuringHash changes a file after it was opened and
// before it was read, through a test hook (a real package manager cannot be
// timed that precisely).
func TestBuildFileChangedDuringHash(t *testing.T) {
	t.Run("settles", func(t *testing.T) {
		dir := makeBoot(t)
		var n atomic.Int32
		opts := BuildOptions{afterOpen: func(rel string) {
			if rel == "grub/grub.cfg" && n.Add(1) == 1 {
				appendTo(t, dir, rel, "menuentry evil {}\n")
			}
		}}
		m, err := Build(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		// The second attempt hashed the file as it now is.
		now, _ := os.ReadFile(filepath.Join(dir, "grub/grub.cfg"))
		for _, e := range m.Entries {
			if e.Path == "grub/grub.cfg" && e.SHA256 != sha256.Sum256(now) {
				t.Fatal("recorded a hash of neither version")
			}
		}
	})
	t.Run("keeps changing", func(t *testing.T) {
		dir := makeBoot(t)
		opts := BuildOptions{afterOpen: func(rel string) {
			if rel == "initrd.img-6.1.0-18-amd64" {
				appendTo(t, dir, rel, "more")
			}
		}}
		_, err := Build(dir, opts)
		var ce *ChangedDuringHashError
		if !errors.As(err, &ce) || ce.Path != "initrd.img-6.1.0-18-amd64" {
			t.Fatalf("want *ChangedDuringHashError for the initrd, got %v", err)
		}
	})
}

func appendTo(t *testing.T, dir, rel, s string) {
	f, err := os.OpenFile(filepath.Join(dir, rel), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Error(err)
		return
	}
	f.WriteString(s)
	f.Close()
}

func TestBuildErrors(t *testing.T) {
	if _, err := Build(filepath.Join(t.TempDir(), "missing"), BuildOptions{}); err == nil {
		t.Fatal("missing dir built")
	}
	dir := makeBoot(t)
	p := filepath.Join(dir, "grub/grub.cfg")
	if os.Getuid() != 0 {
		os.Chmod(p, 0)
		if _, err := Build(dir, BuildOptions{}); err == nil {
			t.Fatal("unreadable file hashed")
		}
	}
}
