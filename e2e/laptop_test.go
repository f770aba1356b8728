//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLaptop is `make laptop` (scripts/laptop.sh runs this test binary with GLINT_LAPTOP=1 and
// the terminal attached): the emulated laptop for a person. Its serial console is the terminal
// (QEMU's mon:stdio: Ctrl-A X powers it off, Ctrl-A C is QEMU's monitor), its VGA screen a
// window when a display and QEMU's GTK front end exist, else a VNC server on 127.0.0.1. The
// state is kept between runs in out/laptop (the TPM, the flash chip, /boot as a directory, the
// security key, the USB drives), so /boot can be changed from the host between power-ons
// (out/laptop/boot/) and glint's answer seen at the next one.
//
// The first run makes the laptop as a vendor ships it (one automated power-on: the vendor's
// key in the firmware, /boot signed, the vendor's TOTP secret sealed); plugged in are the
// vendor's key stick (passphrase owner-pass), a simulated OpenPGP security key (factory PINs
// 123456 / 12345678) and an empty USB drive, so every menu item can be tried, R included.
// `make laptop-reset` starts again from a new laptop.
func TestLaptop(t *testing.T) {
	if os.Getenv("GLINT_LAPTOP") == "" {
		t.Skip("the interactive laptop runs with make laptop (GLINT_LAPTOP=1)")
	}
	needTools(t, CorebootTPM2)
	top := repoRoot(t)
	dir := filepath.Join(top, "out", "laptop")
	shipped := filepath.Join(dir, "shipped")
	var m *Machine
	if _, err := os.Stat(shipped); err == nil {
		m = reopenLaptop(t, top, dir)
	} else {
		fmt.Printf("Making a new emulated laptop in %s, as a vendor ships it (one automated power-on, about a minute)...\n", dir)
		m = newMachineIn(t, CorebootTPM2, "laptop", dir)
		b := &bench{m: m}
		Echo = os.Stdout
		uri, _ := shipByVendor(t, b, "vendor-setup")
		Echo = nil
		must(t, os.WriteFile(filepath.Join(dir, "vendor-totp-uri"), []byte(uri+"\n"), 0o644))
		m.USB = filepath.Join(dir, "usb-drive.img")
		buildUSBStick(t, m.USB)
		must(t, os.WriteFile(shipped, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644))
	}
	m.Card = startCard(t, m)
	m.FlashDisk = true
	in := bufio.NewReader(os.Stdin)
	for {
		printLaptopHelp(m)
		if err := m.bootInteractive(t); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("\nThe laptop is off. /boot is in %s: change a file there to play the evil maid.\n", m.BootDir)
		fmt.Printf("Power it on again? [Y/n] ")
		a, err := in.ReadString('\n')
		if err != nil || strings.HasPrefix(strings.ToLower(strings.TrimSpace(a)), "n") {
			fmt.Println("State kept in", dir, "(make laptop continues, make laptop-reset starts anew).")
			return
		}
	}
}

func printLaptopHelp(m *Machine) {
	uri, _ := os.ReadFile(filepath.Join(m.Dir, "vendor-totp-uri"))
	fmt.Printf(`
=== The emulated laptop (coreboot + glint, TPM 2.0) =========================================
Serial console below. Ctrl-A X powers off, Ctrl-A C switches to QEMU's monitor and back.
Plugged in: the vendor's key stick (passphrase %q), a simulated OpenPGP security key (factory
PINs 123456 / 12345678), an empty USB drive. The flash chip is %s.
At glint's menu: R re-owns the machine with the security key (docs/own.md); s, r, x, l need
the owner's key. The vendor's TOTP secret, for an authenticator app until you re-own:
  %s
Transcripts: %s/*.log
==============================================================================================
`, ownerPassphrase, m.ROM, strings.TrimSpace(string(uri)), m.Dir)
}

// reopenLaptop is a laptop made by an earlier run, as it was left.
func reopenLaptop(t *testing.T, top, dir string) *Machine {
	t.Helper()
	m := &Machine{Name: "laptop", Firmware: CorebootTPM2, Top: top, Dir: dir,
		TPMDir: filepath.Join(dir, "tpm"), BootDir: filepath.Join(dir, "boot"), ROM: filepath.Join(dir, "flash.rom"),
		Stick: filepath.Join(dir, "stick.img"), USB: filepath.Join(dir, "usb-drive.img")}
	o := filepath.Join(dir, "owner")
	m.Owner = &Owner{Passphrase: ownerPassphrase, GnuPGHome: filepath.Join(o, "gnupg"),
		SecretFile: filepath.Join(o, "owner-secret.asc"), PublicFile: filepath.Join(o, "owner.asc")}
	return m
}

// bootInteractive powers the laptop on with the terminal as its serial console and waits
// until it is off; /boot is then read back from its disk.
func (m *Machine) bootInteractive(t *testing.T) error {
	disk := filepath.Join(m.Dir, "disk.img")
	if err := buildBootDisk(disk, m.BootDir); err != nil {
		return err
	}
	sock := filepath.Join(m.Dir, "swtpm.sock")
	os.Remove(sock)
	targs := []string{"socket", "--tpmstate", "dir=" + m.TPMDir, "--ctrl", "type=unixio,path=" + sock,
		"--log", "file=" + filepath.Join(m.Dir, "swtpm.log") + ",level=1", "--terminate", "--tpm2"}
	sw := exec.Command("swtpm", targs...)
	sw.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := sw.Start(); err != nil {
		return err
	}
	defer func() {
		done := make(chan struct{})
		go func() { sw.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-sw.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}()
	if err := waitFor(sock, 5*time.Second); err != nil {
		return err
	}
	mon := filepath.Join(m.Dir, "monitor.sock")
	os.Remove(mon)
	args := m.qemuArgs(disk, sock, mon)
	for i := range args {
		switch {
		case args[i] == "stdio" && args[i-1] == "-serial":
			args[i] = "mon:stdio"
		case args[i] == "none" && args[i-1] == "-display":
			args[i] = laptopDisplay()
		}
	}
	q := exec.Command("qemu-system-x86_64", args...)
	q.Stdin, q.Stdout, q.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := q.Run()
	if rerr := readBackBoot(disk, m.BootDir); rerr != nil {
		return fmt.Errorf("read /boot back from the disk: %w", rerr)
	}
	if err != nil {
		fmt.Printf("\nQEMU: %v\n", err)
	}
	return nil
}

// laptopDisplay is a GTK window when there is a display and QEMU has the GTK front end, else a
// VNC server on the first free port from 5900 on 127.0.0.1.
func laptopDisplay() string {
	if os.Getenv("DISPLAY") != "" || os.Getenv("WAYLAND_DISPLAY") != "" {
		if out, err := exec.Command("qemu-system-x86_64", "-display", "help").Output(); err == nil && strings.Contains(string(out), "gtk") {
			return "gtk"
		}
	}
	for n := 0; n < 50; n++ {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", 5900+n))
		if err != nil {
			continue
		}
		l.Close()
		fmt.Printf("The laptop's screen (VGA) is on VNC: vncviewer 127.0.0.1:%d\n", 5900+n)
		return fmt.Sprintf("vnc=127.0.0.1:%d", n)
	}
	return "none"
}
