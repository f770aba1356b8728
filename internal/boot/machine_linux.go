package boot

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/glint-boot/glint/internal/kexec"
)

// linuxMachine is the real machine glint runs on as PID 1.
type linuxMachine struct {
	j       *Journal
	con     *Console
	bootDev string // device /boot is mounted from
	bootDir string
	kexec   func(img kexec.Image) error
}

func (m *linuxMachine) PowerOff() error { return powerOff() }
func (m *linuxMachine) Reboot() error   { return reboot() }

func (m *linuxMachine) Kexec(img kexec.Image) error {
	if m.kexec == nil {
		return errors.New("kexec is not available in this build")
	}
	return m.kexec(img)
}

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
	for i, dev := range blockDevices() {
		if dev == m.bootDev {
			continue
		}
		dir := fmt.Sprintf("/run/glint/media%d", i)
		if err := mountFirst(dev, dir, true); err != nil {
			continue
		}
		for _, n := range ownerSecretNames {
			b, err := readCapped(filepath.Join(dir, n), 1<<20)
			if err == nil {
				out = append(out, KeyFile{Where: dev + ":" + n, Data: b})
			}
		}
		unmount(dir)
	}
	return out, nil
}

func readCapped(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}

// findBoot mounts the first block device that holds a /boot: a glint
// manifest, or a boot loader configuration. Owner config may name it.
func findBoot(j *Journal, want string) (dev, dir string) {
	devs := blockDevices()
	if strings.HasPrefix(want, "/dev/") {
		devs = []string{want}
	}
	for i, d := range devs {
		mnt := fmt.Sprintf("/run/glint/boot%d", i)
		if err := mountFirst(d, mnt, true); err != nil {
			continue
		}
		for _, probe := range []string{"glint/manifest", "grub/grub.cfg", "grub2/grub.cfg", "loader/entries", "extlinux/extlinux.conf", "syslinux/syslinux.cfg", "boot/grub/grub.cfg"} {
			if _, err := os.Stat(filepath.Join(mnt, probe)); err == nil {
				j.Logf("/boot found on %s (%s)", d, probe)
				return d, mnt
			}
		}
		unmount(mnt)
	}
	return "", ""
}
