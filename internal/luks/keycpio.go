package luks

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/glint-boot/glint/internal/secret"
)

// Style says which initramfs generator the OS initrd comes from, and so
// which crypttab its unlock code reads.
type Style int

const (
	// StyleBoth writes both files below, each in its own dialect. Each
	// generator ignores the other's file, so this is safe when the
	// generator is unknown.
	StyleBoth Style = iota
	// StyleInitramfsTools (Debian, Ubuntu, PureOS): /cryptroot/crypttab,
	// read by scripts/local-top/cryptroot, with keyscript=/bin/cat.
	StyleInitramfsTools
	// StyleDracut (Fedora, Qubes, RHEL): /etc/crypttab, read by
	// systemd-cryptsetup-generator in the initrd.
	StyleDracut
)

func (s Style) String() string {
	switch s {
	case StyleInitramfsTools:
		return "initramfs-tools"
	case StyleDracut:
		return "dracut"
	default:
		return "both"
	}
}

// ParseStyle accepts "initramfs-tools" (or "debian"), "dracut" (or
// "fedora", "qubes") and "both" (or "").
func ParseStyle(s string) (Style, error) {
	switch strings.ToLower(s) {
	case "", "both", "auto":
		return StyleBoth, nil
	case "initramfs-tools", "debian", "ubuntu":
		return StyleInitramfsTools, nil
	case "dracut", "fedora", "qubes":
		return StyleDracut, nil
	}
	return StyleBoth, fmt.Errorf("unknown initrd style %q (want initramfs-tools, dracut or both)", s)
}

const (
	crypttabInitramfsTools = "cryptroot/crypttab"
	crypttabDracut         = "etc/crypttab"
	newcHeaderSize         = 110
	newcTrailer            = "TRAILER!!!"
	modeDir                = 0o040000 // S_IFDIR
	modeRegular            = 0o100000 // S_IFREG
	modeType               = 0o170000 // S_IFMT
)

// BuildKeyCpio returns a newc cpio archive to append to the OS initrd:
// /secret.key (mode 0400) holding key, and the crypttab(s) for style with
// every entry whose KeyFile is "" pointed at it. The bytes are
// deterministic (mtime 0, uid/gid 0, names sorted, fixed inode numbers),
// end with TRAILER!!! and are a multiple of 4 bytes long.
//
// The result contains the key: the caller wipes it with Wipe once written
// to the kexec buffer. BuildKeyCpio leaves no other copy behind: the output
// buffer is sized exactly and the key is copied straight into it.
// KeyscriptPath is the keyscript glint adds for initramfs-tools.
const KeyscriptPath = "/glint-keyscript"

// fallbackKeyscript gives the injected key on the first try only, then asks
// for the passphrase the way Debian's own prompt does. cryptsetup-initramfs'
// run_keyscript exports CRYPTTAB_TRIED (0 on the first try) and
// CRYPTTAB_NAME; /lib/cryptsetup/askpass is its prompt helper.
const fallbackKeyscript = `#!/bin/sh
if [ "${CRYPTTAB_TRIED:-0}" -eq 0 ] && [ -r "$1" ]; then
	exec cat "$1"
fi
exec /lib/cryptsetup/askpass "Please unlock disk ${CRYPTTAB_NAME}: "
`

