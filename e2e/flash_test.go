//go:build e2e

package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/approval"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/tpm"
)

// The firmware update on the emulated laptop (issue 17): the owner updates coreboot + glint
// from the running OS with the CLI, the next power-on runs the new firmware, the TOTP code is
// the one the phone shows (no re-enrolment), and PCR 2 in the guest is what glint predicted
// from the image before writing it; a forged and a truncated update bundle are refused first,
// with nothing written.
//
// The chip: QEMU q35 has no SPI controller, so the flash chip is flashrom's dummy programmer
// emulating a Winbond W25Q128FV over a file (dummy:emulate=W25Q128FV,image=...). The file sits
// on a USB-stick-like disk the test OS mounts; after power-off the host takes it out of the
// stick image and it becomes the next power-on's flash (-bios). Everything between is real:
// glint in the guest, Debian's flashrom (with its libraries in the test OS), the TPM (swtpm).
//
// Boots: 2 (set-up and first verified boot) + 1 (the OS flashes) + 1 (the new firmware) = 4.

// flashStickSize holds the emulated chip, two bundles, a backup and the written image.
const flashStickSize = 128 << 20

// flashOSScript is the test OS of disk.go plus a flash job: when a FAT disk carries
// flash-job.sh it mounts /boot (the first disk) and that disk, runs the job, and powers off.
const flashOSScript = `#!/bin/busybox sh
b=/bin/busybox
export PATH=/bin
$b mkdir -p /proc /sys /dev /mnt /boot /tmp
$b mount -t proc proc /proc
$b mount -t sysfs sysfs /sys
$b mount -t devtmpfs devtmpfs /dev
$b mount -t tmpfs tmpfs /tmp
echo GLINT-E2E-OS-UP
echo "E2E-CMDLINE: $($b cat /proc/cmdline)"
for i in 0 1 2 3 4 5 6 7; do
  for alg in sha256 sha1; do
    f=/sys/class/tpm/tpm0/pcr-$alg/$i
    [ -r $f ] && echo "E2E-PCR $alg $i $($b cat $f)"
  done
done
for m in $($b cat /lib/modules/load-order); do $b insmod /lib/modules/$m 2>/dev/null; done
$b sleep 1
job=
for d in /dev/vd?1; do
  if $b mount -t vfat $d /mnt 2>/dev/null; then
    if [ -f /mnt/flash-job.sh ]; then job=$d; break; fi
    $b umount /mnt
  fi
done
if [ -n "$job" ]; then
  $b mount -t ext4 /dev/vda1 /boot
  echo "E2E-FLASH-JOB $job"
  . /mnt/flash-job.sh
  $b umount /boot
  $b umount /mnt
  $b sync
fi
echo E2E-OS-DONE
$b poweroff -f
`

// flashJob runs in the guest OS (sourced by flashOSScript): a forged bundle, a truncated one,
// then the genuine update, approving the new image's PCR values with the owner's approval key.
const flashJob = `G="/bin/glint flash --programmer dummy:emulate=W25Q128FV,image=/mnt/chip.bin --backup-dir /mnt/backups --approval-key-file /mnt/approval.pem --approvals /boot/glint/approvals"
echo "E2E-CHIP-BEFORE $($b sha256sum /mnt/chip.bin)"
for bad in forged truncated; do
  $G /mnt/$bad.glintupd
  echo "E2E-FLASH-RC $bad $?"
  echo "E2E-CHIP-AFTER-$bad $($b sha256sum /mnt/chip.bin)"
done
$G /mnt/update.glintupd
echo "E2E-FLASH-RC update $?"
echo "E2E-CHIP-AFTER-update $($b sha256sum /mnt/chip.bin)"
`

