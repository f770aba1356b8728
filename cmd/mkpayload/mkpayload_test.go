package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/u-root/u-root/pkg/cpio"
)

// kernelModules is the module tree scripts/fetch-kernel.sh unpacks; tests that need real
// modules skip without it (make payload fetches it first).
func kernelModules(t *testing.T) string {
	t.Helper()
	top, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	ver, err := os.ReadFile(filepath.Join(top, "cache/kernel/version"))
	if err != nil {
		t.Skip("no Debian kernel in cache/kernel: run scripts/fetch-kernel.sh")
	}
	return filepath.Join(top, "cache/kernel/modules", strings.TrimSpace(string(ver)))
}

func fakeInit(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "glint")
	if err := os.WriteFile(p, []byte("#!/bin/sh\necho hi\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func readArchive(t *testing.T, raw []byte) []cpio.Record {
	t.Helper()
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatalf("read back archive: %v", err)
	}
	return recs
}

// The same inputs give the same bytes, whatever the working directory and file dates.
func TestReproducible(t *testing.T) {
	mods := kernelModules(t)
	var outs [][]byte
	for i := 0; i < 2; i++ {
		dir := t.TempDir()
		in := fakeInit(t, dir)
		if i == 1 {
			// a different directory, and a different mtime on the input
			if err := os.Chtimes(in, time.Unix(1e9, 0), time.Unix(1e9, 0)); err != nil {
				t.Fatal(err)
			}
		}
		out := filepath.Join(dir, "p.cpio.xz")
		if err := run([]string{"-init", in, "-modules", mods, "-o", out}); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, b)
	}
	if !bytes.Equal(outs[0], outs[1]) {
		t.Fatalf("two builds differ: %d and %d bytes", len(outs[0]), len(outs[1]))
	}
}

func TestArchiveMetadata(t *testing.T) {
	dir := t.TempDir()
	p := &payload{}
	if err := p.addFile("init", fakeInit(t, dir), 0o755); err != nil {
		t.Fatal(err)
	}
	raw, err := p.cpio()
	if err != nil {
		t.Fatal(err)
	}
	recs := readArchive(t, raw)
	seen := map[string]cpio.Info{}
	prev := ""
	for i, r := range recs {
		if r.Name <= prev {
			t.Errorf("entry %q after %q: not sorted", r.Name, prev)
		}
		prev = r.Name
		if r.Ino != uint64(i+1) || r.UID != 0 || r.GID != 0 || r.MTime != 0 {
			t.Errorf("%s: ino %d uid %d gid %d mtime %d, want %d 0 0 0", r.Name, r.Ino, r.UID, r.GID, r.MTime, i+1)
		}
		seen[r.Name] = r.Info
	}
	con, ok := seen["dev/console"]
	if !ok || con.Mode&cpio.S_IFMT != cpio.S_IFCHR || con.Rmajor != 5 || con.Rminor != 1 {
		t.Errorf("dev/console = %+v, want char device 5,1", con)
	}
	null := seen["dev/null"]
	if null.Rmajor != 1 || null.Rminor != 3 {
		t.Errorf("dev/null = %d,%d, want 1,3", null.Rmajor, null.Rminor)
	}
	if in := seen["init"]; in.Mode != cpio.S_IFREG|0o755 {
		t.Errorf("init mode %o, want regular 0755", in.Mode)
	}
	for _, d := range emptyDirs {
		if seen[d].Mode&cpio.S_IFMT != cpio.S_IFDIR {
			t.Errorf("%s missing or not a directory", d)
		}
	}
}

