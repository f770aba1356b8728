package luks

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
)

// Caps for reading an OS initrd. It was verified against the signed /boot
// manifest before glint reads it, but a parser still must not trust it.
const (
	// maxInitrdUnpacked bounds the bytes glint decompresses and walks; the
	// biggest distribution initrds unpack to a few hundred MiB.
	maxInitrdUnpacked = 2 << 30
	// maxCpioName is PATH_MAX.
	maxCpioName = 4096
	// maxCpioRecords bounds the members of one initrd.
	maxCpioRecords = 1 << 20
	// maxInitrdSegments bounds concatenated archives (microcode + main + extras).
	maxInitrdSegments = 16
	// zstdWindow bounds the zstd decoder's memory (initramfs-tools and
	// dracut use the default level, window <= 8 MiB).
	zstdWindow = 64 << 20
)

// InitrdInfo is what glint learns from the OS initrd before appending the key cpio.
type InitrdInfo struct {
	// Style is the detected generator; StyleBoth when neither was recognised.
	Style Style
	// Crypttab is the OS's own crypttab for that style (the last copy in
	// the archive wins, as when the kernel unpacks it), or nil.
	Crypttab []CrypttabEntry
	// Segments lists the archives found, e.g. ["cpio", "zstd"].
	Segments []string
}

// ErrInitrdFormat means the initrd contains something glint cannot read.
var ErrInitrdFormat = errors.New("unrecognised initrd format")

// ReadInitrd walks an OS initrd: zero or more uncompressed newc cpio
// archives (early microcode), then a compressed archive (gzip, zstd, xz,
// lzma, bzip2, lz4). It records which generator built it and keeps its
// crypttab so the mapper names the OS expects (root_crypt, luks-<uuid>)
// survive; see MergeCrypttab. Best effort: on error, fall back to names
// from the owner's config.
func ReadInitrd(untrusted io.Reader) (*InitrdInfo, error) {
	info := &InitrdInfo{}
	var tabTools, tabDracut []byte
	var sawTools, sawDracut bool
	budget := int64(maxInitrdUnpacked)
	records := 0
	visit := func(name string, body io.Reader, size int64) error {
		records++
		if records > maxCpioRecords {
			return fmt.Errorf("initrd: more than %d files: %w", maxCpioRecords, ErrTooLarge)
		}
		switch {
		case name == crypttabInitramfsTools, name == "scripts/local-top/cryptroot", name == "conf/initramfs.conf":
			sawTools = true
		case strings.HasPrefix(name, "usr/lib/dracut/"), name == "usr/lib/dracut":
			sawDracut = true
		}
		if name != crypttabInitramfsTools && name != crypttabDracut {
			return nil
		}
		if size > maxCrypttabSize {
			return fmt.Errorf("initrd: %s is %d bytes (cap %d): %w", name, size, maxCrypttabSize, ErrTooLarge)
		}
		b := make([]byte, size)
		if _, err := io.ReadFull(body, b); err != nil {
			return fmt.Errorf("initrd: %s: %w", name, err)
		}
		if name == crypttabInitramfsTools {
			tabTools = b
		} else {
			tabDracut = b
		}
		return nil
	}

	br := bufio.NewReaderSize(untrusted, 64<<10)
	var off int64
	for seg := 0; ; seg++ {
		// Zero padding between archives (init/initramfs.c skips it too).
		for {
			c, err := br.ReadByte()
			if err == io.EOF {
				return finishInitrd(info, tabTools, tabDracut, sawTools, sawDracut)
			}
			if err != nil {
				return nil, fmt.Errorf("initrd: %w", err)
			}
			if c != 0 {
				br.UnreadByte()
				break
			}
			off++
		}
		if seg == maxInitrdSegments {
			return nil, fmt.Errorf("initrd: more than %d archives: %w", maxInitrdSegments, ErrTooLarge)
		}
		magic, _ := br.Peek(6)
		if bytes.HasPrefix(magic, []byte("07070")) {
			cr := &countingReader{r: br, budget: &budget}
			if err := walkCpio(cr, visit); err != nil {
				return nil, fmt.Errorf("initrd archive at byte %d: %w", off, err)
			}
			off += cr.n
			info.Segments = append(info.Segments, "cpio")
			continue
		}
		dec, name, err := decompressor(br, magic)
		if err != nil {
			return nil, fmt.Errorf("initrd archive at byte %d: %w", off, err)
		}
		info.Segments = append(info.Segments, name)
		// The compressed archive holds the rest of the filesystem; anything
		// after it is a later append (such as a previous glint key cpio),
		// which glint does not need to read.
		cr := &countingReader{r: dec, budget: &budget}
		err = walkCpio(cr, visit)
		if c, ok := dec.(io.Closer); ok {
			c.Close()
		}
		if err != nil {
			return nil, fmt.Errorf("initrd %s archive at byte %d: %w", name, off, err)
		}
		return finishInitrd(info, tabTools, tabDracut, sawTools, sawDracut)
	}
}