func TestFirmwareUpdate(t *testing.T) {
	needTools(t, CorebootTPM2)
	for _, tool := range []string{"flashrom", "mcopy", "mkfs.vfat", "gpg"} {
		if _, err := exec.LookPath(tool); err != nil {
			if _, err := os.Stat("/usr/sbin/" + tool); err != nil {
				t.Skipf("%s not installed (scripts/install-deps.sh)", tool)
			}
		}
	}
	m := NewMachine(t, CorebootTPM2, "flash-tpm2")
	work := filepath.Join(m.Dir, "update")
	must(t, os.MkdirAll(work, 0o755))

	keys := releaseKeys(t, m, work, true)

	// The test OS that can flash, on /boot before set-up signs it.
	initrd := flashOSInitrd(t, m.Top, work)
	must(t, copyFile(initrd, findBootFile(t, m.BootDir, "initrd.img")))

	b := &bench{m: m}
	if !t.Run("01-set-up", func(t *testing.T) { rowFirstBoot(t, b) }) {
		t.Fatal("set-up failed")
	}

	good, forged, truncated := nextRelease(t, m, CorebootTPM2, work, keys)

	// The stick: the emulated chip (this machine's flash as it is now), the bundles, the
	// approval key and the job.
	current := readFile(t, m.ROM)
	stick := filepath.Join(work, "flash-stick.img")
	writeFile(t, filepath.Join(work, "flash-job.sh"), []byte(flashJob))
	buildFlashStick(t, stick, map[string]string{
		"chip.bin": m.ROM, "update.glintupd": good, "forged.glintupd": forged,
		"truncated.glintupd": truncated,
		"approval.pem":       keys.approvalKey, "flash-job.sh": filepath.Join(work, "flash-job.sh"),
	})
	ownerStick := m.Stick

	t.Run("02-update-from-the-os", func(t *testing.T) {
		m.Stick = stick
		defer func() { m.Stick = ownerStick }()
		r := m.Boot(t, "02-flash-from-os")
		b.expectTOTP(t, r)
		expect(t, r, `glint: kexec `, toStep)
		expect(t, r, markerOS, toOS)
		before := expect(t, r, `E2E-CHIP-BEFORE ([0-9a-f]{64})`, toStep)[1]
		if want := fmt.Sprintf("%x", sha256.Sum256(current)); before != want {
			t.Fatalf("the emulated chip in the guest is not this machine's flash: %s, want %s", before, want)
		}
		// The bad-update row: refused with the reason, the chip untouched.
		// in the order flashJob runs them (the console is read forward only)
		for _, c := range []struct{ bad, reason string }{
			{"forged", `signature does not verify: made by a key that is not the publisher key`},
			{"truncated", `truncated download or copy`},
		} {
			bad, reason := c.bad, c.reason
			mark := r.Mark()
			g := expect(t, r, `E2E-FLASH-RC `+bad+` (\d+)\s`, toStep)
			said := r.Since(mark)
			if g[1] == "0" || !strings.Contains(said, "refused, nothing was written to the chip") || !regexp.MustCompile(reason).MatchString(said) {
				t.Errorf("%s bundle: exit %s, glint said:\n%s", bad, g[1], said)
			}
			if after := expect(t, r, `E2E-CHIP-AFTER-`+bad+` ([0-9a-f]{64})`, toStep)[1]; after != before {
				t.Errorf("the %s bundle changed the chip", bad)
			}
		}
		mark := r.Mark()
		g := expect(t, r, `E2E-FLASH-RC update (\d+)\s`, 5*toStep)
		said := r.Since(mark)
		if g[1] != "0" {
			t.Fatalf("the update failed (exit %s):\n%s", g[1], said)
		}
		for _, s := range []string{"bundle signature verified", "owner files carried", "approved with key file", "the chip holds the new image"} {
			if !strings.Contains(said, s) {
				t.Errorf("glint flash did not say %q:\n%s", s, said)
			}
		}
		expect(t, r, `E2E-OS-DONE`, toStep)
		r.Wait(t, toStopped)
	})

	// The chip becomes the next power-on's flash.
	newROM := filepath.Join(work, "chip-after.bin")
	must(t, run("mcopy", "-o", "-i", stick+"@@1M", "::/chip.bin", newROM))
	chip := readFile(t, newROM)
	if bytes.Equal(chip, current) {
		t.Fatal("the update did not change the chip")
	}
	pred, _, err := approval.Predicted(chip, approval.PurposeTOTP, tpm.SHA256, nil)
	must(t, err)
	must(t, copyFile(newROM, m.ROM))

	t.Run("03-new-firmware-same-totp", func(t *testing.T) {
		r := m.Boot(t, "03-new-firmware")
		expect(t, r, `glint: boot flow starting`, toGlint)
		// What coreboot measured into PCR 2 (its serial log: one "PCR-2 <sha256> SHA256 [...]"
		// line per measurement), replayed, is what glint predicted from the image.
		replayed, n := corebootPCR2(r.All())
		if n == 0 || !bytes.Equal(replayed, pred.Values[2]) {
			t.Errorf("coreboot's %d PCR 2 measurements replay to %x, glint predicted %x before flashing", n, replayed, pred.Values[2])
		}
		// glint shows the code the phone shows (the owner approved these values before the
		// write; nothing was sealed again), verifies /boot and boots the OS.
		b.expectTOTP(t, r)
		expect(t, r, `/boot: verified`, toStep)
		expect(t, r, `glint: kexec `, toStep)
		expect(t, r, markerOS, toOS)
		g := expect(t, r, `E2E-PCR sha256 2 ([0-9a-fA-F]{64})`, toStep)
		if want := hex.EncodeToString(pred.Values[2]); !strings.EqualFold(g[1], want) {
			t.Errorf("PCR 2 in the guest is %s, glint predicted %s before flashing", g[1], want)
		}
		expect(t, r, `E2E-OS-DONE`, toStep)
		r.Wait(t, toStopped)
	})

	// The replay the approval epoch stops: someone puts the old firmware back (the backup
	// glint flash kept, byte for byte), with the owner's approvals still on /boot. The new
	// firmware's first boot raised the epoch counter, so the old firmware's sealed-to state
	// is retired: no code, and the refusal says why.
	must(t, os.WriteFile(m.ROM, current, 0o644))
	t.Run("04-old-firmware-put-back-refused", func(t *testing.T) {
		r := m.Boot(t, "04-old-firmware")
		expect(t, r, `glint: boot flow starting`, toGlint)
		mark := r.Mark()
		expect(t, r, `TOTP: unavailable: `, toStep)
		expect(t, r, `glint> `, toStep)
		if why := r.Since(mark); !strings.Contains(why, "older approval epoch") {
			t.Errorf("glint does not name the retired approval epoch; it said:\n%s", why)
		}
		b.noKexec(t, r)
		must(t, r.Send("p"))
		r.Wait(t, toStopped)
	})
}

