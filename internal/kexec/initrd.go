package kexec

import (
	"fmt"
	"io"
	"os"
)

// initrdAlign is the alignment of each archive in the combined initrd: the
// kernel's initramfs unpacker expects cpio "newc" headers on 4-byte
// boundaries (Documentation/driver-api/early-userspace/buffer-format.rst).
const initrdAlign = 4

// WriteInitrd writes the combined initrd to w: each initrd, zero-padded to a
// multiple of 4 bytes, then extra (unpadded). It returns the total length.
func WriteInitrd(w io.Writer, initrds []File, extra []byte) (int64, error) {
	var n int64
	var zeros [initrdAlign]byte
	for _, f := range initrds {
		m, err := copyFile(w, f)
		n += m
		if err != nil {
			return n, err
		}
		if n > MaxInitrdSize {
			return n, fmt.Errorf("initrds: %w (%d bytes)", ErrTooLarge, MaxInitrdSize)
		}
		if pad := (initrdAlign - n%initrdAlign) % initrdAlign; pad > 0 {
			k, err := w.Write(zeros[:pad])
			n += int64(k)
			if err != nil {
				return n, err
			}
		}
	}
	if len(extra) > 0 {
		k, err := w.Write(extra)
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func copyFile(w io.Writer, f File) (int64, error) {
	if f.Data != nil {
		k, err := w.Write(f.Data)
		return int64(k), err
	}
	fh, err := os.Open(f.Path)
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	n, err := io.Copy(w, io.LimitReader(fh, MaxInitrdSize+1))
	if err != nil {
		return n, fmt.Errorf("read %s: %w", f.Path, err)
	}
	return n, nil
}
