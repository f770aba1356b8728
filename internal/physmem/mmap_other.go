//go:build !linux

package physmem

import "errors"

func (m *Mem) mmapRead(p []byte, off int64) (int, error) {
	return 0, errors.New("mmap of physical memory needs Linux")
}
