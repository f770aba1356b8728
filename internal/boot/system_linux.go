package boot

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// mountPseudoFS mounts what a PID-1 needs. Errors are logged, never fatal:
// a missing securityfs only costs the firmware event log.
func mountPseudoFS(j *Journal) {
	mounts := []struct{ src, dst, fstype string }{
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"devtmpfs", "/dev", "devtmpfs"},
		{"securityfs", "/sys/kernel/security", "securityfs"},
		{"tmpfs", "/run", "tmpfs"},
		{"tmpfs", "/tmp", "tmpfs"},
		{"efivarfs", "/sys/firmware/efi/efivars", "efivarfs"},
	}
	for _, m := range mounts {
		if m.fstype == "efivarfs" {
			if _, err := os.Stat("/sys/firmware/efi"); err != nil {
				continue
			}
		}
		if err := os.MkdirAll(m.dst, 0o755); err != nil {
			j.Debugf("mkdir %s: %v", m.dst, err)
		}
		if err := unix.Mount(m.src, m.dst, m.fstype, unix.MS_NOSUID|unix.MS_NOEXEC, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			j.Debugf("mount %s on %s: %v", m.fstype, m.dst, err)
		}
	}
}

// openConsole makes /dev/console glint's stdin/stdout/stderr, which the
// kernel may not have done if the initramfs lacked /dev/console.
func openConsole() (*os.File, error) {
	f, err := os.OpenFile("/dev/console", os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	for _, fd := range []int{0, 1, 2} {
		if err := unix.Dup2(int(f.Fd()), fd); err != nil {
			return f, err
		}
	}
	return f, nil
}

// moduleDir is where the payload keeps the kernel modules glint loads, with
// a load-order file listing them (dependencies first).
const moduleDir = "/lib/modules"

// loadModules loads the payload's modules in the listed order with
// finit_module and returns them so the caller can measure them (PCR 5).
func loadModules(j *Journal) []Module {
	f, err := os.Open(filepath.Join(moduleDir, "load-order"))
	if err != nil {
		j.Debugf("no module list: %v", err)
		return nil
	}
	defer f.Close()
	var loaded []Module
	s := bufio.NewScanner(f)
	for s.Scan() {
		rel := strings.TrimSpace(s.Text())
		if rel == "" || strings.HasPrefix(rel, "#") || strings.Contains(rel, "..") {
			continue
		}
		path := filepath.Join(moduleDir, rel)
		data, err := os.ReadFile(path)
		if err != nil {
			j.Logf("module %s: %v", rel, err)
			continue
		}
		if err := unix.InitModule(data, ""); err != nil && !errors.Is(err, unix.EEXIST) {
			j.Logf("module %s: %v", rel, err)
			continue
		}
		loaded = append(loaded, Module{Name: filepath.Base(rel), Data: data})
	}
	j.Debugf("loaded %d kernel modules", len(loaded))
	return loaded
}

func syncDisks() { unix.Sync() }

// powerOff and reboot end the boot.
func powerOff() error { unix.Sync(); return unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF) }
func reboot() error   { unix.Sync(); return unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART) }