func finishInitrd(info *InitrdInfo, tabTools, tabDracut []byte, sawTools, sawDracut bool) (*InitrdInfo, error) {
	var tab []byte
	switch {
	case sawTools && !sawDracut:
		info.Style, tab = StyleInitramfsTools, tabTools
	case sawDracut && !sawTools:
		info.Style, tab = StyleDracut, tabDracut
	default:
		info.Style, tab = StyleBoth, tabTools
		if tab == nil {
			tab = tabDracut
		}
	}
	if tab != nil {
		entries, err := ParseCrypttab(tab)
		if err != nil {
			return nil, fmt.Errorf("initrd crypttab: %w", err)
		}
		info.Crypttab = entries
	}
	return info, nil
}

// decompressor picks the decoder the kernel would (lib/decompress.c,
// compressed_formats[]) from the magic bytes.
func decompressor(r *bufio.Reader, magic []byte) (io.Reader, string, error) {
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		z, err := gzip.NewReader(r)
		if err != nil {
			return nil, "gzip", err
		}
		z.Multistream(false)
		return z, "gzip", nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		z, err := zstd.NewReader(r, zstd.WithDecoderMaxWindow(zstdWindow), zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, "zstd", err
		}
		return zstdCloser{z}, "zstd", nil
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		z, err := xz.NewReader(r)
		if err != nil {
			return nil, "xz", err
		}
		return z, "xz", nil
	case bytes.HasPrefix(magic, []byte{'B', 'Z', 'h'}):
		return bzip2.NewReader(r), "bzip2", nil
	case bytes.HasPrefix(magic, []byte{0x02, 0x21, 0x4c, 0x18}), bytes.HasPrefix(magic, []byte{0x04, 0x22, 0x4d, 0x18}):
		return lz4.NewReader(r), "lz4", nil
	case bytes.HasPrefix(magic, []byte{0x5d, 0x00, 0x00}):
		return nil, "lzma", fmt.Errorf("lzma-compressed initrds are not supported; regenerate with gzip, zstd or xz: %w", ErrInitrdFormat)
	}
	return nil, "", fmt.Errorf("magic % x: %w", magic, ErrInitrdFormat)
}

type zstdCloser struct{ *zstd.Decoder }

func (z zstdCloser) Close() error { z.Decoder.Close(); return nil }

// countingReader counts bytes and enforces the shared unpack budget.
type countingReader struct {
	r      io.Reader
	n      int64
	budget *int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if *c.budget <= 0 {
		return 0, fmt.Errorf("initrd unpacks to more than %d bytes: %w", int64(maxInitrdUnpacked), ErrTooLarge)
	}
	if int64(len(p)) > *c.budget {
		p = p[:*c.budget]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	*c.budget -= int64(n)
	return n, err
}

// walkCpio reads one newc archive up to and including TRAILER!!!, calling
// visit for each member with a reader limited to its contents. Its own
// parser (not u-root's reader) so that every length is capped before use.
func walkCpio(r *countingReader, visit func(name string, body io.Reader, size int64) error) error {
	var hdr [newcHeaderSize]byte
	for {
		start := r.n
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return fmt.Errorf("cpio header at byte %d: %w", start, noEOF(err))
		}
		if m := string(hdr[:6]); m != "070701" && m != "070702" {
			return fmt.Errorf("cpio header at byte %d: magic %q: %w", start, m, ErrInitrdFormat)
		}
		// newc: 13 fields of 8 hex digits after the magic; index 6 is
		// c_filesize, index 11 c_namesize.
		field := func(i int) (uint64, error) {
			s := string(hdr[6+8*i : 14+8*i])
			v, err := strconv.ParseUint(s, 16, 32)
			if err != nil {
				return 0, fmt.Errorf("cpio header at byte %d: field %d %q: %w", start, i, s, ErrFormat)
			}
			return v, nil
		}
		fileSize, err := field(6)
		if err != nil {
			return err
		}
		nameSize, err := field(11)
		if err != nil {
			return err
		}
		if nameSize == 0 || nameSize > maxCpioName {
			return fmt.Errorf("cpio header at byte %d: name of %d bytes (1..%d): %w", start, nameSize, maxCpioName, ErrFormat)
		}
		nameBuf := make([]byte, align4(newcHeaderSize+int(nameSize))-newcHeaderSize)
		if _, err := io.ReadFull(r, nameBuf); err != nil {
			return fmt.Errorf("cpio name at byte %d: %w", start, noEOF(err))
		}
		name := string(bytes.TrimRight(nameBuf[:nameSize], "\x00"))
		if name == trailerName {
			return nil
		}
		name = strings.TrimLeft(strings.TrimPrefix(name, "./"), "/")
		body := io.LimitReader(r, int64(fileSize))
		if err := visit(name, body, int64(fileSize)); err != nil {
			return err
		}
		rest := int64(align4(int(fileSize)))
		if _, err := io.CopyN(io.Discard, r, rest-(int64(fileSize)-remaining(body))); err != nil {
			return fmt.Errorf("cpio member %q: %w", name, noEOF(err))
		}
	}
}

const trailerName = "TRAILER!!!"

func remaining(r io.Reader) int64 {
	if lr, ok := r.(*io.LimitedReader); ok {
		return lr.N
	}
	return 0
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
