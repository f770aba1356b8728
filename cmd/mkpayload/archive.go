package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"

	"github.com/u-root/u-root/pkg/cpio"
)

// entry is one archive member before numbering; data is nil for directories and devices.
type entry struct {
	name         string
	mode         uint64 // S_IF* | permissions
	data         []byte
	major, minor uint64 // device numbers of a character device
}

type payload struct {
	entries map[string]entry
}

// skeleton is what every payload has besides /init and modules. The kernel opens
// /dev/console for PID 1's stdin/stdout before anything can mount devtmpfs (init/main.c,
// console_on_rootfs), so the node must be in the archive.
var skeleton = []entry{
	{name: "dev/console", mode: cpio.S_IFCHR | 0o600, major: 5, minor: 1},
	{name: "dev/null", mode: cpio.S_IFCHR | 0o666, major: 1, minor: 3},
}

var emptyDirs = []string{"proc", "sys", "dev", "tmp", "boot", "mnt", "run", "etc", "root"}

func (p *payload) add(e entry) {
	if p.entries == nil {
		p.entries = map[string]entry{}
	}
	// Parents first-class: every directory on the way is its own member, so the kernel's
	// unpacker never has to invent one with its own (build-independent but unstated) mode.
	for dir := path.Dir(e.name); dir != "." && dir != "/"; dir = path.Dir(dir) {
		if _, ok := p.entries[dir]; !ok {
			p.entries[dir] = entry{name: dir, mode: cpio.S_IFDIR | 0o755}
		}
	}
	p.entries[e.name] = e
}

func (p *payload) addFile(name, src string, perm uint64) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("read %s for /%s: %w", src, name, err)
	}
	p.add(entry{name: name, mode: cpio.S_IFREG | perm, data: data})
	return nil
}

// cpio returns the newc archive: sorted names (a parent sorts before its children because it
// is their prefix), inode numbers assigned in that order, every timestamp and owner zero.
func (p *payload) cpio() ([]byte, error) {
	for _, e := range skeleton {
		p.add(e)
	}
	for _, d := range emptyDirs {
		if _, ok := p.entries[d]; !ok {
			p.add(entry{name: d, mode: cpio.S_IFDIR | 0o755})
		}
	}
	names := make([]string, 0, len(p.entries))
	for n := range p.entries {
		names = append(names, n)
	}
	sort.Strings(names)

	var buf bytes.Buffer
	w := cpio.Newc.Writer(&buf)
	for i, n := range names {
		e := p.entries[n]
		info := cpio.Info{
			Ino:    uint64(i + 1),
			Mode:   e.mode,
			NLink:  1,
			Name:   n,
			Rmajor: e.major,
			Rminor: e.minor,
		}
		if e.mode&cpio.S_IFMT == cpio.S_IFDIR {
			info.NLink = 2
		}
		var rec cpio.Record
		if e.mode&cpio.S_IFMT == cpio.S_IFREG {
			rec = cpio.StaticRecord(e.data, info)
		} else {
			rec = cpio.Record{Info: info}
		}
		if err := w.WriteRecord(rec); err != nil {
			return nil, fmt.Errorf("write %s: %w", n, err)
		}
	}
	if err := cpio.WriteTrailer(w); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// compress picks the compressor from the output name.
//
// xz is XZ Utils' xz, single-threaded (one block: the same bytes on every run), with the x86
// branch filter and LZMA2 preset 9e: about 20% smaller than a plain LZMA2 stream of a Go binary,
// which matters in 12 MiB of flash. lc=4 (four literal context bits instead of three) takes
// another 8 KB off glint's payload; Linux's decoder accepts any lc+lp <= 4. The check is CRC32 because Linux's XZ decoder (lib/xz, as
// configured for initramfs in 6.1) verifies CRC32 but rejects CRC64 streams unless built with
// XZ_DEC_ANY_CHECK; the kernel decodes the x86 filter with XZ_DEC_X86 (kernel/glint.config, and
// Debian's kernels). gzip omits name and time (RFC 1952 2.3.1: MTIME 0 means no time stamp) so
// the bytes do not depend on when they were made.
func compress(raw []byte, out string) ([]byte, error) {
	var buf bytes.Buffer
	switch {
	case strings.HasSuffix(out, ".xz"):
		cmd := exec.Command("xz", "--format=xz", "--check=crc32", "--threads=1", "--x86",
			"--lzma2=preset=9e,lc=4,dict=16MiB", "--stdout", "-")
		cmd.Stdin = bytes.NewReader(raw)
		cmd.Stdout = &buf
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("xz (install xz-utils): %v: %s", err, stderr.String())
		}
	case strings.HasSuffix(out, ".gz"):
		w, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(raw); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
	default:
		return raw, nil
	}
	return buf.Bytes(), nil
}
