//go:build linux

// Command stage1 is the /init of the qemutest boot: it loads the second
// system with internal/kexec's real SystemLoader and kexecs into it. The
// host test reads its serial lines (prefix "STAGE1-") to time each step.
//
// The kernel command line chooses the case: glint.test=linux loads /vmlinuz
// with /stage2.cpio.gz plus /key.cpio as ExtraInitrd through
// kexec_file_load; glint.test=xen loads /xen.gz (Multiboot2) with /vmlinuz
// and /stage2.cpio.gz as modules through kexec_load and the trampoline, the
// key again as ExtraInitrd (appended to the dom0 initrd module).
// glint.xen=a,b adds options to Xen's command line (debugging by hand).
// When the initramfs carries no /vmlinuz (the coreboot case), the files
// come from a RAM bundle at glint.bundle=ADDR (see fetchBundle).
package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/glint-boot/glint/internal/bootcfg"
	"github.com/glint-boot/glint/internal/kexec"
	"github.com/u-root/u-root/pkg/cpio"
	"golang.org/x/sys/unix"
)

func main() {
	if err := run(); err != nil {
		fmt.Printf("STAGE1-FAIL %v\n", err)
	}
	// PID 1 must not return: power off so QEMU exits at once.
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	for {
		time.Sleep(time.Hour)
	}
}

func run() error {
	for _, m := range []struct{ src, dst, typ string }{
		{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}, {"devtmpfs", "/dev", "devtmpfs"},
	} {
		_ = os.MkdirAll(m.dst, 0o755)
		if err := unix.Mount(m.src, m.dst, m.typ, 0, ""); err != nil && err != unix.EBUSY {
			return fmt.Errorf("mount %s: %w", m.dst, err)
		}
	}
	fmt.Printf("STAGE1-INIT uptime=%s\n", uptime())
	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return err
	}
	mode, xenExtra := "", ""
	for _, w := range strings.Fields(string(cmdline)) {
		if v, ok := strings.CutPrefix(w, "glint.test="); ok {
			mode = v
		}
		// glint.xen=a,b adds options to Xen's command line (a,b -> "a b").
		if v, ok := strings.CutPrefix(w, "glint.xen="); ok {
			xenExtra = " " + strings.ReplaceAll(v, ",", " ")
		}
	}
	if err := fetchBundle(string(cmdline)); err != nil {
		return err
	}
	key, err := os.ReadFile("/key.cpio")
	if err != nil {
		return err
	}
	var img kexec.Image
	switch mode {
	case "linux":
		img = kexec.Image{
			Kind:        bootcfg.Linux,
			Kernel:      kexec.File{Path: "/vmlinuz"},
			Initrds:     []kexec.File{{Path: "/stage2.cpio.gz"}},
			ExtraInitrd: key,
			Cmdline:     "console=ttyS0 panic=-1 glint.stage=2",
		}
	case "xen":
		img = kexec.Image{
			Kind:    bootcfg.Multiboot2,
			Kernel:  kexec.File{Path: "/xen.gz"},
			Cmdline: "console=com1 com1=115200,8n1 smap=0 smep=0 dom0_mem=512M noreboot" + xenExtra,
			Modules: []kexec.Module{
				{File: kexec.File{Path: "/vmlinuz"}, Cmdline: "console=hvc0 panic=-1 glint.stage=2"},
				{File: kexec.File{Path: "/stage2.cpio.gz"}},
			},
			ExtraInitrd: key,
		}
	default:
		return fmt.Errorf("glint.test=%q: want linux or xen", mode)
	}
	if p, err := kexec.ReadPlatform(); err == nil {
		// What the Multiboot2 plan will describe, for the log.
		fmt.Printf("STAGE1-PLATFORM memmap=%d rsdp-v1=%t rsdp-v2=%t framebuffer=%t no-bda=%t\n",
			len(p.MemoryMap), p.RSDPv1 != nil, p.RSDPv2 != nil, p.Framebuffer != nil, p.NoBDA)
	} else {
		fmt.Printf("STAGE1-PLATFORM error %v\n", err)
	}
	l := kexec.NewSystemLoader()
	start := time.Now()
	if err := l.Load(img); err != nil {
		return fmt.Errorf("load %s: %w", mode, err)
	}
	fmt.Printf("STAGE1-LOADED mode=%s load_ms=%d\n", mode, time.Since(start).Milliseconds())
	fmt.Printf("STAGE1-EXEC uptime=%s\n", uptime())
	return l.Exec()
}

func uptime() string {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// bundleMagic starts the file QEMU's "-device loader" puts in guest RAM for
// the coreboot case: magic, little-endian u64 length, then a newc cpio.
const bundleMagic = "GLINTBND"

// fetchBundle unpacks the second system's files from RAM when the
// initramfs does not carry them: a 16 MiB coreboot ROM has no room for the
// kernel twice, so that case loads them with QEMU's generic loader at
// glint.bundle=ADDR, a range the kernel command line also reserves
// (memmap=SIZE$ADDR) so /dev/mem may read it under STRICT_DEVMEM.
func fetchBundle(cmdline string) error {
	if _, err := os.Stat("/vmlinuz"); err == nil {
		return nil
	}
	var addr int64 = -1
	for _, w := range strings.Fields(cmdline) {
		if v, ok := strings.CutPrefix(w, "glint.bundle="); ok {
			if a, err := strconv.ParseInt(v, 0, 64); err == nil {
				addr = a
			}
		}
	}
	if addr < 0 {
		return fmt.Errorf("no /vmlinuz in the initramfs and no glint.bundle=ADDR")
	}
	mem, err := os.Open("/dev/mem")
	if err != nil {
		return err
	}
	defer mem.Close()
	var hdr [16]byte
	if _, err := mem.ReadAt(hdr[:], addr); err != nil {
		return fmt.Errorf("read bundle header at %#x: %w", addr, err)
	}
	if string(hdr[:8]) != bundleMagic {
		return fmt.Errorf("no bundle at %#x (found %q)", addr, hdr[:8])
	}
	n := int64(binary.LittleEndian.Uint64(hdr[8:]))
	if n <= 0 || n > 256<<20 {
		return fmt.Errorf("bundle length %d out of range", n)
	}
	rr := cpio.Newc.Reader(io.NewSectionReader(mem, addr+16, n))
	for {
		rec, err := rr.ReadRecord()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
		name := filepath.Base(rec.Name)
		if rec.Mode&cpio.S_IFMT != cpio.S_IFREG || name == "." || name == "/" {
			continue
		}
		data, err := io.ReadAll(io.NewSectionReader(rec, 0, int64(rec.FileSize)))
		if err != nil {
			return fmt.Errorf("bundle %s: %w", name, err)
		}
		if err := os.WriteFile("/"+name, data, 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("STAGE1-BUNDLE %d bytes uptime=%s\n", n, uptime())
	return nil
}
