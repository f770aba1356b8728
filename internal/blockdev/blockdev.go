// Package blockdev finds the machine's disks and mounts the filesystems glint
// reads as PID 1: /boot, the owner's key stick, the LUKS volume the disk key
// belongs to. There is no udev in glint's initramfs, so devices are found
// through sysfs (/sys/class/block) and named /dev/NAME, which devtmpfs
// provides.
package blockdev

import (
	"os"
	"strings"
)

// SysBlock is where Linux lists block devices.
const SysBlock = "/sys/class/block"

// List returns the candidate block devices, whole disks and partitions, as
// /dev paths in sysfs order. Loop, RAM, device-mapper and optical devices
// are left out: none of them holds /boot, a key stick or a LUKS header
// glint should open.
func List() []string {
	return list(SysBlock)
}

func list(dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, "loop") || strings.HasPrefix(n, "ram") || strings.HasPrefix(n, "dm-") || strings.HasPrefix(n, "sr") {
			continue
		}
		out = append(out, "/dev/"+n)
	}
	return out
}

// Removable reports whether dev (/dev/NAME) is a removable or USB device:
// sysfs marks removable media on the disk (a partition asks its disk), and
// a USB disk's device path runs through a USB bus even when the drive
// claims to be fixed.
func Removable(dev string) bool { return removable(SysBlock, dev) }

func removable(sysBlock, dev string) bool {
	name := strings.TrimPrefix(dev, "/dev/")
	node := sysBlock + "/" + name
	target, err := os.Readlink(node)
	if err == nil && strings.Contains(target, "/usb") {
		return true
	}
	for _, p := range []string{node + "/removable", node + "/../removable"} {
		if b, err := os.ReadFile(p); err == nil {
			return strings.TrimSpace(string(b)) == "1"
		}
	}
	return false
}

// InternalFirst orders devs with internal disks before removable and USB
// ones, keeping sysfs order within each group: a /boot on a stick someone
// plugged in must not win over the laptop's own disk.
func InternalFirst(devs []string) []string { return internalFirst(SysBlock, devs) }

func internalFirst(sysBlock string, devs []string) []string {
	var internal, external []string
	for _, d := range devs {
		if removable(sysBlock, d) {
			external = append(external, d)
		} else {
			internal = append(internal, d)
		}
	}
	return append(internal, external...)
}
