package physmem

import (
	"os"

	"golang.org/x/sys/unix"
)

func (m *Mem) mmapRead(p []byte, off int64) (int, error) {
	page := int64(os.Getpagesize())
	base := off &^ (page - 1)
	length := int(off-base) + len(p)
	length = (length + int(page) - 1) &^ (int(page) - 1)
	b, err := unix.Mmap(int(m.f.Fd()), base, length, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return 0, err
	}
	defer unix.Munmap(b)
	return copy(p, b[off-base:]), nil
}
