package rom

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/ulikunitz/xz"
)

// The initramfs inside a Linux payload: a cpio archive in the "newc"
// format (Linux Documentation/driver-api/early-userspace/buffer-format.rst),
// usually xz- or gzip-compressed. glint reads it to know which kernel
// modules its /init will load and measure (PCR 5) and which owner files it
// would fall back to (/etc/glint, PCR 7) when CBFS holds none.
//
//	header: "070701" or "070702", then 13 fields of 8 hex digits: ino,
//	mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor,
//	rdevminor, namesize (with the NUL), check; the name; padding to 4
//	bytes; the data; padding to 4 bytes. "TRAILER!!!" ends the archive.
const (
	newcHeaderSize = 110
	newcTrailer    = "TRAILER!!!"
	cpioModeMask   = 0o170000
	cpioModeFile   = 0o100000
	maxCPIOName    = 4096 // PATH_MAX
)

// MaxInitramfsFiles bounds the entries read from one archive.
const MaxInitramfsFiles = 1 << 16

// ReadInitramfs returns the regular files of an initramfs (names without a
// leading "/" or "./"), decompressing xz or gzip. Only the first archive is
// read: glint's payload is one. At most MaxDecompressed bytes in all.
func ReadInitramfs(untrusted []byte) (map[string][]byte, error) {
	raw, err := decompressInitramfs(untrusted)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for off, n := 0, 0; ; n++ {
		if n >= MaxInitramfsFiles {
			return nil, errorf(int64(off), "cpio", ErrTooLarge, "more than %d entries", MaxInitramfsFiles)
		}
		if off+newcHeaderSize > len(raw) {
			return nil, errorf(int64(off), "cpio", ErrTruncated, "no %s entry", newcTrailer)
		}
		h := raw[off : off+newcHeaderSize]
		if m := string(h[:6]); m != "070701" && m != "070702" {
			return nil, errorf(int64(off), "cpio.magic", ErrFormat, "%q is not a newc header", printable(h[:6]))
		}
		var f [13]uint64
		for i := range f {
			v, err := strconv.ParseUint(string(h[6+8*i:14+8*i]), 16, 32)
			if err != nil {
				return nil, errorf(int64(off+6+8*i), "cpio", ErrFormat, "header field %d is not 8 hex digits", i)
			}
			f[i] = v
		}
		mode, size, nameSize := f[1], f[6], f[11]
		if nameSize == 0 || nameSize > maxCPIOName {
			return nil, errorf(int64(off+94), "cpio.namesize", ErrFormat, "%d", nameSize)
		}
		nameEnd := uint64(off) + newcHeaderSize + nameSize
		dataAt := align4(nameEnd)
		dataEnd := dataAt + size
		if dataEnd > uint64(len(raw)) {
			return nil, errorf(int64(off), "cpio.filesize", ErrTruncated, "entry of %d bytes runs past the archive", size)
		}
		name := cString(raw[off+newcHeaderSize : nameEnd])
		if name == newcTrailer {
			return files, nil
		}
		if mode&cpioModeMask == cpioModeFile {
			clean := strings.TrimPrefix(path.Clean("/"+name), "/")
			files[clean] = raw[dataAt:dataEnd:dataEnd]
		}
		off = int(align4(dataEnd))
	}
}

func align4(n uint64) uint64 { return (n + 3) &^ 3 }

func printable(b []byte) string { return cName(b) }

func decompressInitramfs(b []byte) ([]byte, error) {
	var r io.Reader
	switch {
	case bytes.HasPrefix(b, []byte("\xfd7zXZ\x00")):
		// glint's own payload: the x86 branch filter before LZMA2 (xzbcj.go)
		if blk, ok, err := parseXZX86(b); err != nil {
			return nil, err
		} else if ok {
			return decodeXZX86(b, blk)
		}
		xr, err := xz.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, errorf(0, "xz", ErrFormat, "%v", err)
		}
		xr.SingleStream = true
		r = xr
	case bytes.HasPrefix(b, []byte{0x1f, 0x8b}):
		gr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, errorf(0, "gzip", ErrFormat, "%v", err)
		}
		gr.Multistream(false)
		r = gr
	case bytes.HasPrefix(b, []byte("0707")):
		return b, nil
	default:
		return nil, errorf(0, "initramfs", ErrFormat, "neither a cpio archive nor xz or gzip")
	}
	out, err := io.ReadAll(io.LimitReader(r, MaxDecompressed+1))
	if err != nil {
		return nil, errorf(0, "initramfs", ErrFormat, "decompress: %v", err)
	}
	if len(out) > MaxDecompressed {
		return nil, errorf(0, "initramfs", ErrTooLarge, "decompresses past %d bytes", MaxDecompressed)
	}
	return out, nil
}

// PayloadFiles returns the files of the image's Linux payload initramfs.
func (img *Image) PayloadFiles() (*LinuxPayload, map[string][]byte, error) {
	p, err := img.Payload()
	if err != nil {
		return nil, nil, err
	}
	if p.Initrd == nil {
		return p, map[string][]byte{}, nil
	}
	data, err := p.Initrd.Contents()
	if err != nil {
		return nil, nil, fmt.Errorf("payload initrd: %w", err)
	}
	files, err := ReadInitramfs(data)
	if err != nil {
		return nil, nil, fmt.Errorf("payload initrd: %w", err)
	}
	return p, files, nil
}
