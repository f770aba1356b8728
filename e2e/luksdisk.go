//go:build e2e

package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The LUKS machine's disks (coreboot-tpm2-luks):
//
//	disk.img    /boot (as on the other machines) with Debian's kernel and the REAL Debian
//	            initramfs from internal/luks/qemutest/build-os.sh (cryptsetup-initramfs, a
//	            crypttab "root_crypt UUID=<uuid> none luks": it asks for the passphrase)
//	root.img    a whole-disk LUKS2 root (a copy of cache/e2e-luks/root.img)
//
// The root is our own variant of build-os.sh's disk.img, with the same LUKS UUID (the
// initramfs's crypttab names it) and the same passphrase: its /sbin/init is the owner
// enrolling TPM unlock from the installed OS, as an owner would. When /boot has no sealed
// disk record yet it runs the real `glint disk seal` (out/glint, static) with Debian's
// cryptsetup (binary, its libraries and loader copied in) and powers off; otherwise it only
// prints GLINT-E2E-LUKS-ROOT-UP and powers off.

const (
	luksRootUp    = "GLINT-E2E-LUKS-ROOT-UP"
	luksMapper    = "root_crypt"
	luksAskPrompt = "Please unlock disk " + luksMapper
	// the seal record glint writes (internal/seal: <boot>/glint/sealed/<purpose>.json)
	luksSealedRecord = "glint/sealed/disk.json"
)

// luksRootInit is the root filesystem's PID 1. /boot is the first partition of the first
// virtio disk (vda1); the LUKS root is the second virtio disk (vdb).
const luksRootInit = `#!/bin/busybox sh
# PID 1 of the glint e2e LUKS root: enrol TPM unlock once, else just prove the root is up.
bb=/bin/busybox
export PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
$bb mount -t proc proc /proc
$bb mount -t sysfs sysfs /sys
$bb mount -t devtmpfs devtmpfs /dev
$bb mount -t tmpfs tmpfs /run
$bb mount -t tmpfs tmpfs /tmp
echo "GLINT-E2E-ROOT-DEV $($bb awk '$2 == "/" {print $1}' /proc/mounts | $bb tail -n 1)"
echo "GLINT-E2E-LUKS-ROOT-UP uptime=$($bb cut -d' ' -f1 /proc/uptime)"
for i in 4 6 7; do echo "E2E-PCR sha256 $i $($bb cat /sys/class/tpm/tpm0/pcr-sha256/$i 2>/dev/null)"; done
$bb mkdir -p /run/boot /run/cryptsetup
if $bb mount -t ext4 -o ro /dev/vda1 /run/boot; then
  if [ ! -e /run/boot/glint/sealed/disk.json ]; then
    echo "E2E-SEAL: no sealed disk key on /boot: enrolling TPM unlock"
    $bb mount -o remount,rw /run/boot
    /usr/local/sbin/glint --tpm /dev/tpmrm0 --boot /run/boot disk seal \
      --passphrase-file /etc/luks-pass --name root_crypt /dev/vdb 2>&1
    echo "E2E-SEAL-RC $?"
    $bb ls -l /run/boot/glint/sealed/
    $bb sync
  fi
  $bb umount /run/boot || echo "E2E: umount /boot failed"
else
  echo "E2E: cannot mount /boot (/dev/vda1)"
fi
$bb sync
echo E2E-LUKS-OS-DONE
$bb poweroff -f
`

// luksOS is what the LUKS machine boots: build-os.sh's cached Debian initramfs and our root.
type luksOS struct {
	initrd     string // cache/luks-os/initrd.img
	root       string // cache/e2e-luks/root.img (never written by a guest: machines take copies)
	uuid       string
	passphrase string
}

// buildLUKSOS returns the cached OS, building the root image when an input changed (this
// file's init script, out/glint, cryptsetup, the UUID and passphrase of build-os.sh's disk).
func buildLUKSOS(t *testing.T, top string) *luksOS {
	t.Helper()
	return buildLUKSOSWith(t, top, "e2e-luks", luksRootInit, nil)
}

