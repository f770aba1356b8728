//go:build linux && (amd64 || 386 || arm || arm64 || riscv64 || loong64)

package dongle

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

// hidraw ioctls (linux/hidraw.h): HIDIOCSFEATURE(len) = _IOC(_IOC_WRITE|
// _IOC_READ, 'H', 0x06, len), HIDIOCGFEATURE(len) the same with 0x07. The
// generic _IOC layout (dir in bits 30-31, size in 16-29) holds on the
// architectures in the build constraint.
func hidIOC(nr, size uintptr) uintptr {
	const iocRead, iocWrite = 2, 1
	return (iocRead|iocWrite)<<30 | size<<16 | 'H'<<8 | nr
}

// Hidraw is a /dev/hidrawN device.
type Hidraw struct {
	f *os.File
}

// OpenHidraw opens a hidraw node, e.g. /dev/hidraw3.
func OpenHidraw(devPath string) (*Hidraw, error) {
	f, err := os.OpenFile(devPath, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open dongle: %w", err)
	}
	return &Hidraw{f: f}, nil
}

func (h *Hidraw) ioctl(nr uintptr, buf []byte) (int, error) {
	if len(buf) == 0 || len(buf) > 1<<14-1 {
		return 0, fmt.Errorf("hidraw: buffer of %d bytes", len(buf))
	}
	rc, err := h.f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n uintptr
	var errno unix.Errno
	ctrlErr := rc.Control(func(fd uintptr) {
		n, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, hidIOC(nr, uintptr(len(buf))), uintptr(unsafe.Pointer(&buf[0])))
	})
	if ctrlErr != nil {
		return 0, ctrlErr
	}
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// SetFeature sends a Feature report; buf[0] is the report ID.
func (h *Hidraw) SetFeature(buf []byte) error {
	n, err := h.ioctl(0x06, buf)
	if err != nil {
		return fmt.Errorf("hidraw SET_FEATURE: %w", err)
	}
	if n != len(buf) {
		return fmt.Errorf("hidraw SET_FEATURE: sent %d of %d bytes", n, len(buf))
	}
	return nil
}

// GetFeature reads a Feature report into buf; the caller sets buf[0] to
// the report ID. It returns the bytes read, report ID included.
func (h *Hidraw) GetFeature(buf []byte) (int, error) {
	n, err := h.ioctl(0x07, buf)
	if err != nil {
		return 0, fmt.Errorf("hidraw GET_FEATURE: %w", err)
	}
	return n, nil
}

// Close closes the device node.
func (h *Hidraw) Close() error { return h.f.Close() }

// Open finds the first dongle glint can talk to and opens its hidraw node
// under devDir ("/dev"), reading sysfs from sysfs (os.DirFS("/sys")).
func Open(sysfs fs.FS, devDir string) (Device, Found, error) {
	found, err := Find(sysfs)
	if err != nil {
		return nil, Found{}, err
	}
	for _, f := range found {
		if f.Model.Protocol != ProtocolFeatureReports {
			continue
		}
		d, err := OpenHidraw(filepath.Join(devDir, f.Node))
		if err != nil {
			return nil, f, err
		}
		return d, f, nil
	}
	return nil, found[0], fmt.Errorf("found a %s: glint does not speak its protocol (CTAPHID Secrets App) yet", found[0].Model.Name)
}
