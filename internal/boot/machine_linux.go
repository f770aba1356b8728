package boot

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/glint-boot/glint/internal/blockdev"
	"github.com/glint-boot/glint/internal/card"
	"github.com/glint-boot/glint/internal/card/readers"
	"github.com/glint-boot/glint/internal/chipset"
	"github.com/glint-boot/glint/internal/flash"
	"github.com/glint-boot/glint/internal/hostcheck"
	"github.com/glint-boot/glint/internal/kexec"
	"github.com/glint-boot/glint/internal/otp/dongle"
	"github.com/glint-boot/glint/internal/rootfs"
	"github.com/glint-boot/glint/internal/safefile"
	"github.com/glint-boot/glint/internal/sealed"
)

// linuxMachine is the real machine glint runs on as PID 1.
type linuxMachine struct {
	bootDev string // device /boot is mounted from
	bootDir string
}

func (m *linuxMachine) PowerOff() error { return powerOff() }
func (m *linuxMachine) Reboot() error   { return reboot() }

// Kexec loads img with the kernel's kexec and jumps into it.
func (m *linuxMachine) Kexec(img kexec.Image) error {
	l := kexec.NewSystemLoader()
	if err := l.Load(img); err != nil {
		return err
	}
	return l.Exec()
}

func (m *linuxMachine) Dongle() (dongle.Device, error) { return sealed.OpenDongle() }

func (m *linuxMachine) SetClock(t time.Time) error {
	tv := unix.NsecToTimeval(t.UnixNano())
	if err := unix.Settimeofday(&tv); err != nil {
		return fmt.Errorf("set system time: %w", err)
	}
	return setRTC(t)
}

