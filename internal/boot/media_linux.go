package boot

import (
	"fmt"

	"github.com/glint-boot/glint/internal/blockdev"
	"github.com/glint-boot/glint/internal/rootfs"
	"github.com/glint-boot/glint/internal/usbboot"
)

// USBStorage is the machine's USB sticks, found through sysfs.
func (m *linuxMachine) USBStorage() usbboot.Storage { return &usbboot.SysStorage{} }

// rootMount is where the root file system is mounted for its check.
const rootMount = "/run/glint/root"

// MountRoot mounts the root file system read-only (rootfs.FindDevice
// resolves UUID=, LABEL= or a /dev path among the block devices).
func (m *linuxMachine) MountRoot(spec string) (string, func(), error) {
	dev, err := rootfs.FindDevice(spec, blockdev.List())
	if err != nil {
		return "", nil, err
	}
	if err := blockdev.Mount(dev, rootMount, true); err != nil {
		return "", nil, fmt.Errorf("mount the root file system %s read-only: %w", dev, err)
	}
	return rootMount, func() { blockdev.Unmount(rootMount) }, nil
}
