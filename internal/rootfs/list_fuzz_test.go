package rootfs

import (
	"bytes"
	"errors"
	"testing"
)

// Seeds: the list of a real small tree (merged /usr, a FIFO, an escaped
// name, a setuid file), and hand-written edge lines.
func FuzzParse(f *testing.F) {
	root := makeRoot(f)
	f.Add(buildList(f, root, DefaultDirs).Marshal())
	f.Add([]byte("glint-rootfs 1\ndirs usr\ndir 755 0 0 usr\nlink /x usr/a\nspecial 10600 0 0 usr/f\n"))
	f.Add([]byte("glint-rootfs 1\ndirs bin usr\nlink usr/bin bin\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := Parse(b)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("not a ParseError: %v", err)
			}
			return
		}
		// Parse accepts only canonical text: writing it back gives the
		// same bytes.
		if !bytes.Equal(l.Marshal(), b) {
			t.Fatal("accepted a non-canonical list")
		}
		if te := Diff(l.Entries, l.Entries); te != nil {
			t.Fatalf("a list differs from itself: %v", te)
		}
	})
}
