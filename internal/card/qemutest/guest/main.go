//go:build linux

// Command guest is /init of the card QEMU test: it loads the USB host
// controller modules, waits for QEMU's usb-ccid reader, then runs the glint
// commands listed in /script (one per line, arguments separated by spaces;
// "> FILE" at the end sends stdout to FILE; "cat FILE" prints a file,
// base64-encoded, between markers) and powers off. Every line of its own is prefixed
// "CARDTEST-" so the host test can follow it on the serial console.
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if err := run(); err != nil {
		fmt.Printf("CARDTEST-FAIL %v\n", err)
	}
	fmt.Println("CARDTEST-DONE")
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	for {
		time.Sleep(time.Hour)
	}
}

func run() error {
	for _, m := range []struct{ src, dst, typ string }{
		{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}, {"devtmpfs", "/dev", "devtmpfs"}, {"tmpfs", "/tmp", "tmpfs"},
	} {
		_ = os.MkdirAll(m.dst, 0o755)
		if err := unix.Mount(m.src, m.dst, m.typ, 0, ""); err != nil && err != unix.EBUSY {
			return fmt.Errorf("mount %s: %w", m.dst, err)
		}
	}
	order, err := os.ReadFile("/modules/order")
	if err != nil {
		return err
	}
	start := time.Now()
	for _, name := range strings.Fields(string(order)) {
		f, err := os.Open(filepath.Join("/modules", name))
		if err != nil {
			return err
		}
		err = unix.FinitModule(int(f.Fd()), "", 0)
		f.Close()
		if err != nil && err != unix.EEXIST {
			return fmt.Errorf("load %s: %w", name, err)
		}
	}
	// The reader appears once xhci has enumerated the bus.
	for {
		if ccidPresent() {
			break
		}
		if time.Since(start) > 60*time.Second {
			return fmt.Errorf("no USB CCID interface after %v", time.Since(start))
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Printf("CARDTEST-USB-READY after %.1f s\n", time.Since(start).Seconds())
	script, err := os.ReadFile("/script")
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(script))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if name, ok := strings.CutPrefix(line, "cat "); ok {
			b, err := os.ReadFile(name)
			if err != nil {
				return err
			}
			// base64: the serial console must not touch the bytes.
			fmt.Printf("CARDTEST-FILE-BEGIN %s\n%s\nCARDTEST-FILE-END %s\n", name, base64.StdEncoding.EncodeToString(b), name)
			continue
		}
		args := strings.Fields(line)
		var out *os.File = os.Stdout
		if len(args) >= 2 && args[len(args)-2] == ">" {
			f, err := os.Create(args[len(args)-1])
			if err != nil {
				return err
			}
			out = f
			args = args[:len(args)-2]
		}
		fmt.Printf("CARDTEST-RUN %d glint %s\n", n, strings.Join(args, " "))
		t0 := time.Now()
		cmd := exec.Command("/bin/glint", args...)
		cmd.Stdout, cmd.Stderr = out, os.Stdout
		cmd.Stdin = strings.NewReader("")
		err := cmd.Run()
		if out != os.Stdout {
			out.Close()
		}
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			return err
		}
		fmt.Printf("CARDTEST-EXIT %d %d %.2fs\n", n, code, time.Since(t0).Seconds())
	}
	return nil
}

func ccidPresent() bool {
	ifs, _ := filepath.Glob("/sys/bus/usb/devices/*:*/bInterfaceClass")
	for _, f := range ifs {
		if b, err := os.ReadFile(f); err == nil && strings.TrimSpace(string(b)) == "0b" {
			return true
		}
	}
	return false
}