func (m *linuxMachine) RemountBoot(writable bool) error {
	if m.bootDir == "" {
		return errors.New("no /boot mounted")
	}
	flags := uintptr(unix.MS_REMOUNT | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if !writable {
		unix.Sync()
		flags |= unix.MS_RDONLY
	}
	return unix.Mount("", m.bootDir, "", flags, "")
}

// ownerSecretNames are the file names on removable media that hold the owner's key backup.
var ownerSecretNames = []string{"owner-secret.asc", "glint/owner-secret.asc"}

func (m *linuxMachine) OwnerKeyMedia() ([]KeyFile, error) {
	var out []KeyFile
	for i, dev := range blockdev.List() {
		if dev == m.bootDev {
			continue
		}
		dir := fmt.Sprintf("/run/glint/media%d", i)
		if err := blockdev.Mount(dev, dir, true); err != nil {
			continue
		}
		for _, n := range ownerSecretNames {
			b, err := safefile.ReadCapped(filepath.Join(dir, n), maxOwnerFile)
			if err == nil {
				out = append(out, KeyFile{Where: dev + ":" + n, Data: b})
			}
		}
		blockdev.Unmount(dir)
	}
	return out, nil
}

// maxOwnerFile caps an owner file or key backup read from the payload or a
// stick (an armored key is a few KiB).
const maxOwnerFile = 1 << 20

// findBoot mounts the block device that holds /boot: the one the owner
// configuration names (boot.device = UUID=..., LABEL=... or /dev/...,
// resolved from the file systems' superblocks as the OS's fstab would;
// exactly one device must match), else the first that holds a glint
// manifest or a boot loader configuration, internal disks before
// removable and USB ones. The journal says which device it used.
func findBoot(j *Journal, want string) (dev, dir string) {
	devs, err := bootCandidates(want, blockdev.List(), blockdev.InternalFirst, rootfs.FindDevice)
	if err != nil {
		j.Logf("boot.device %q: %v", want, err)
		return "", ""
	}
	for i, d := range devs {
		mnt := fmt.Sprintf("/run/glint/boot%d", i)
		if err := blockdev.Mount(d, mnt, true); err != nil {
			continue
		}
		for _, probe := range []string{"glint/manifest", "grub/grub.cfg", "grub2/grub.cfg", "loader/entries", "extlinux/extlinux.conf", "syslinux/syslinux.cfg", "boot/grub/grub.cfg"} {
			if _, err := os.Stat(filepath.Join(mnt, probe)); err == nil {
				where := "internal disk"
				if blockdev.Removable(d) {
					where = "REMOVABLE device"
				}
				j.Logf("/boot found on %s, %s (%s)", d, where, probe)
				return d, mnt
			}
		}
		blockdev.Unmount(mnt)
	}
	return "", ""
}

// FlashChip is the machine's flash chip for the re-ownership wizard: the
// emulated laptop's chip disk (flash.DiskChip), else the SPI controller
// through flashrom when the payload carries it.
func (m *linuxMachine) FlashChip() (flash.Device, error) {
	if d, ok := flash.FindDiskChip(blockdev.SysBlock); ok {
		return d, nil
	}
	if p, err := exec.LookPath("flashrom"); err == nil {
		return &flash.Flashrom{Programmer: "internal", Run: flash.Exec{Path: p}}, nil
	}
	return nil, errors.New("this firmware's payload has no flashrom, so glint cannot write the flash from its menu: run `glint own --rom IMAGE` on another machine and flash the image externally (docs/flashing.md)")
}

// USBDrive mounts the first writable file system on a disk other than
// /boot's (and the emulated chip) with room for the firmware backup (the
// chip's contents and the image written) at /run/glint/usb.
// USB sticks show up a few seconds after the host controller's module
// loads (enumeration, then usb-storage's scan delay), so a drive that is
// plugged in (a USB mass-storage interface exists) is waited for up to
// usbDriveWait; with none after usbEnumerateWait the search stops.
func (m *linuxMachine) USBDrive() (string, func(), error) {
	start := time.Now()
	for {
		dir, release, err := m.usbDrive()
		waited := time.Since(start)
		if err == nil || waited > usbDriveWait || waited > usbEnumerateWait && !usbStoragePlugged("/sys/bus/usb/devices") {
			return dir, release, err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// How long USBDrive waits for a drive that is plugged in, and for any USB
// mass-storage device to enumerate.
const (
	usbDriveWait     = 10 * time.Second
	usbEnumerateWait = 3 * time.Second
)

// usbStoragePlugged reports whether a USB mass-storage interface (class 08)
// is listed under sysUSB (/sys/bus/usb/devices).
func usbStoragePlugged(sysUSB string) bool {
	ents, _ := os.ReadDir(sysUSB)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(sysUSB, e.Name(), "bInterfaceClass"))
		if err == nil && strings.TrimSpace(string(b)) == "08" {
			return true
		}
	}
	return false
}

func (m *linuxMachine) usbDrive() (string, func(), error) {
	chip, _ := flash.FindDiskChip(blockdev.SysBlock)
	const dir = "/run/glint/usb"
	for _, dev := range blockdev.List() {
		if dev == m.bootDev || chip != nil && strings.HasPrefix(dev, chip.Path) {
			continue
		}
		if err := blockdev.Mount(dev, dir, false); err != nil {
			continue
		}
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil || int64(st.Bavail)*int64(st.Bsize) < usbDriveRoom {
			blockdev.Unmount(dir)
			continue
		}
		return dir, func() { unix.Sync(); blockdev.Unmount(dir) }, nil
	}
	return "", nil, errors.New("no writable USB drive with room for the firmware backup found")
}

// usbDriveRoom is the free space a USB drive needs for the wizard: two
// copies of a 16 MiB flash chip and the key files.
const usbDriveRoom = 40 << 20

// OpenCard opens the owner's OpenPGP card over USB CCID (usbfs). USB
// devices appear a few seconds after the host controller's module loads,
// so a missing card is looked for again for a while.
func (m *linuxMachine) OpenCard() (*card.Card, string, error) {
	deadline := time.Now().Add(cardWait)
	for {
		c, where, err := readers.OpenCard("usb")
		if err == nil || !errors.Is(err, readers.ErrNoCard) || time.Now().After(deadline) {
			return c, where, err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// cardWait is how long OpenCard waits for a card to enumerate.
const cardWait = 8 * time.Second

// LockFlash asks the firmware to lock the flash through /dev/port and reads the chipset's
// registers through sysfs and /dev/mem before and after (PlatformLocker).
func (m *linuxMachine) LockFlash() (*chipset.LockReport, error) {
	return chipset.Lock(chipset.DevPort("/dev/port"), chipset.System.ReadLive)
}

// HostCheck judges this machine as glint leaves it to the OS (PlatformLocker).
func (m *linuxMachine) HostCheck() *hostcheck.Report {
	return hostcheck.Run(hostcheck.System(), hostcheck.PhaseLocked)
}
