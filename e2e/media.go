//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Removable media for the boot-policy rows (e2e/media_test.go), built without root:
//
//	usb.img    MBR + FAT (mkfs.vfat, mtools) holding live ISO images (xorriso: isolinux.cfg
//	           naming /live/vmlinuz and /live/initrd.img, here the Debian kernel and the test
//	           OS) and their detached signatures; attached as QEMU usb-storage on xHCI
//	root.img   an ext4 root file system (mkfs.ext4 -d) with usr/bin, for the rootfs check

const (
	usbStickSize = 128 << 20
	rootSize     = 16 << 20
	rootFSUUID   = "2b6f0c4e-7a1d-4f3b-8e5c-9d0a1b2c3d4e"
	// isoEntryArg lets the test OS say it was booted from the ISO's own entry.
	isoEntryArg = "e2e_entry=usb-live"
)

// buildLiveISO makes a live ISO with xorriso in dir.
func buildLiveISO(t *testing.T, top, dir, name string) string {
	t.Helper()
	src := filepath.Join(dir, name+"-src")
	must(t, os.MkdirAll(filepath.Join(src, "isolinux"), 0o755))
	must(t, os.MkdirAll(filepath.Join(src, "live"), 0o755))
	must(t, copyFile(filepath.Join(top, "cache", "kernel", "vmlinuz"), filepath.Join(src, "live", "vmlinuz")))
	initrd, err := osInitrd(t, top)
	must(t, err)
	must(t, copyFile(initrd, filepath.Join(src, "live", "initrd.img")))
	must(t, os.WriteFile(filepath.Join(src, "isolinux", "isolinux.cfg"), []byte(
		"default live\nlabel live\n  menu label Live system (amd64)\n  kernel /live/vmlinuz\n"+
			"  append initrd=/live/initrd.img boot=live console=ttyS0,115200 "+isoEntryArg+" quiet splash\n"), 0o644))
	iso := filepath.Join(dir, name)
	must(t, run("xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-V", "LIVE_E2E", "-o", iso, src))
	return iso
}

// gpgSign makes an armored detached signature <file>.asc with a key of home.
func gpgSign(t *testing.T, home, passphrase, key, file string) string {
	t.Helper()
	sig := file + ".asc"
	cmd := exec.Command("gpg", "--homedir", home, "--batch", "--yes", "--pinentry-mode", "loopback",
		"--passphrase", passphrase, "--local-user", key, "--armor", "--output", sig, "--detach-sign", file)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sign %s: %v\n%s", file, err, b)
	}
	return sig
}

// buildUSBStick writes files onto a FAT stick image.
func buildUSBStick(t *testing.T, stick string, files ...string) {
	t.Helper()
	part := stick + ".part"
	os.Remove(part)
	must(t, run("mkfs.vfat", "-C", "-n", "LIVEUSB", part, fmt.Sprint(usbStickSize>>10)))
	for _, f := range files {
		must(t, run("mcopy", "-i", part, f, "::/"+filepath.Base(f)))
	}
	must(t, assemble(stick, part, usbStickSize, "c"))
}

// buildRootDisk writes an ext4 file system (whole disk, no partition table) from dir.
func buildRootDisk(t *testing.T, disk, dir string) {
	t.Helper()
	os.Remove(disk)
	must(t, run("mkfs.ext4", "-q", "-F", "-L", "root", "-U", rootFSUUID, "-E", "root_owner=0:0", "-d", dir, disk, fmt.Sprintf("%dk", rootSize>>10)))
}