// Every module's dependencies come earlier in load-order, and ext4's come with it.
func TestModuleOrder(t *testing.T) {
	mods := kernelModules(t)
	p := &payload{}
	if err := p.addModules(mods, []string{"virtio_blk", "ext4", "vfat"}); err != nil {
		t.Fatal(err)
	}
	list := strings.Fields(string(p.entries["lib/modules/load-order"].data))
	pos := map[string]int{}
	for i, l := range list {
		if strings.HasPrefix(l, "/") {
			t.Errorf("load-order line %q is absolute; glint joins it to /lib/modules", l)
		}
		if _, ok := p.entries["lib/modules/"+l]; !ok {
			t.Errorf("load-order names %s, which is not in the archive", l)
		}
		pos[modName(filepath.Base(l))] = i
	}
	for _, pair := range [][2]string{{"jbd2", "ext4"}, {"mbcache", "ext4"}, {"crc16", "ext4"}, {"virtio", "virtio_blk"}, {"virtio_ring", "virtio_blk"}, {"fat", "vfat"}} {
		dep, ok1 := pos[pair[0]]
		user, ok2 := pos[pair[1]]
		if !ok1 || !ok2 || dep > user {
			t.Errorf("%s (at %d, present %v) must load before %s (at %d, present %v)", pair[0], dep, ok1, pair[1], user, ok2)
		}
	}
	if err := p.addModules(mods, []string{"no_such_module"}); err == nil {
		t.Error("a missing module was accepted")
	}
}

// The host's xz (a second, independent decoder) accepts the stream and reports CRC32, the
// check Linux's initramfs decoder supports.
func TestXZCheckIsCRC32(t *testing.T) {
	xzBin, err := exec.LookPath("xz")
	if err != nil {
		t.Skip("xz not installed (apt-get install xz-utils)")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "p.cpio.xz")
	if err := run([]string{"-init", fakeInit(t, dir), "-o", out}); err != nil {
		t.Fatal(err)
	}
	info, err := exec.Command(xzBin, "--robot", "--list", out).CombinedOutput()
	if err != nil {
		t.Fatalf("xz --list: %v\n%s", err, info)
	}
	if !strings.Contains(string(info), "CRC32") {
		t.Errorf("xz check is not CRC32:\n%s", info)
	}
	raw, err := exec.Command(xzBin, "-dc", out).Output()
	if err != nil {
		t.Fatalf("xz -d: %v", err)
	}
	names := map[string]bool{}
	for _, r := range readArchive(t, raw) {
		names[r.Name] = true
	}
	if !names["init"] || !names["dev/console"] {
		t.Errorf("decompressed archive lacks init or dev/console: %v", names)
	}
}

// The xz stream carries the x86 branch filter (what makes the payload fit) and is the same
// bytes on a second run.
func TestXZFilterAndDeterminism(t *testing.T) {
	xzBin, err := exec.LookPath("xz")
	if err != nil {
		t.Skip("xz not installed (apt-get install xz-utils)")
	}
	raw := bytes.Repeat([]byte("glint payload \xe8\x00\x00\x00\x00"), 4096)
	a, err := compress(raw, "p.cpio.xz")
	if err != nil {
		t.Fatal(err)
	}
	b, err := compress(raw, "p.cpio.xz")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("two runs gave different bytes")
	}
	p := filepath.Join(t.TempDir(), "p.xz")
	if err := os.WriteFile(p, a, 0o644); err != nil {
		t.Fatal(err)
	}
	info, err := exec.Command(xzBin, "--robot", "--list", "-vv", p).CombinedOutput()
	if err != nil {
		t.Fatalf("xz --list: %v\n%s", err, info)
	}
	if !strings.Contains(string(info), "x86") || !strings.Contains(string(info), "CRC32") {
		t.Errorf("want the x86 filter and a CRC32 check:\n%s", info)
	}
	// xz --list does not print lc: read the first LZMA2 chunk's properties byte. The stream
	// header is 12 bytes, the block header (b[12]+1)*4; the chunk's control byte, 2 bytes of
	// unpacked and 2 of packed size, then (pb*5+lp)*9+lc.
	if len(a) < 14 {
		t.Fatalf("xz stream of %d bytes", len(a))
	}
	chunk := 12 + (int(a[12])+1)*4
	if len(a) < chunk+6 || a[chunk]&0xe0 != 0xe0 {
		t.Fatalf("first LZMA2 chunk at %d does not reset the properties", chunk)
	}
	props := int(a[chunk+5])
	if lc, lp, pb := props%9, props/9%5, props/45; lc != 4 || lp != 0 || pb != 2 {
		t.Errorf("LZMA2 lc=%d lp=%d pb=%d, want lc=4 lp=0 pb=2", lc, lp, pb)
	}
}
