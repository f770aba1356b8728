package chipset

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// readMMIO copies n bytes of device registers at physical address addr with aligned 32-bit
// loads: registers must not be read with the wide or byte-sized moves a plain copy may use.
// A regular file (a test's stand-in for /dev/mem) is read with pread instead.
func readMMIO(mem string, addr int64, n int) ([]byte, error) {
	if addr%4 != 0 || n%4 != 0 || n <= 0 || n > 4096 {
		return nil, fmt.Errorf("mmio: unaligned or oversized window %#x+%d", addr, n)
	}
	f, err := os.Open(mem)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := make([]byte, n)
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		if _, err := f.ReadAt(out, addr); err != nil {
			return nil, fmt.Errorf("mmio: read %s at %#x: %w", mem, addr, err)
		}
		return out, nil
	}
	page := int64(os.Getpagesize())
	base := addr &^ (page - 1)
	length := int(addr-base) + n
	length = (length + int(page) - 1) &^ (int(page) - 1)
	m, err := unix.Mmap(int(f.Fd()), base, length, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmio: map %s at %#x: %w", mem, base, err)
	}
	defer unix.Munmap(m)
	off := int(addr - base)
	for i := 0; i < n; i += 4 {
		v := atomic.LoadUint32((*uint32)(unsafe.Pointer(&m[off+i])))
		binary.LittleEndian.PutUint32(out[i:], v)
	}
	return out, nil
}