// flashOSInitrd builds the flashing test OS: busybox, glint, Debian's flashrom with the
// libraries it links, and the modules for virtio disks, ext4 and vfat (cmd/mkpayload's set).
func flashOSInitrd(t *testing.T, top, work string) string {
	t.Helper()
	script := filepath.Join(work, "os-init.sh")
	writeFile(t, script, []byte(flashOSScript))
	must(t, os.Chmod(script, 0o755))
	out := filepath.Join(work, "flash-os.cpio.gz")
	bb, err := exec.LookPath("busybox")
	must(t, err)
	fr, err := exec.LookPath("flashrom")
	if err != nil {
		fr = "/usr/sbin/flashrom"
	}
	args := []string{"run", "./cmd/mkpayload", "-init", script, "-o", out,
		"-modules", filepath.Join(top, "cache", "kernel", "modules", kernelVersion(t, top)),
		"-file", "bin/busybox=" + bb, "-file", "bin/flashrom=" + fr,
		"-file", "bin/glint=" + filepath.Join(top, "out", "glint")}
	ldd, err := exec.Command("ldd", fr).Output()
	must(t, err)
	for _, l := range strings.Split(string(ldd), "\n") {
		f := strings.Fields(l)
		var lib string
		switch {
		case len(f) >= 3 && f[1] == "=>":
			lib = f[2]
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			lib = f[0] // the dynamic loader
		}
		if lib != "" {
			real, err := filepath.EvalSymlinks(lib)
			must(t, err)
			args = append(args, "-file", strings.TrimPrefix(lib, "/")+"="+real)
		}
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = top
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mkpayload for the flashing test OS: %v\n%s", err, b)
	}
	return out
}

// buildFlashStick writes a FAT stick with the given files (name on the stick -> host path).
func buildFlashStick(t *testing.T, stick string, files map[string]string) {
	t.Helper()
	part := stick + ".part"
	os.Remove(part)
	must(t, run("mkfs.vfat", "-C", "-n", "UPDATE", "-i", "676c6e75", part, fmt.Sprint(flashStickSize>>10)))
	for name, src := range files {
		must(t, run("mcopy", "-i", part, src, "::/"+name))
	}
	must(t, assemble(stick, part, flashStickSize, "c"))
}

// gpgKeyE2E makes a signing key with gpg in its own home under dir and exports its public key.
func gpgKeyE2E(t *testing.T, dir, name string) (home, id, pubFile string) {
	t.Helper()
	home, err := os.MkdirTemp("/tmp", "glint-e2e-gpg-")
	must(t, err)
	must(t, os.Chmod(home, 0o700))
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
		os.RemoveAll(home)
	})
	g := func(args ...string) string {
		out, err := exec.Command("gpg", append([]string{"--homedir", home, "--batch", "--quiet"}, args...)...).Output()
		if err != nil {
			t.Fatalf("gpg %v: %v", args, err)
		}
		return string(out)
	}
	g("--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", name+" <release@example.org>", "ed25519", "sign", "never")
	for _, l := range strings.Split(g("--with-colons", "--list-keys"), "\n") {
		if f := strings.Split(l, ":"); f[0] == "pub" {
			id = f[4]
		}
	}
	pubFile = filepath.Join(dir, strings.ReplaceAll(strings.ToLower(name), " ", "-")+".asc")
	g("--armor", "--output", pubFile, "--export", id)
	return home, id, pubFile
}

