package usbboot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// SysStorage mounts the USB mass-storage file systems the kernel found
// (read-only, nosuid, nodev, noexec).
type SysStorage struct {
	// MountRoot is where file systems are mounted (one directory per
	// device); "" means /run/glint/usb.
	MountRoot string
	// SysBlock is the sysfs block class directory; "" means
	// /sys/class/block (tests point it at a copy).
	SysBlock string
	// Include says whether a block device is USB storage; nil means its
	// sysfs device path runs through a USB bus. The emulated laptop stands
	// a virtio disk in for a stick where the payload kernel has no USB
	// host driver, and says so.
	Include func(name, sysPath string) bool

	mounted []string
}

// fsTypes are the file systems sticks carry.
var fsTypes = []string{"vfat", "exfat", "ext4", "ext3", "ext2"}

// Devices lists the block devices (partitions, or whole disks without
// partitions) that Include selects, sorted.
func (s *SysStorage) Devices() ([]string, error) {
	sys := s.SysBlock
	if sys == "" {
		sys = "/sys/class/block"
	}
	ents, err := os.ReadDir(sys)
	if err != nil {
		return nil, err
	}
	include := s.Include
	if include == nil {
		include = func(_, p string) bool { return strings.Contains(p, "/usb") }
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, "loop") || strings.HasPrefix(n, "ram") || strings.HasPrefix(n, "dm-") || strings.HasPrefix(n, "zram") || strings.HasPrefix(n, "sr") {
			continue
		}
		p, err := filepath.EvalSymlinks(filepath.Join(sys, n))
		if err != nil || !include(n, p) {
			continue
		}
		// A whole disk with partitions: use the partitions.
		if _, err := os.Stat(filepath.Join(p, "partition")); err != nil && hasPartitions(p, n) {
			continue
		}
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

func hasPartitions(sysPath, name string) bool {
	ents, _ := os.ReadDir(sysPath)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), name) {
			return true
		}
	}
	return false
}

// MountAll mounts every selected device it can read; devices without a
// known file system are skipped (reported only if none mounts).
func (s *SysStorage) MountAll() ([]Mount, error) {
	devs, err := s.Devices()
	if err != nil {
		return nil, err
	}
	root := s.MountRoot
	if root == "" {
		root = "/run/glint/usb"
	}
	var out []Mount
	var errs []string
	for _, n := range devs {
		dir := filepath.Join(root, n)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return out, err
		}
		if err := mountAny("/dev/"+n, dir); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		s.mounted = append(s.mounted, dir)
		out = append(out, Mount{Device: "/dev/" + n, Dir: dir})
	}
	if len(out) == 0 && len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "; "))
	}
	return out, nil
}

func mountAny(dev, dir string) error {
	flags := uintptr(unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	var errs []string
	for _, fs := range fsTypes {
		if err := unix.Mount(dev, dir, fs, flags, ""); err == nil {
			return nil
		} else {
			errs = append(errs, fs+": "+err.Error())
		}
	}
	return fmt.Errorf("mount %s: %s", dev, strings.Join(errs, ", "))
}

// UnmountAll unmounts what MountAll mounted.
func (s *SysStorage) UnmountAll() error {
	var errs []error
	for i := len(s.mounted) - 1; i >= 0; i-- {
		if err := unix.Unmount(s.mounted[i], 0); err != nil {
			errs = append(errs, err)
		}
	}
	s.mounted = nil
	return errors.Join(errs...)
}
