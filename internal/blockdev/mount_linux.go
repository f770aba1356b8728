package blockdev

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Filesystems are the types glint mounts /boot and key sticks as, tried in
// this order.
var Filesystems = []string{"ext4", "vfat", "ext2", "ext3"}

// Mount mounts dev on dir (created if needed) as the first of Filesystems
// that works, never with suid, device files or executables.
func Mount(dev, dir string, readOnly bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if readOnly {
		flags |= unix.MS_RDONLY
	}
	var errs []string
	for _, fs := range Filesystems {
		err := unix.Mount(dev, dir, fs, flags, "")
		if err == nil {
			return nil
		}
		errs = append(errs, fs+": "+err.Error())
	}
	return fmt.Errorf("mount %s: %s", dev, strings.Join(errs, "; "))
}

// Unmount unmounts dir.
func Unmount(dir string) error { return unix.Unmount(dir, 0) }