// releaseKeyset is the keys of a firmware update: the owner's approval key (a dedicated P-256
// key kept offline; TPM 2.0 only), the publisher's release key and a forger's key.
type releaseKeyset struct {
	approvalKey          string // the approval key's PEM file; "" without one
	pubHome, pubID       string
	forgerHome, forgerID string
}

// releaseKeys makes the keys in work and puts the public halves of the approval and
// publisher keys into m's firmware, as glint rom personalize would.
func releaseKeys(t *testing.T, m *Machine, work string, withApproval bool) releaseKeyset {
	t.Helper()
	var k releaseKeyset
	if withApproval {
		ak, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(t, err)
		k.approvalKey = filepath.Join(work, "approval-key.pem")
		must(t, approval.WriteKeyFile(k.approvalKey, ak))
		akPub, err := approval.PEMPublic(ak.Public())
		must(t, err)
		writeFile(t, filepath.Join(work, "approval-pub.pem"), akPub)
		must(t, cbfsAdd(m.ROM, filepath.Join(work, "approval-pub.pem"), "glint/approval.pem"))
	}
	var pubFile string
	k.pubHome, k.pubID, pubFile = gpgKeyE2E(t, work, "Firmware Releases")
	must(t, cbfsAdd(m.ROM, pubFile, "glint/publisher.asc"))
	k.forgerHome, k.forgerID, _ = gpgKeyE2E(t, work, "Mallory")
	return k
}

// nextRelease is the publisher's next release for fw and its bundles in work: the project's
// ROM (no owner files: the publisher does not know them) with a changed payload command
// line, which coreboot measures into PCR 2, bundled with the publisher's key (good), with
// the forger's (forged), and the good bundle cut short (truncated). The payload is this
// checkout's (glint's kernel, out/kernel/bzImage, and out/payload.cpio.xz: the glint under
// test), not the shared coreboot build directory's, which another checkout may have rebuilt
// with its own glint.
func nextRelease(t *testing.T, m *Machine, fw Firmware, work string, k releaseKeyset) (good, forged, truncated string) {
	t.Helper()
	next := filepath.Join(work, "coreboot-next.rom")
	must(t, copyFile(filepath.Join(m.Top, "out", string(fw)+".rom"), next))
	must(t, run("cbfstool", next, "remove", "-n", "fallback/payload"))
	must(t, run("cbfstool", next, "add-payload", "-n", "fallback/payload",
		"-f", payloadKernel(m.Top), "-I", filepath.Join(m.Top, "out", "payload.cpio.xz"),
		"-C", strings.Replace(kernelCmdline, "quiet panic=-1", "panic=-1 quiet", 1)))
	glintBin := filepath.Join(m.Top, "out", "glint")
	bundle := func(home, id, name string) string {
		out := filepath.Join(work, name)
		os.Remove(out)
		cmd := exec.Command(glintBin, "flash", "bundle", "create", "--gpg-home", home, "--key", id, "--release", "next", "-o", out, next)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("bundle create: %v\n%s", err, b)
		}
		return out
	}
	good = bundle(k.pubHome, k.pubID, "update.glintupd")
	forged = bundle(k.forgerHome, k.forgerID, "forged.glintupd")
	raw := readFile(t, good)
	truncated = filepath.Join(work, "truncated.glintupd")
	writeFile(t, truncated, raw[:len(raw)*2/3])
	return good, forged, truncated
}

// corebootPCR2Line is one measurement in coreboot's serial log.
var corebootPCR2Line = regexp.MustCompile(`PCR-2 ([0-9a-f]{64}) SHA256`)

// corebootPCR2 replays the PCR 2 measurements coreboot logged on the serial console (one
// "PCR-2 <sha256> SHA256 [...]" line each) and says how many there were.
func corebootPCR2(log string) (value []byte, n int) {
	var ds [][]byte
	for _, g := range corebootPCR2Line.FindAllStringSubmatch(log, -1) {
		d, _ := hex.DecodeString(g[1])
		ds = append(ds, d)
	}
	return pcr.Replay(tpm.SHA256, ds...), len(ds)
}
