package luks

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/glint-boot/glint/internal/secret"
)

const testUUID = "4d8ee565-db37-4bf3-972b-51ad4c01387c"

func readBack(t *testing.T, archive []byte) map[string]cpio.Record {
	t.Helper()
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(archive)))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]cpio.Record{}
	var names []string
	for _, r := range recs {
		out[r.Name] = r
		names = append(names, r.Name)
	}
	if !sortedStrings(names) {
		t.Errorf("records not sorted: %v", names)
	}
	return out
}

func sortedStrings(s []string) bool {
	for i := 1; i < len(s); i++ {
		if s[i-1] > s[i] {
			return false
		}
	}
	return true
}

func content(t *testing.T, r cpio.Record) string {
	t.Helper()
	b, err := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestBuildKeyCpioStyles(t *testing.T) {
	key := []byte("k\x00e\ny")
	tab := []CrypttabEntry{KeyEntry("root_crypt", testUUID, "discard")}
	cases := []struct {
		style Style
		files map[string]string // name -> exact content ("" = directory)
	}{
		{StyleInitramfsTools, map[string]string{
			"glint-keyscript":    "#!/bin/sh",
			"cryptroot":          "",
			"cryptroot/crypttab": "root_crypt UUID=" + testUUID + " /secret.key luks,keyscript=/glint-keyscript,discard\n",
		}},
		{StyleDracut, map[string]string{
			"etc":          "",
			"etc/crypttab": "root_crypt UUID=" + testUUID + " /secret.key luks,discard\n",
		}},
		{StyleBoth, map[string]string{
			"glint-keyscript":    "#!/bin/sh",
			"cryptroot":          "",
			"cryptroot/crypttab": "root_crypt UUID=" + testUUID + " /secret.key luks,keyscript=/glint-keyscript,discard\n",
			"etc":                "",
			"etc/crypttab":       "root_crypt UUID=" + testUUID + " /secret.key luks,discard\n",
		}},
	}
	for _, c := range cases {
		t.Run(c.style.String(), func(t *testing.T) {
			a, err := BuildKeyCpio(key, tab, c.style)
			if err != nil {
				t.Fatal(err)
			}
			if len(a)%4 != 0 {
				t.Errorf("length %d not a multiple of 4", len(a))
			}
			if !bytes.Contains(a[len(a)-128:], []byte(cpio.Trailer)) {
				t.Errorf("no trailer at the end")
			}
			b, _ := BuildKeyCpio(key, tab, c.style)
			if !bytes.Equal(a, b) {
				t.Errorf("not deterministic")
			}
			recs := readBack(t, a)
			if len(recs) != len(c.files)+1 {
				t.Errorf("%d records, want %d", len(recs), len(c.files)+1)
			}
			sk, ok := recs["secret.key"]
			if !ok || sk.Mode != cpio.S_IFREG|0o400 || content(t, sk) != string(key) {
				t.Errorf("secret.key: %+v", sk.Info)
			}
			for name, want := range c.files {
				r, ok := recs[name]
				if !ok {
					t.Errorf("%s missing", name)
					continue
				}
				if r.UID != 0 || r.GID != 0 || r.MTime != 0 {
					t.Errorf("%s: uid %d gid %d mtime %d", name, r.UID, r.GID, r.MTime)
				}
				if want == "" {
					if r.Mode != cpio.S_IFDIR|0o755 {
						t.Errorf("%s mode %o", name, r.Mode)
					}
					continue
				}
				got := content(t, r)
				if name == "glint-keyscript" {
					if !strings.HasPrefix(got, want) || !strings.Contains(got, "CRYPTTAB_TRIED") || r.Mode != cpio.S_IFREG|0o755 {
						t.Errorf("%s = %q (mode %o)", name, got, r.Mode)
					}
					continue
				}
				// The initramfs-tools crypttab starts with a comment line;
				// dracut's has none (dracut would wait for a device named
				// after it).
				body := got
				if name == "cryptroot/crypttab" {
					_, body, _ = strings.Cut(got, "\n")
				}
				if body != want || r.Mode != cpio.S_IFREG|0o644 {
					t.Errorf("%s = %q (mode %o), want %q", name, got, r.Mode, want)
				}
			}
			// GNU cpio agrees.
			if _, err := exec.LookPath("cpio"); err != nil {
				t.Skip("cpio not installed (apt-get install cpio)")
			}
			cmd := exec.Command("cpio", "-t", "--quiet")
			cmd.Stdin = bytes.NewReader(a)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("cpio -t: %v", err)
			}
			listed := strings.Fields(string(out))
			if len(listed) != len(c.files)+1 || !strings.Contains(string(out), "secret.key") {
				t.Errorf("cpio -t lists %q", listed)
			}
			secret.Wipe(a)
			if bytes.Contains(a, key) || bytes.Count(a, []byte{0}) != len(a) {
				t.Errorf("Wipe left bytes behind")
			}
		})
	}
}

