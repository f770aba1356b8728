package luks

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// compressWith runs a real compressor the way initramfs-tools and dracut
// do (mkinitramfs: "zstd -q -1 -T0", "xz --check=crc32", "lz4 -9 -l").
func compressWith(t *testing.T, raw []byte, tool string, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Skipf("%s not installed (apt-get install %s)", tool, tool)
	}
	cmd := exec.Command(tool, args...)
	cmd.Stdin = bytes.NewReader(raw)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	return out
}

var debianFiles = map[string]string{
	"init":                        "#!/bin/sh\n",
	"conf/initramfs.conf":         "MODULES=most\n",
	"scripts/local-top/cryptroot": "#!/bin/sh\n",
	"cryptroot/crypttab":          "# generated\nroot_crypt UUID=" + testUUID + " none luks,discard\nswap_crypt /dev/sda3 /dev/urandom swap,cipher=aes-xts-plain64\n",
}

var dracutFiles = map[string]string{
	"init":                               "",
	"usr/lib/dracut/modules.txt":         "crypt\n",
	"etc/crypttab":                       "luks-" + testUUID + " UUID=" + testUUID + " none discard\n",
	"usr/lib/systemd/systemd-cryptsetup": "",
}

func TestReadInitrdReal(t *testing.T) {
	// An early microcode archive first, uncompressed, as Debian and Fedora ship.
	microcode := gnuCpio(t, map[string]string{"kernel/x86/microcode/GenuineIntel.bin": strings.Repeat("\x01", 1000)})
	debian := gnuCpio(t, debianFiles)
	dracut := gnuCpio(t, dracutFiles)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	cases := []struct {
		name      string
		initrd    func(t *testing.T) []byte
		style     Style
		segments  string
		firstName string
	}{
		{"debian zstd + microcode", func(t *testing.T) []byte { return cat(microcode, compressWith(t, debian, "zstd", "-q", "-1", "-c")) }, StyleInitramfsTools, "cpio,zstd", "root_crypt"},
		{"debian gzip", func(t *testing.T) []byte { return compressWith(t, debian, "gzip", "-9", "-n", "-c") }, StyleInitramfsTools, "gzip", "root_crypt"},
		{"debian xz", func(t *testing.T) []byte { return compressWith(t, debian, "xz", "--check=crc32", "-c") }, StyleInitramfsTools, "xz", "root_crypt"},
		{"debian bzip2", func(t *testing.T) []byte { return compressWith(t, debian, "bzip2", "-c") }, StyleInitramfsTools, "bzip2", "root_crypt"},
		{"debian lz4 legacy", func(t *testing.T) []byte { return compressWith(t, debian, "lz4", "-9", "-l", "-c") }, StyleInitramfsTools, "lz4", "root_crypt"},
		{"debian uncompressed", func(t *testing.T) []byte { return debian }, StyleInitramfsTools, "cpio", "root_crypt"},
		{"fedora zstd + microcode", func(t *testing.T) []byte { return cat(microcode, compressWith(t, dracut, "zstd", "-q", "-c")) }, StyleDracut, "cpio,zstd", "luks-" + testUUID},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			info, err := ReadInitrd(bytes.NewReader(c.initrd(t)))
			if err != nil {
				t.Fatal(err)
			}
			if info.Style != c.style || strings.Join(info.Segments, ",") != c.segments {
				t.Errorf("style %v segments %v", info.Style, info.Segments)
			}
			if len(info.Crypttab) == 0 || info.Crypttab[0].Name != c.firstName || info.Crypttab[0].UUID() != testUUID {
				t.Fatalf("crypttab %+v", info.Crypttab)
			}
			// The OS name survives the merge; other volumes stay as they were.
			merged := MergeCrypttab(info.Crypttab, []string{testUUID})
			a, err := BuildKeyCpio([]byte("key"), merged, info.Style)
			if err != nil {
				t.Fatal(err)
			}
			recs := readBack(t, a)
			path := map[Style]string{StyleInitramfsTools: crypttabInitramfsTools, StyleDracut: crypttabDracut}[c.style]
			tab := content(t, recs[path])
			if !strings.Contains(tab, c.firstName+" UUID="+testUUID+" /secret.key luks") || !strings.Contains(tab, "discard") {
				t.Errorf("crypttab %q", tab)
			}
			if c.style == StyleInitramfsTools && !strings.Contains(tab, "swap_crypt /dev/sda3 /dev/urandom swap,cipher=aes-xts-plain64\n") {
				t.Errorf("other entry lost: %q", tab)
			}
		})
	}
}

func TestMergeCrypttabAddsUnlisted(t *testing.T) {
	other := "9a9a9a9a-0000-1111-2222-333333333333"
	got := MergeCrypttab([]CrypttabEntry{{Name: "root_crypt", Device: "/dev/disk/by-uuid/" + strings.ToUpper(testUUID), KeyFile: "none"}}, []string{testUUID, other})
	if len(got) != 2 || got[0].Name != "root_crypt" || got[0].KeyFile != "" || got[1].Name != "luks-"+other || got[1].KeyFile != "" {
		t.Errorf("%+v", got)
	}
}

func TestReadInitrdHostile(t *testing.T) {
	hdr := func(nameSize, fileSize string) []byte {
		return []byte("070701" + strings.Repeat("00000000", 6) + fileSize + strings.Repeat("00000000", 4) + nameSize + "00000000")
	}
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"name size 4 GiB", hdr("FFFFFFFF", "00000000"), ErrFormat},
		{"name size 0", hdr("00000000", "00000000"), ErrFormat},
		{"non-hex field", append(hdr("0000000b", "0000zzzz"), "TRAILER!!!\x00"...), ErrFormat},
		{"huge crypttab", append(hdr("00000013", "FFFFFFFF"), "cryptroot/crypttab\x00\x00\x00\x00"...), ErrTooLarge},
		{"file runs past end", append(hdr("00000005", "00100000"), "init\x00\x00\x00\x00"...), nil},
		{"garbage", []byte("this is not an initrd"), ErrInitrdFormat},
		{"lzma", []byte{0x5d, 0, 0, 0x80, 0}, ErrInitrdFormat},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadInitrd(bytes.NewReader(c.in))
			if err == nil {
				t.Fatal("accepted")
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Errorf("got %v, want %v", err, c.want)
			}
		})
	}
	// Zero padding alone is an empty initrd with nothing to learn.
	info, err := ReadInitrd(bytes.NewReader(make([]byte, 4096)))
	if err != nil || info.Style != StyleBoth || info.Crypttab != nil {
		t.Errorf("zeros: %+v %v", info, err)
	}
}

func TestParseCrypttab(t *testing.T) {
	got, err := ParseCrypttab([]byte("# c\n\n root_crypt\tUUID=" + testUUID + "   none luks,discard\nhome UUID=abc\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "root_crypt" || got[0].KeyFile != "none" || strings.Join(got[0].Options, ",") != "luks,discard" || got[1].KeyFile != "none" {
		t.Errorf("%+v", got)
	}
	for _, bad := range []string{"only-one-field\n", "a b c d e\n", strings.Repeat("x", maxCrypttabSize+1)} {
		if _, err := ParseCrypttab([]byte(bad)); err == nil {
			t.Errorf("%.20q accepted", bad)
		}
	}
}
