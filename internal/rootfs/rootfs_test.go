package rootfs

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// makeRoot writes a small root file system shaped like a merged-/usr
// Debian: bin -> usr/bin, real binaries and libraries, a FIFO, etc.
func makeRoot(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	for name, data := range map[string]string{
		"usr/bin/sudo":                        "sudo binary",
		"usr/bin/ls":                          "ls binary",
		"usr/lib/x86_64-linux-gnu/libc.so.6":  strings.Repeat("libc", 100000),
		"usr/lib/x86_64-linux-gnu/libpam.so":  "pam",
		"usr/sbin/sshd":                       "sshd",
		"usr/share/doc/a b\\c\nd.txt":         "odd name",
		"etc/passwd":                          "root:x:0:0",
		"boot/vmlinuz":                        "kernel",
		"home/alice/notes":                    "not listed",
		"usr/lib/modules/6.1.0/kernel/x.ko":   "module",
		"usr/lib/x86_64-linux-gnu/empty-file": "",
	} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{"bin": "usr/bin", "lib": "usr/lib", "sbin": "usr/sbin", "usr/bin/python3": "/usr/bin/python3.11"} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(root, "usr/lib/fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	return root
}

func buildList(t testing.TB, root string, dirs []string) *List {
	t.Helper()
	l, _, err := Build(root, dirs, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestBuildParseCheck(t *testing.T) {
	root := makeRoot(t)
	l := buildList(t, root, DefaultDirs)
	text := l.Marshal()
	again, err := Parse(text)
	if err != nil {
		t.Fatalf("parse own output: %v\n%s", err, text)
	}
	if !bytes.Equal(again.Marshal(), text) {
		t.Fatal("round trip changed the list")
	}
	if bytes.Contains(text, []byte("home/alice")) || bytes.Contains(text, []byte("etc/passwd")) {
		t.Fatal("unlisted directories hashed")
	}
	for _, want := range []string{"link usr/bin bin\n", "special 10600 ", "usr/share/doc/a\\x20b\\x5cc\\x0ad.txt\n"} {
		if !bytes.Contains(text, []byte(want)) {
			t.Errorf("list lacks %q:\n%s", want, text)
		}
	}
	if _, err := Check(root, again, Options{}); err != nil {
		t.Fatalf("unchanged root: %v", err)
	}
}

// Each change an attacker could make is named by path.
func TestChangesAreNamed(t *testing.T) {
	cases := map[string]struct {
		change func(root string)
		want   string
	}{
		"same-size content": {func(r string) { os.WriteFile(filepath.Join(r, "usr/bin/sudo"), []byte("evil binary"), 0o755) }, `changed "usr/bin/sudo"`},
		"setuid bit":        {func(r string) { syscall.Chmod(filepath.Join(r, "usr/bin/ls"), 0o4755) }, `changed "usr/bin/ls"`},
		"owner":             {func(r string) { os.Chown(filepath.Join(r, "usr/sbin/sshd"), 1000, 1000) }, `changed "usr/sbin/sshd"`},
		"added library": {func(r string) {
			os.WriteFile(filepath.Join(r, "usr/lib/x86_64-linux-gnu/libevil.so"), []byte("x"), 0o644)
		}, `added "usr/lib/x86_64-linux-gnu/libevil.so"`},
		"removed module": {func(r string) { os.Remove(filepath.Join(r, "usr/lib/modules/6.1.0/kernel/x.ko")) }, `removed "usr/lib/modules/6.1.0/kernel/x.ko"`},
		"symlink retargeted": {func(r string) {
			os.Remove(filepath.Join(r, "bin"))
			os.Symlink("/tmp/evil", filepath.Join(r, "bin"))
		}, `changed "bin"`},
		"file to symlink": {func(r string) {
			os.Remove(filepath.Join(r, "usr/lib/x86_64-linux-gnu/libpam.so"))
			os.Symlink("/tmp/evil.so", filepath.Join(r, "usr/lib/x86_64-linux-gnu/libpam.so"))
		}, `changed "usr/lib/x86_64-linux-gnu/libpam.so"`},
		"kernel in boot": {func(r string) { os.WriteFile(filepath.Join(r, "boot/vmlinuz"), []byte("KERNEL"), 0o755) }, `changed "boot/vmlinuz"`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if name == "owner" && os.Getuid() != 0 {
				t.Skip("chown needs root")
			}
			root := makeRoot(t)
			l := buildList(t, root, DefaultDirs)
			c.change(root)
			_, err := Check(root, l, Options{})
			var te *TamperError
			if !errors.As(err, &te) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %s", err, c.want)
			}
		})
	}
}

// The fast mode reads only files whose metadata moved; a rewrite that
// keeps size and modification time still moves the change time.
func TestFastMode(t *testing.T) {
	root := makeRoot(t)
	l := buildList(t, root, DefaultDirs)
	st, err := Check(root, l, Options{Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	files := 0
	for _, e := range l.Entries {
		if e.Kind == 1 {
			files++
		}
	}
	if st.Hashed != 0 || st.Skipped != files {
		t.Fatalf("unchanged root: hashed %d, skipped %d of %d", st.Hashed, st.Skipped, files)
	}
	p := filepath.Join(root, "usr/bin/sudo")
	fi, _ := os.Stat(p)
	time.Sleep(10 * time.Millisecond) // let the change time move on coarse clocks
	os.WriteFile(p, []byte("evil binary"), 0o755)
	os.Chtimes(p, fi.ModTime(), fi.ModTime()) // the attacker resets the mtime
	st, err = Check(root, l, Options{Fast: true})
	if !strings.Contains(errString(err), `changed "usr/bin/sudo"`) || st.Hashed != 1 {
		t.Fatalf("hashed %d: %v", st.Hashed, err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// A file system mounted below a listed directory (the running system's
// /boot partition) is listed as a directory and not entered, since at boot
// the root is mounted alone.
func TestOtherFileSystemsNotEntered(t *testing.T) {
	root := makeRoot(t)
	mnt := filepath.Join(root, "boot")
	if err := exec.Command("mount", "-t", "tmpfs", "tmpfs", mnt).Run(); err != nil {
		t.Skipf("cannot mount a tmpfs here (needs root): %v", err)
	}
	defer exec.Command("umount", mnt).Run()
	os.WriteFile(filepath.Join(mnt, "vmlinuz-on-boot-partition"), []byte("k"), 0o644)
	text := buildList(t, root, DefaultDirs).Marshal()
	if !bytes.Contains(text, []byte(" boot\n")) || bytes.Contains(text, []byte("vmlinuz-on-boot-partition")) {
		t.Fatalf("mount point handling:\n%s", text)
	}
}

func TestParseErrors(t *testing.T) {
	root := makeRoot(t)
	good := buildList(t, root, DefaultDirs).Marshal()
	lines := strings.SplitAfter(string(good), "\n")
	swap := append([]string{}, lines...)
	swap[3], swap[4] = swap[4], swap[3]
	for name, in := range map[string]string{
		"header":       "glint-rootfs 2\n" + strings.Join(lines[1:], ""),
		"out of order": strings.Join(swap, ""),
		"outside dirs": strings.Join(lines[:2], "") + "dir 755 0 0 etc\n",
		"dotdot":       "glint-rootfs 1\ndirs usr\ndir 755 0 0 usr/..\n",
		"dirs":         "glint-rootfs 1\ndirs usr/lib\n",
		"mode":         "glint-rootfs 1\ndirs usr\ndir 0755 0 0 usr\n",
		"truncated":    string(good[:len(good)-1]),
	} {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Errorf("%s: not a ParseError: %v", name, err)
			}
		}
	}
}

func TestStoreRoundTrip(t *testing.T) {
	boot := t.TempDir()
	if _, err := Read(boot); !errors.Is(err, ErrNoList) {
		t.Fatalf("empty /boot: %v", err)
	}
	l := buildList(t, makeRoot(t), []string{"usr"})
	if err := Write(boot, l); err != nil {
		t.Fatal(err)
	}
	b, err := Read(boot)
	if err != nil || !bytes.Equal(b, l.Marshal()) {
		t.Fatalf("read back: %v", err)
	}
}

// A file line with a non-canonical path is refused like any other line.
func TestParseRefusesBadFilePath(t *testing.T) {
	in := "glint-rootfs 1\ndirs usr\ndir 755 0 0 usr\nfile " + strings.Repeat("0", 64) + " 0 644 0 0 1 0 0 usr/../etc/shadow\n"
	if _, err := Parse([]byte(in)); err == nil {
		t.Fatal("accepted usr/../etc/shadow")
	}
}

// A file replaced by a FIFO or a symlink between the walk and its hashing
// is reported as changed during hashing: never followed, never waited on.
func TestSwappedDuringHash(t *testing.T) {
	for name, swap := range map[string]func(p string){
		"fifo":    func(p string) { os.Remove(p); syscall.Mkfifo(p, 0o644) },
		"symlink": func(p string) { os.Remove(p); os.Symlink("/etc/shadow", p) },
	} {
		t.Run(name, func(t *testing.T) {
			root := makeRoot(t)
			var entries []Entry
			fi, _ := os.Stat(root)
			if err := walk(root, "usr", devOf(fi), &entries); err != nil {
				t.Fatal(err)
			}
			swap(filepath.Join(root, "usr/bin/sudo"))
			done := make(chan error, 1)
			go func() { done <- hashAll(root, entries, nil, Options{}, &Stats{}) }()
			select {
			case err := <-done:
				var ce *ChangedDuringHashError
				if !errors.As(err, &ce) || ce.Path != "usr/bin/sudo" {
					t.Fatalf("got %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("hashing hung on the swapped file")
			}
		})
	}
}
