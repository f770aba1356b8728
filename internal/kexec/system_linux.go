package kexec

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/glint-boot/glint/internal/bootcfg"
	urkexec "github.com/u-root/u-root/pkg/boot/kexec"
	"golang.org/x/sys/unix"
)

// SystemLoader loads into the running kernel with kexec_file_load (Linux)
// or kexec_load (Multiboot2). It needs CAP_SYS_BOOT.
type SystemLoader struct {
	loaded bool
	// Platform overrides what ReadPlatform reports (tests, odd firmware).
	Platform *Platform
}

// NewSystemLoader returns the loader that really kexecs.
func NewSystemLoader() *SystemLoader { return &SystemLoader{} }

// Load implements Loader.
func (l *SystemLoader) Load(img Image) error {
	if err := img.check(); err != nil {
		return err
	}
	var err error
	switch img.Kind {
	case bootcfg.Linux:
		err = loadLinux(img)
	default:
		err = l.loadMultiboot2(img)
	}
	if err != nil {
		return err
	}
	l.loaded = true
	return nil
}

// Exec implements Loader: reboot(LINUX_REBOOT_CMD_KEXEC).
func (l *SystemLoader) Exec() error {
	if !l.loaded {
		return ErrNotLoaded
	}
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_KEXEC); err != nil {
		return fmt.Errorf("kexec reboot: %w", err)
	}
	return nil
}

