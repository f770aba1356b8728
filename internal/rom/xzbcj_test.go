package rom

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"testing"
)

// xzCLI compresses b with XZ Utils' xz and the given options (what cmd/mkpayload runs).
func xzCLI(t *testing.T, b []byte, opts ...string) []byte {
	t.Helper()
	xzBin, err := exec.LookPath("xz")
	if err != nil {
		t.Skip("xz not installed (apt-get install xz-utils)")
	}
	cmd := exec.Command(xzBin, append([]string{"--format=xz", "--threads=1", "-c"}, opts...)...)
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("xz %v: %v", opts, err)
	}
	return out
}

// Real x86 code (this test's own binary: Go's amd64 output, full of CALLs and JMPs) through
// XZ Utils with the x86 branch filter and glint's decoder: the same bytes back, for the
// options cmd/mkpayload uses and for the filter's start offset and the other check types.
func TestXZX86RealCode(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	code, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	code = code[:min(len(code), 3<<20)]
	if bytes.Count(code, []byte{0xe8}) < 1000 {
		t.Fatalf("%s does not look like x86 code", exe)
	}
	for _, opts := range [][]string{
		{"--check=crc32", "--x86", "--lzma2=preset=9e"}, // cmd/mkpayload
		{"--check=crc32", "--x86=start=4096", "--lzma2=preset=1"},
		{"--check=none", "--x86", "--lzma2=preset=1"},
		{"--check=crc64", "--x86", "--lzma2=preset=1"},
	} {
		z := xzCLI(t, code, opts...)
		blk, ok, err := parseXZX86(z)
		if err != nil || !ok {
			t.Fatalf("%v: x86 + LZMA2 not recognised: %v", opts, err)
		}
		got, err := decompressInitramfs(z)
		if err != nil {
			t.Fatalf("%v: %v", opts, err)
		}
		if !bytes.Equal(got, code) {
			t.Fatalf("%v: decoded bytes differ (start %d)", opts, blk.start)
		}
	}
	// without the filter, ulikunitz/xz reads the stream as before
	z := xzCLI(t, code[:1<<20], "--check=crc32", "--lzma2=preset=1")
	if _, ok, err := parseXZX86(z); ok || err != nil {
		t.Fatalf("an LZMA2-only stream taken for x86: %v", err)
	}
	if got, err := decompressInitramfs(z); err != nil || !bytes.Equal(got, code[:1<<20]) {
		t.Fatalf("LZMA2 only: %v", err)
	}
}

// The committed sample (a newc archive with /etc/glint/owner.asc, made by xz --x86
// --lzma2=preset=9e,dict=64KiB --check=crc32) reads as an initramfs; damage is refused with a
// typed error, never a panic.
func TestXZX86Sample(t *testing.T) {
	z, err := os.ReadFile("testdata/x86-bcj.cpio.xz")
	if err != nil {
		t.Fatal(err)
	}
	files, err := ReadInitramfs(z)
	if err != nil {
		t.Fatal(err)
	}
	if string(files["etc/glint/owner.asc"]) != "KEY" || len(files["init"]) != 6000 {
		t.Fatalf("files: %d, owner.asc %q", len(files), files["etc/glint/owner.asc"])
	}
	flip := func(at int) []byte { b := bytes.Clone(z); b[at] ^= 0x40; return b }
	// the footer's backward size is the index's; the block's check is right before the index
	index := (int(binary.LittleEndian.Uint32(z[len(z)-8:])) + 1) * 4
	check := len(z) - 12 - index - 4
	for name, bad := range map[string][]byte{
		"stream header": flip(7),
		"block header":  flip(14),
		"data":          flip(len(z) / 2),
		"check":         flip(check),
		"truncated":     z[:len(z)/2],
		"header only":   z[:14],
		"no block":      append(bytes.Clone(z[:12]), 0, 0, 0, 0),
	} {
		_, err := ReadInitramfs(bad)
		var pe *ParseError
		if err == nil || !errors.As(err, &pe) {
			t.Errorf("%s: %v, want a ParseError", name, err)
		}
	}
}
