//go:build e2e

package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/rootfs"
)

// TestMedia: boot policies and removable media on the emulated laptop (coreboot, TPM 2.0),
// issue 20. One machine, six power-ons: set-up (2), restricted mode with a tampered /boot and a
// stick of three ISOs (1), restricted mode booting the signed /boot (1), basic mode (1), the
// root file system check (1). The stick is QEMU's usb-storage on an xHCI controller, reached
// through the Debian kernel's xhci_pci, usb_storage and sd_mod modules in glint's payload.
func TestMedia(t *testing.T) {
	needTools(t, CorebootTPM2)
	if _, err := exec.LookPath("xorriso"); err != nil {
		t.Skip("xorriso not installed (scripts/install-deps.sh installs it)")
	}
	b := &bench{m: NewMachine(t, CorebootTPM2, "coreboot-tpm2-media")}
	m := b.m
	dir := filepath.Join(m.Dir, "media")
	must(t, os.MkdirAll(dir, 0o755))

	// The root file system and its list, in /boot before set-up: the owner's first signing
	// covers it (glint rootfs sign does the same on a running system).
	rootDir := filepath.Join(dir, "root")
	must(t, os.MkdirAll(filepath.Join(rootDir, "usr", "bin"), 0o755))
	writeFile(t, filepath.Join(rootDir, "usr", "bin", "sudo"), []byte("the real sudo\n"))
	list, _, err := rootfs.Build(rootDir, []string{"usr"}, nil, rootfs.Options{})
	must(t, err)
	must(t, rootfs.Write(m.BootDir, list))

	if !t.Run("01-first-boot-setup", func(t *testing.T) { rowFirstBoot(t, b) }) {
		t.Fatal("set-up failed: the other rows need an owned machine")
	}

	// A distribution key in the firmware (glint/iso-keys.asc, measured with the owner files),
	// and three images on one stick: tampered after signing, unsigned, signed.
	distro := newOwner(t, filepath.Join(dir, "distro"))
	signed := buildLiveISO(t, m.Top, dir, "3-signed.iso")
	tampered := buildLiveISO(t, m.Top, dir, "1-tampered.iso")
	unsigned := buildLiveISO(t, m.Top, dir, "2-unsigned.iso")
	sigS := gpgSign(t, distro.GnuPGHome, distro.Passphrase, "owner@example.org", signed)
	sigT := gpgSign(t, distro.GnuPGHome, distro.Passphrase, "owner@example.org", tampered)
	raw := readFile(t, tampered)
	raw[len(raw)/2] ^= 0x01
	writeFile(t, tampered, raw)
	m.USB = filepath.Join(dir, "usb.img")
	buildUSBStick(t, m.USB, tampered, sigT, unsigned, signed, sigS)
	must(t, cbfsAdd(m.ROM, distro.PublicFile, "glint/iso-keys.asc"))

	setConfig := func(t *testing.T, text string) {
		p := filepath.Join(dir, "config")
		writeFile(t, p, []byte(text))
		must(t, cbfsAdd(m.ROM, p, "glint/config"))
	}

	t.Run("02-restricted-mode-usb", func(t *testing.T) {
		setConfig(t, "boot.policy = restricted\n")
		kernel := findBootFile(t, m.BootDir, "vmlinuz")
		orig := readFile(t, kernel)
		defer writeFile(t, kernel, orig)
		changed := bytes.Clone(orig)
		changed[len(changed)/2] ^= 0x01
		writeFile(t, kernel, changed)

		r := m.Boot(t, "02-restricted-usb")
		expect(t, r, `glint: boot flow starting`, toGlint)
		// the mode switch is a measured configuration change: the sealed TOTP is refused
		expect(t, r, `TOTP REFUSED.*\n(?:.*\n)*?.*PCR 7`, toStep)
		expect(t, r, `TAMPER: .*`+regexp.QuoteMeta(filepath.Base(kernel)), toStep)
		expect(t, r, `RESTRICTED BOOT`, toStep)
		expect(t, r, `glint> `, toStep)
		must(t, r.Send("f"))
		expect(t, r, `forced boot is disabled by the owner's configuration \(boot.policy = restricted\)`, toStep)
		expect(t, r, `glint> `, toStep)
		b.noKexec(t, r)

		must(t, r.Send("u"))
		expect(t, r, `image \[1\]: `, toStep)
		must(t, r.Send("1"))
		expect(t, r, `entry \[1\]: `, toStep)
		must(t, r.Send(""))
		expect(t, r, `USB BOOT REFUSED`, toStep)
		expect(t, r, `"1-tampered\.iso" is TAMPERED`, toStep)
		r.Screenshot(t, "usb-tampered-iso")

		expect(t, r, `glint> `, toStep)
		must(t, r.Send("u"))
		expect(t, r, `image \[1\]: `, toStep)
		must(t, r.Send("2"))
		expect(t, r, `entry \[1\]: `, toStep)
		must(t, r.Send(""))
		expect(t, r, `refused in restricted mode: "2-unsigned\.iso" is not signed`, toStep)

		expect(t, r, `glint> `, toStep)
		must(t, r.Send("u"))
		expect(t, r, `image \[1\]: `, toStep)
		must(t, r.Send("3"))
		expect(t, r, `entry \[1\]: `, toStep)
		must(t, r.Send(""))
		expect(t, r, `3-signed\.iso: verified: 3-signed\.iso\.asc, signed by Owner`, toStep)
		expect(t, r, `glint: kexec 3-signed\.iso: `, toStep)
		expect(t, r, markerOS, toOS)
		expect(t, r, `E2E-CMDLINE: .*`+isoEntryArg, toStep)
		if g, err := r.Expect(`E2E-PCR sha256 4 ([0-9a-fA-F]+)\n`, toStep); err == nil && strings.EqualFold(g[1], b.normalPCR) {
			t.Errorf("PCR 4 after the USB boot equals a normal boot's: the usb measurement is missing")
		}
		expect(t, r, `E2E-OS-DONE`, toStep)
		r.Wait(t, toStopped)
	})

	t.Run("03-restricted-mode-signed-boot", func(t *testing.T) {
		r := m.Boot(t, "03-restricted-signed")
		expect(t, r, `glint: boot flow starting`, toGlint)
		expect(t, r, `/boot: verified`, toStep)
		expect(t, r, `glint> `, toStep)
		must(t, r.Send("d"))
		expect(t, r, `glint: kexec `, toStep)
		expect(t, r, markerOS, toOS)
		expect(t, r, `E2E-CMDLINE: .*e2e_entry=default`, toStep)
		expect(t, r, `E2E-OS-DONE`, toStep)
		r.Wait(t, toStopped)
	})

	t.Run("04-basic-mode", func(t *testing.T) {
		setConfig(t, "boot.policy = basic\n")
		r := m.Boot(t, "04-basic")
		expect(t, r, `glint: boot flow starting`, toGlint)
		expect(t, r, `UNPROTECTED: basic mode`, toStep)
		r.Screenshot(t, "basic-mode")
		expect(t, r, `glint: kexec `, toStep)
		expect(t, r, markerOS, toOS)
		expect(t, r, `E2E-OS-DONE`, toStep)
		r.Wait(t, toStopped)
		if strings.Contains(r.All(), "TOTP code") {
			t.Errorf("basic mode showed a TOTP code")
		}
	})

	t.Run("05-rootfs-changed-file-named", func(t *testing.T) {
		setConfig(t, "rootfs.check = boot\nrootfs.device = UUID="+rootFSUUID+"\n")
		writeFile(t, filepath.Join(rootDir, "usr", "bin", "sudo"), []byte("the evil sudo\n"))
		m.USB = ""
		m.Disk2 = filepath.Join(dir, "root.img")
		buildRootDisk(t, m.Disk2, rootDir)
		r := m.Boot(t, "05-rootfs")
		expect(t, r, `glint: boot flow starting`, toGlint)
		expect(t, r, `/boot: verified`, toStep)
		expect(t, r, `TAMPER: root file system: changed "usr/bin/sudo"`, toStep)
		expect(t, r, `glint> `, toStep)
		r.Screenshot(t, "rootfs-changed")
		b.noKexec(t, r)
		must(t, r.Send("p"))
		r.Wait(t, toStopped)
	})
}