func TestBuildKeyCpioRefusals(t *testing.T) {
	ok := KeyEntry("", testUUID)
	bad := []struct {
		name string
		key  []byte
		tab  []CrypttabEntry
	}{
		{"empty key", nil, []CrypttabEntry{ok}},
		{"no entries", []byte("k"), nil},
		{"no entry uses the key", []byte("k"), []CrypttabEntry{{Name: "swap", Device: "/dev/sda3", KeyFile: "/dev/urandom", Options: []string{"swap"}}}},
		{"newline in name smuggles a line", []byte("k"), []CrypttabEntry{{Name: "a\nevil UUID=x /evil.key luks", Device: "UUID=" + testUUID}}},
		{"space in device", []byte("k"), []CrypttabEntry{{Name: "a", Device: "UUID=x y"}}},
		{"comma in option", []byte("k"), []CrypttabEntry{{Name: "a", Device: "UUID=x", Options: []string{"discard,keyscript=/evil"}}}},
		{"duplicate names", []byte("k"), []CrypttabEntry{ok, ok}},
		{"comment name", []byte("k"), []CrypttabEntry{{Name: "#x", Device: "UUID=x"}}},
	}
	for _, c := range bad {
		if _, err := BuildKeyCpio(c.key, c.tab, StyleBoth); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
	// Options that would redirect the key are dropped, others kept.
	a, err := BuildKeyCpio([]byte("k"), []CrypttabEntry{{Name: "r", Device: "UUID=" + testUUID, Options: []string{"luks", "keyscript=/lib/cryptsetup/scripts/decrypt_keyctl", "keyfile-offset=4", "discard", "initramfs"}}}, StyleInitramfsTools)
	if err != nil {
		t.Fatal(err)
	}
	tab := content(t, readBack(t, a)["cryptroot/crypttab"])
	if !strings.Contains(tab, "r UUID="+testUUID+" /secret.key luks,keyscript=/glint-keyscript,discard,initramfs\n") {
		t.Errorf("crypttab %q", tab)
	}
}

// The key cpio appended to a real gzip initrd: aligned, and the combined
// file still reads (our own reader stops after the compressed archive, so
// check the appended part with u-root's reader at the padded offset).
func TestWriteInitrd(t *testing.T) {
	osInitrd := gzipCpio(t, map[string]string{"init": "#!/bin/sh\n", "cryptroot/crypttab": "root_crypt UUID=" + testUUID + " none luks\n"})
	keyCpio, err := BuildKeyCpio([]byte("key"), []CrypttabEntry{KeyEntry("root_crypt", testUUID)}, StyleInitramfsTools)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	n, err := WriteInitrd(&out, bytes.NewReader(osInitrd), keyCpio)
	if err != nil || n != int64(out.Len()) {
		t.Fatal(err, n)
	}
	padded := (len(osInitrd) + 511) &^ 511
	if out.Len() != padded+len(keyCpio) || !bytes.Equal(out.Bytes()[padded:], keyCpio) {
		t.Fatalf("layout: %d bytes, OS %d padded to %d, cpio %d", out.Len(), len(osInitrd), padded, len(keyCpio))
	}
	if !bytes.Equal(out.Bytes()[len(osInitrd):padded], make([]byte, padded-len(osInitrd))) {
		t.Errorf("padding is not zeros")
	}
	info, err := ReadInitrd(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if info.Style != StyleInitramfsTools || len(info.Crypttab) != 1 || info.Crypttab[0].Name != "root_crypt" {
		t.Errorf("info %+v", info)
	}
}

// gzipCpio builds a gzip-compressed newc archive with GNU cpio, the way
// initramfs-tools does (files created in a temp dir, `find | cpio -o -H newc`).
func gzipCpio(t *testing.T, files map[string]string) []byte {
	t.Helper()
	raw := gnuCpio(t, files)
	var b bytes.Buffer
	z := gzip.NewWriter(&b)
	z.Write(raw)
	z.Close()
	return b.Bytes()
}

func gnuCpio(t *testing.T, files map[string]string) []byte {
	t.Helper()
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("cpio not installed (apt-get install cpio)")
	}
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("sh", "-c", "find . | LC_ALL=C sort | cpio -o -H newc --quiet")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// appendNewc writes the same bytes as u-root's newc writer (which BuildKeyCpio used before
// glint wrote its records itself, and which the kernel's and the e2e LUKS rows' initramfs
// unpacking accepted): directories, a key of every length modulo 4, names of every length
// modulo 4, the trailer.
func TestAppendNewcMatchesURoot(t *testing.T) {
	type rec struct {
		mode uint64
		name string
		data []byte
	}
	recs := []rec{
		{modeDir | 0o755, "etc", nil},
		{modeRegular | 0o644, "etc/crypttab", []byte("root UUID=x none luks\n")},
		{modeRegular | 0o400, "secret.key", []byte("k")},
		{modeRegular | 0o400, "ab", []byte("kk")},
		{modeRegular | 0o755, "abc", []byte("kkk")},
		{modeRegular | 0o400, "abcd", []byte("kkkk")},
		{modeRegular | 0o400, "abcde", bytes.Repeat([]byte{0xff}, 4099)},
	}
	var want bytes.Buffer
	w := cpio.Newc.Writer(&want)
	var got []byte
	for i, r := range recs {
		nlink := 1
		if r.mode&modeType == modeDir {
			nlink = 2
		}
		rec := cpio.Record{Info: cpio.Info{Ino: uint64(i + 1), Mode: r.mode, NLink: uint64(nlink), Name: r.name}}
		if r.mode&modeType == modeRegular {
			rec = cpio.StaticRecord(r.data, rec.Info)
			rec.Info.FileSize = uint64(len(r.data))
		}
		if err := w.WriteRecord(rec); err != nil {
			t.Fatal(err)
		}
		got = appendNewc(got, uint64(i+1), r.mode, nlink, r.name, r.data)
	}
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatal(err)
	}
	got = appendNewc(got, 0, 0, 0, newcTrailer, nil)
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("appendNewc differs from u-root's newc writer:\n got %q\nwant %q", got, want.Bytes())
	}
}