// memfd returns an anonymous in-memory file: what it holds never reaches a disk.
func memfd(name string) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// initrdMemfd writes the combined initrd (see WriteInitrd) into a memfd,
// positioned at its start.
func initrdMemfd(img Image) (*os.File, error) {
	f, err := memfd("glint-initrd")
	if err != nil {
		return nil, err
	}
	if _, err := WriteInitrd(f, img.Initrds, img.ExtraInitrd); err != nil {
		f.Close()
		return nil, fmt.Errorf("initrd: %w", err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func loadLinux(img Image) error {
	var kf *os.File
	var err error
	if img.Kernel.Data != nil {
		if kf, err = memfd("glint-kernel"); err == nil {
			_, err = kf.Write(img.Kernel.Data)
		}
	} else {
		kf, err = os.Open(img.Kernel.Path)
	}
	if err != nil {
		return fmt.Errorf("kernel: %w", err)
	}
	defer kf.Close()
	initrdFD, flags := -1, 0
	if len(img.Initrds) > 0 || len(img.ExtraInitrd) > 0 {
		f, err := initrdMemfd(img)
		if err != nil {
			return err
		}
		// Closing the memfd after the syscall frees the key copy: the kernel
		// has read it into the kexec image by then.
		defer f.Close()
		initrdFD = int(f.Fd())
	} else {
		flags |= unix.KEXEC_FILE_NO_INITRAMFS
	}
	if _, err := kf.Seek(0, 0); err != nil {
		return err
	}
	if err := unix.KexecFileLoad(int(kf.Fd()), initrdFD, img.Cmdline, flags); err != nil {
		hint := ""
		if errors.Is(err, unix.EPERM) {
			hint = " (needs CAP_SYS_BOOT; lockdown or a signature policy may also refuse unsigned kernels)"
		}
		return fmt.Errorf("kexec_file_load %s: %w%s", img.Kernel.name(), err, hint)
	}
	return nil
}

func (l *SystemLoader) loadMultiboot2(img Image) error {
	plat := l.Platform
	if plat == nil {
		p, err := ReadPlatform()
		if err != nil {
			return err
		}
		plat = p
	}
	plan, err := PlanMultiboot2(img, *plat)
	if err != nil {
		return err
	}
	// kexec_load copies the segments into kernel memory; glint's copy of
	// the key-carrying module is not needed after it, whatever the outcome.
	defer plan.Wipe()
	var segs urkexec.Segments
	for _, s := range plan.Segments {
		segs = append(segs, urkexec.NewSegment(s.Data, urkexec.Range{Start: uintptr(s.Addr), Size: uint(s.MemSize)}))
	}
	if err := urkexec.Load(uintptr(plan.Entry), segs, 0); err != nil {
		return fmt.Errorf("kexec_load %s: %w", img.Kernel.name(), err)
	}
	return nil
}

// ReadPlatform describes this machine for Multiboot2: the firmware memory map
// (/sys/firmware/memmap), the ACPI RSDP (EFI system table or the BIOS area
// 0xE0000-0xFFFFF through /dev/mem), the framebuffer (screen_info in
// /sys/kernel/boot_params/data), whether UEFI left page 0 without a BIOS
// data area. Only the memory map is required.
func ReadPlatform() (*Platform, error) {
	mm, err := urkexec.MemoryMapFromSysfsMemmap()
	if err != nil {
		return nil, fmt.Errorf("memory map from /sys/firmware/memmap: %w", err)
	}
	p := &Platform{}
	for _, r := range mm {
		t := uint32(MemReserved)
		switch r.Type {
		case urkexec.RangeRAM:
			t = MemAvailable
		case urkexec.RangeACPI:
			t = MemACPI
		case urkexec.RangeNVS:
			t = MemNVS
		}
		p.MemoryMap = append(p.MemoryMap, MemRange{Start: uint64(r.Start), Size: uint64(r.Size), Type: t})
	}
	p.RSDPv1, p.RSDPv2 = findRSDP()
	// Booted by UEFI: no BIOS data area (Linux cannot show page 0: /dev/mem
	// reads RAM below 1 MiB as zeros, arch/x86/mm/init.c devmem_is_allowed).
	if _, err := os.Stat("/sys/firmware/efi"); err == nil {
		p.NoBDA = true
	}
	if data, err := os.ReadFile("/sys/kernel/boot_params/data"); err == nil {
		p.Framebuffer = ParseScreenInfo(data)
	}
	return p, nil
}

// findRSDP returns the RSDP (v1 20 bytes, v2 36 bytes), best effort.
func findRSDP() (v1, v2 []byte) {
	mem, err := os.Open("/dev/mem")
	if err != nil {
		return nil, nil
	}
	defer mem.Close()
	var addrs []int64
	if f, err := os.Open("/sys/firmware/efi/systab"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, _ := strings.Cut(sc.Text(), "=")
			if k == "ACPI20" || k == "ACPI" {
				if a, err := strconv.ParseInt(v, 0, 64); err == nil {
					addrs = append(addrs, a)
				}
			}
		}
		f.Close()
	}
	for _, a := range addrs {
		buf := make([]byte, 36)
		if _, err := mem.ReadAt(buf, a); err == nil {
			if v1, v2 := ParseRSDP(buf); v1 != nil {
				return v1, v2
			}
		}
	}
	// ACPI 6.5, 5.2.5.1: on BIOS systems the RSDP is on a 16-byte boundary
	// in 0xE0000-0xFFFFF.
	area := make([]byte, 0x20000)
	if _, err := mem.ReadAt(area, 0xE0000); err != nil {
		return nil, nil
	}
	for off := 0; off+36 <= len(area); off += 16 {
		if v1, v2 := ParseRSDP(area[off:]); v1 != nil {
			return v1, v2
		}
	}
	return nil, nil
}

// ParseRSDP checks an RSDP at the start of b ("RSD PTR ", checksums, ACPI
// 6.5 5.2.5.3) and returns its v1 part and, for revision >= 2, the v2 part.
func ParseRSDP(b []byte) (v1, v2 []byte) {
	if len(b) < 20 || !bytes.Equal(b[:8], []byte("RSD PTR ")) || sum8(b[:20]) != 0 {
		return nil, nil
	}
	v1 = append([]byte(nil), b[:20]...)
	if b[15] >= 2 && len(b) >= 36 {
		l := binary.LittleEndian.Uint32(b[20:])
		if l >= 36 && int(l) <= len(b) && sum8(b[:l]) == 0 {
			v2 = append([]byte(nil), b[:36]...)
		}
	}
	return v1, v2
}

func sum8(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return s
}

// ParseScreenInfo reads the linear framebuffer from struct screen_info at
// the start of boot_params (arch/x86/include/uapi/asm/bootparam.h,
// include/uapi/linux/screen_info.h). It returns nil for text modes.
func ParseScreenInfo(bp []byte) *Framebuffer {
	if len(bp) < 0x40 {
		return nil
	}
	le := binary.LittleEndian
	const videoTypeVLFB, videoTypeEFI = 0x23, 0x70
	if t := bp[0x0f]; t != videoTypeVLFB && t != videoTypeEFI {
		return nil
	}
	fb := &Framebuffer{
		Width:   uint32(le.Uint16(bp[0x12:])),
		Height:  uint32(le.Uint16(bp[0x14:])),
		BPP:     uint8(le.Uint16(bp[0x16:])),
		Addr:    uint64(le.Uint32(bp[0x18:])) | uint64(le.Uint32(bp[0x3a:]))<<32,
		Pitch:   uint32(le.Uint16(bp[0x24:])),
		RedSize: bp[0x26], RedPos: bp[0x27],
		GreenSize: bp[0x28], GreenPos: bp[0x29],
		BlueSize: bp[0x2a], BluePos: bp[0x2b],
	}
	// VIDEO_CAPABILITY_64BIT_BASE: ext_lfb_base holds the high half.
	if le.Uint32(bp[0x36:])&2 != 0 {
		fb.Addr |= uint64(le.Uint32(bp[0x3a:])) << 32
	}
	if fb.Addr == 0 || fb.Width == 0 || fb.Height == 0 {
		return nil
	}
	return fb
}