func BuildKeyCpio(key []byte, crypttab []CrypttabEntry, style Style) ([]byte, error) {
	if len(key) == 0 || len(key) > maxKeyFile {
		return nil, fmt.Errorf("build key cpio: key of %d bytes (1 byte to 8 MiB)", len(key))
	}
	if len(crypttab) == 0 || len(crypttab) > maxCrypttabEntries {
		return nil, fmt.Errorf("build key cpio: %d crypttab entries (1 to %d)", len(crypttab), maxCrypttabEntries)
	}
	uses := 0
	names := map[string]bool{}
	for _, e := range crypttab {
		if e.KeyFile == "" {
			uses++
		}
		if names[e.Name] {
			return nil, fmt.Errorf("build key cpio: mapper name %q appears twice", e.Name)
		}
		names[e.Name] = true
	}
	if uses == 0 {
		return nil, fmt.Errorf("build key cpio: no crypttab entry uses the injected key (set KeyFile to \"\")")
	}

	type file struct {
		name string
		mode uint64
		data []byte
	}
	files := []file{{name: strings.TrimPrefix(KeyPath, "/"), mode: modeRegular | 0o400, data: key}}
	addTab := func(dir, path string, st Style) error {
		var b strings.Builder
		if st != StyleDracut {
			// dracut 059's parse-crypt.sh does not skip comments: it would
			// wait for a device named after the comment's second word.
			b.WriteString("# written by glint: unlock with the TPM-sealed disk key\n")
		}
		for _, e := range crypttab {
			line, err := formatLine(e, st)
			if err != nil {
				return fmt.Errorf("build key cpio: %w", err)
			}
			b.WriteString(line)
			b.WriteByte('\n')
		}
		files = append(files, file{name: dir, mode: modeDir | 0o755},
			file{name: path, mode: modeRegular | 0o644, data: []byte(b.String())})
		return nil
	}
	if style == StyleBoth || style == StyleInitramfsTools {
		if err := addTab("cryptroot", crypttabInitramfsTools, StyleInitramfsTools); err != nil {
			return nil, err
		}
		files = append(files, file{name: strings.TrimPrefix(KeyscriptPath, "/"), mode: modeRegular | 0o755, data: []byte(fallbackKeyscript)})
	}
	if style == StyleBoth || style == StyleDracut {
		if err := addTab("etc", crypttabDracut, StyleDracut); err != nil {
			return nil, err
		}
	}
	// Sorted names put every directory before its contents.
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })

	// Size the output exactly so the buffer never grows: growing would
	// leave an unwiped copy of the key in the old backing array.
	total := 0
	for _, f := range files {
		total += align4(newcHeaderSize+len(f.name)+1) + align4(len(f.data))
	}
	total += align4(newcHeaderSize + len(newcTrailer) + 1)
	out := make([]byte, 0, total)
	for i, f := range files {
		nlink := 1
		if f.mode&modeType == modeDir {
			nlink = 2
		}
		out = appendNewc(out, uint64(i+1), f.mode, nlink, f.name, f.data)
	}
	out = appendNewc(out, 0, 0, 0, newcTrailer, nil)
	if len(out) != total || cap(out) != total {
		secret.Wipe(out)
		return nil, fmt.Errorf("build key cpio: internal size mismatch (%d bytes, expected %d)", len(out), total)
	}
	return out, nil
}

// appendNewc appends one newc ("070701") cpio record: the header's 13 fields
// as 8 upper-case hex digits (GNU cpio's spelling) with mtime, uid, gid,
// devices and checksum 0, the name NUL-terminated and padded to 4 bytes,
// then data padded to 4 bytes. glint writes these few records itself rather
// than link u-root's cpio package into the payload: that package pulls in
// regexp and go-humanize through u-root's ls, 74 KB of the compressed payload
// (docs/kernel.md). The caller sizes out so that append never reallocates (a
// reallocation would leave an unwiped copy of the key behind).
func appendNewc(out []byte, ino, mode uint64, nlink int, name string, data []byte) []byte {
	const hexDigits = "0123456789ABCDEF"
	field := func(v uint64) {
		for shift := 28; shift >= 0; shift -= 4 {
			out = append(out, hexDigits[(v>>uint(shift))&0xf])
		}
	}
	out = append(out, "070701"...)
	for _, v := range []uint64{ino, mode, 0, 0, uint64(nlink), 0, uint64(len(data)), 0, 0, 0, 0, uint64(len(name) + 1), 0} {
		field(v)
	}
	out = append(out, name...)
	for n := newcHeaderSize + len(name); n < align4(newcHeaderSize+len(name)+1); n++ {
		out = append(out, 0)
	}
	out = append(out, data...)
	for n := len(data); n < align4(len(data)); n++ {
		out = append(out, 0)
	}
	return out
}

func align4(n int) int { return (n + 3) &^ 3 }

// initrdAlign is the boundary Heads pads the OS initrd to before appending
// (kexec-insert-key.sh). The kernel only needs 4 (init/initramfs.c looks for
// a cpio magic at 4-byte aligned offsets and skips zero padding), 512 keeps
// parity with Heads.
const initrdAlign = 512

// WriteInitrd writes osInitrd, zero padding to a 512-byte boundary, then
// keyCpio: the initrd to hand to kexec. Later cpio members replace earlier
// ones of the same name when the kernel unpacks, so the appended crypttab
// wins over the OS's own.
func WriteInitrd(w io.Writer, osInitrd io.Reader, keyCpio []byte) (int64, error) {
	n, err := io.Copy(w, osInitrd)
	if err != nil {
		return n, fmt.Errorf("write initrd: %w", err)
	}
	if pad := (initrdAlign - int(n%initrdAlign)) % initrdAlign; pad > 0 {
		m, err := w.Write(make([]byte, pad))
		n += int64(m)
		if err != nil {
			return n, fmt.Errorf("write initrd: %w", err)
		}
	}
	m, err := w.Write(keyCpio)
	n += int64(m)
	if err != nil {
		return n, fmt.Errorf("write initrd: %w", err)
	}
	return n, nil
}