// buildLUKSOSWith is buildLUKSOS with another init script and more files (host path ->
// path in the root), cached in cache/<cacheName>.
func buildLUKSOSWith(t *testing.T, top, cacheName, init string, extra map[string]string) *luksOS {
	t.Helper()
	src := filepath.Join(top, "cache", "luks-os")
	for _, f := range []string{"initrd.img", "uuid", "passphrase"} {
		if _, err := os.Stat(filepath.Join(src, f)); err != nil {
			t.Fatalf("%s missing: run `bash internal/luks/qemutest/build-os.sh` (needs root once): %v", filepath.Join(src, f), err)
		}
	}
	cs, err := exec.LookPath("cryptsetup")
	if err != nil {
		if _, err2 := os.Stat("/usr/sbin/cryptsetup"); err2 != nil {
			t.Skipf("cryptsetup not installed (scripts/install-deps.sh: cryptsetup-bin): %v", err)
		}
		cs = "/usr/sbin/cryptsetup"
	}
	o := &luksOS{initrd: filepath.Join(src, "initrd.img")}
	o.uuid = strings.TrimSpace(string(readFile(t, filepath.Join(src, "uuid"))))
	o.passphrase = string(readFile(t, filepath.Join(src, "passphrase")))
	glint := filepath.Join(top, "out", "glint")

	h := sha256.New()
	io.WriteString(h, init)
	var extraSrc []string
	for src, dst := range extra {
		io.WriteString(h, dst+"\x00")
		extraSrc = append(extraSrc, src)
	}
	sort.Strings(extraSrc)
	io.WriteString(h, o.uuid+"\x00"+o.passphrase+"\x00")
	for _, f := range append([]string{glint, cs, "/bin/busybox"}, extraSrc...) {
		b, err := os.ReadFile(f)
		must(t, err)
		h.Write(b)
	}
	stamp := hex.EncodeToString(h.Sum(nil))
	dir := filepath.Join(top, "cache", cacheName)
	o.root = filepath.Join(dir, "root.img")
	if old, err := os.ReadFile(filepath.Join(dir, "stamp")); err == nil && string(old) == stamp {
		if _, err := os.Stat(o.root); err == nil {
			return o
		}
	}
	must(t, os.MkdirAll(dir, 0o755))
	os.Remove(filepath.Join(dir, "stamp"))
	work, err := os.MkdirTemp(dir, ".build.")
	must(t, err)
	defer os.RemoveAll(work)

	root := filepath.Join(work, "root")
	for _, d := range []string{"bin", "sbin", "dev", "proc", "sys", "run", "tmp", "etc", "usr/local/sbin", "usr/sbin"} {
		must(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	must(t, copyMode("/bin/busybox", filepath.Join(root, "bin", "busybox"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "sbin", "init"), []byte(init), 0o755))
	for src, dst := range extra {
		must(t, os.MkdirAll(filepath.Dir(filepath.Join(root, dst)), 0o755))
		must(t, copyMode(src, filepath.Join(root, dst), 0o644))
	}
	must(t, copyMode(glint, filepath.Join(root, "usr", "local", "sbin", "glint"), 0o755))
	must(t, copyMode(cs, filepath.Join(root, "usr", "sbin", "cryptsetup"), 0o755))
	// cryptsetup's shared libraries and the loader, at the paths ldd names
	out, err := exec.Command("ldd", cs).Output()
	must(t, err)
	for _, line := range strings.Split(string(out), "\n") {
		var lib string
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			lib = f[2]
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			lib = f[0]
		default:
			continue
		}
		real, err := filepath.EvalSymlinks(lib)
		must(t, err)
		dst := filepath.Join(root, lib)
		must(t, os.MkdirAll(filepath.Dir(dst), 0o755))
		must(t, copyMode(real, dst, 0o755))
	}
	must(t, os.WriteFile(filepath.Join(root, "etc", "luks-pass"), []byte(o.passphrase), 0o600))
	must(t, os.WriteFile(filepath.Join(root, "etc", "os-release"), []byte("NAME=\"glint e2e LUKS root\"\nID=glint-e2e\n"), 0o644))

	img := filepath.Join(work, "root.img")
	must(t, os.WriteFile(filepath.Join(work, "pass"), []byte(o.passphrase), 0o600))
	f, err := os.Create(img)
	must(t, err)
	must(t, f.Truncate(128<<20))
	f.Close()
	// as build-os.sh: a filesystem filled from the directory, then encrypted in place with
	// room for the LUKS2 header in front; pbkdf2 with 1000 iterations keeps TCG fast
	must(t, run("mkfs.ext4", "-q", "-F", "-L", "glint-root", "-E", "root_owner=0:0", "-d", root, img, "96M"))
	must(t, run(cs, "reencrypt", "--encrypt", "--type", "luks2", "--reduce-device-size", "32M",
		"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000",
		"--key-file", filepath.Join(work, "pass"), "--batch-mode", img))
	// the Debian initramfs's crypttab names this UUID (build-os.sh's disk)
	must(t, run(cs, "luksUUID", "--batch-mode", "--uuid", o.uuid, img))
	must(t, run(cs, "open", "--test-passphrase", "--key-file", filepath.Join(work, "pass"), img))
	must(t, os.Rename(img, o.root))
	must(t, os.WriteFile(filepath.Join(dir, "stamp"), []byte(stamp), 0o644))
	return o
}

func copyMode(src, dst string, mode os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, mode)
}

// populateLUKSBoot writes /boot for the LUKS machine: Debian's kernel, the Debian
// initramfs, and a grub.cfg whose default entry mounts the LUKS root.
func populateLUKSBoot(t *testing.T, top, dir string, o *luksOS) {
	t.Helper()
	ver := kernelVersion(t, top)
	must(t, os.RemoveAll(dir))
	must(t, os.MkdirAll(filepath.Join(dir, "grub"), 0o755))
	must(t, copyFile(filepath.Join(top, "cache", "kernel", "vmlinuz"), filepath.Join(dir, "vmlinuz-"+ver)))
	must(t, copyFile(filepath.Join(top, "cache", "kernel", "config"), filepath.Join(dir, "config-"+ver)))
	must(t, copyFile(o.initrd, filepath.Join(dir, "initrd.img-"+ver)))
	cfg := fmt.Sprintf(`#
# DO NOT EDIT THIS FILE
#
# It is automatically generated by grub-mkconfig using templates
# from /etc/grub.d and settings from /etc/default/grub
#
set default="0"
set timeout=5
menuentry 'Debian GNU/Linux' --class debian --class gnu-linux --class gnu --class os $menuentry_id_option 'gnulinux-simple-%[1]s' {
	load_video
	insmod gzio
	insmod part_msdos
	insmod ext2
	search --no-floppy --fs-uuid --set=root %[2]s
	echo	'Loading Linux %[3]s ...'
	linux	/vmlinuz-%[3]s root=/dev/mapper/%[4]s ro console=ttyS0,115200 panic=-1 e2e_entry=luks
	echo	'Loading initial ramdisk ...'
	initrd	/initrd.img-%[3]s
}
`, o.uuid, bootFSUUID, ver, luksMapper)
	must(t, os.WriteFile(filepath.Join(dir, "grub", "grub.cfg"), []byte(cfg), 0o644))
}
