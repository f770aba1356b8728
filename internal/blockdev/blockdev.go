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
