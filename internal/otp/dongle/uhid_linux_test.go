//go:build linux && amd64

package dongle_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/glint-boot/glint/internal/otp"
	"github.com/glint-boot/glint/internal/otp/dongle"
	"github.com/glint-boot/glint/internal/otp/dongle/dongletest"
)

// The hidraw path (sysfs discovery, HIDIOCSFEATURE/HIDIOCGFEATURE, report
// ID handling) is tested against the real Linux HID core: the kernel's
// uhid driver creates a HID device with the Nitrokey Pro's USB IDs and a
// 64-byte Feature report, the kernel gives it a /dev/hidrawN, and this
// test answers the kernel's SET_REPORT/GET_REPORT requests with the
// simulator. Only the USB wire and the firmware are simulated.
//
// This machine has no /dev/uhid, so TestHidrawInQEMU boots Debian's kernel
// (scripts/fetch-kernel.sh) in QEMU with this test binary as /init.

// struct uhid_event (include/uapi/linux/uhid.h): a u32 type and a union
// whose largest member is uhid_create2_req.
const (
	uhidCreate2        = 11
	uhidGetReport      = 9
	uhidGetReportReply = 10
	uhidSetReport      = 13
	uhidSetReportReply = 14
	uhidDataMax        = 4096
	uhidEventSize      = 4 + 128 + 64 + 64 + 2 + 2 + 4 + 4 + 4 + 4 + uhidDataMax
	busUSB             = 3
)

// A vendor-defined collection with one 64-byte Feature report and no
// report IDs, as the Nitrokey Pro's HID interface has.
var featureDescriptor = []byte{
	0x06, 0x00, 0xFF, // Usage Page (Vendor 0xFF00)
	0x09, 0x01, // Usage (1)
	0xA1, 0x01, // Collection (Application)
	0x15, 0x00, // Logical Minimum (0)
	0x26, 0xFF, 0x00, // Logical Maximum (255)
	0x75, 0x08, // Report Size (8)
	0x95, 0x40, // Report Count (64)
	0x09, 0x01, // Usage (1)
	0xB1, 0x02, // Feature (Data, Var, Abs)
	0xC0, // End Collection
}

// serveUHID creates the device and bridges the kernel's report requests
// to sim until the file is closed.
func serveUHID(t *testing.T, sim *dongletest.Sim) (stop func()) {
	f, err := os.OpenFile("/dev/uhid", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	ev := make([]byte, uhidEventSize)
	binary.LittleEndian.PutUint32(ev, uhidCreate2)
	req := ev[4:]
	copy(req[0:128], "Nitrokey Nitrokey Pro (glint uhid test)")
	binary.LittleEndian.PutUint16(req[256:], uint16(len(featureDescriptor)))
	binary.LittleEndian.PutUint16(req[258:], busUSB)
	binary.LittleEndian.PutUint32(req[260:], 0x20a0)
	binary.LittleEndian.PutUint32(req[264:], 0x4108)
	copy(req[276:], featureDescriptor) // after version and country (u32 each)
	if _, err := f.Write(ev); err != nil {
		t.Fatalf("UHID_CREATE2: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		in := make([]byte, uhidEventSize)
		for {
			if _, err := f.Read(in); err != nil {
				return
			}
			out := make([]byte, uhidEventSize)
			id := binary.LittleEndian.Uint32(in[4:])
			switch binary.LittleEndian.Uint32(in) {
			case uhidSetReport:
				// uhid_set_report_req: id, rnum, rtype, size, data. The
				// data starts with the report ID byte hidraw got.
				size := int(binary.LittleEndian.Uint16(in[10:]))
				errno := uint16(0)
				if size > uhidDataMax || sim.SetFeature(in[12:12+size]) != nil {
					errno = uint16(unix.EIO)
				}
				binary.LittleEndian.PutUint32(out, uhidSetReportReply)
				binary.LittleEndian.PutUint32(out[4:], id)
				binary.LittleEndian.PutUint16(out[8:], errno)
			case uhidGetReport:
				// Reply with the report ID byte first, as usbhid gives
				// hidraw for a device without numbered reports.
				buf := make([]byte, dongle.HIDBufferSize)
				n, err := sim.GetFeature(buf)
				binary.LittleEndian.PutUint32(out, uhidGetReportReply)
				binary.LittleEndian.PutUint32(out[4:], id)
				if err != nil {
					binary.LittleEndian.PutUint16(out[8:], uint16(unix.EIO))
				} else {
					binary.LittleEndian.PutUint16(out[10:], uint16(n))
					copy(out[12:], buf[:n])
				}
			default:
				continue // START, OPEN, CLOSE, OUTPUT: nothing to do
			}
			if _, err := f.Write(out); err != nil {
				return
			}
		}
	}()
	return func() { f.Close(); <-done }
}

func TestHidrawViaUHID(t *testing.T) {
	if _, err := os.Stat("/dev/uhid"); err != nil {
		t.Skip("no /dev/uhid here (needs the uhid module and root); TestHidrawInQEMU runs this test in a VM")
	}
	sim := dongletest.New()
	stop := serveUHID(t, sim)
	defer stop()

	var dev dongle.Device
	var found dongle.Found
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if dev, found, err = dongle.Open(os.DirFS("/sys"), "/dev"); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("the kernel's hidraw node for the uhid Nitrokey Pro never appeared: %v", err)
	}
	defer dev.Close()
	t.Logf("found %s at /dev/%s", found.Model.Name, found.Node)
	if found.Model.Name != "Nitrokey Pro" {
		t.Errorf("model %q", found.Model.Name)
	}

	c := &dongle.Client{Dev: dev}
	info, err := c.Info()
	if err != nil {
		t.Fatal(err)
	}
	if info.Firmware() != "v0.15" || info.AdminRetries != 3 {
		t.Errorf("Info over hidraw = %+v", info)
	}
	secret := []byte("12345678901234567890")
	if err := c.Program([]byte("12345678"), secret, 0); err != nil {
		t.Fatal(err)
	}
	for counter := uint64(0); counter < 3; counter++ {
		code, _ := otp.HOTP(otp.SHA1, secret, counter, 6)
		v, err := c.Verify(code)
		if err != nil || !v.Valid {
			t.Fatalf("counter %d over hidraw: %+v, %v", counter, v, err)
		}
	}
	if v, err := c.Verify(1); err != nil || v.Valid {
		t.Errorf("wrong code over hidraw: %+v, %v", v, err)
	}
}

// TestMain makes the test binary usable as /init of a QEMU guest.
func TestMain(m *testing.M) {
	if os.Getpid() != 1 {
		m.Run() // TestMain returning passes m.Run's result to os.Exit
		return
	}
	for _, mnt := range []struct{ src, dir, fs string }{{"devtmpfs", "/dev", "devtmpfs"}, {"sysfs", "/sys", "sysfs"}, {"proc", "/proc", "proc"}} {
		os.MkdirAll(mnt.dir, 0o755)
		if err := unix.Mount(mnt.src, mnt.dir, mnt.fs, 0, ""); err != nil {
			fmt.Println("mount", mnt.dir, err)
		}
	}
	for _, mod := range []string{"hid.ko", "uhid.ko", "hid-generic.ko"} {
		f, err := os.Open("/modules/" + mod)
		if err == nil {
			err = unix.FinitModule(int(f.Fd()), "", 0)
			f.Close()
		}
		if err != nil && !errors.Is(err, unix.EEXIST) {
			fmt.Println("load", mod, err)
		}
	}
	code := m.Run()
	fmt.Printf("GLINT-QEMU-EXIT %d\n", code)
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART) // -no-reboot turns this into QEMU exiting
	select {}
}

func TestHidrawInQEMU(t *testing.T) {
	if os.Getpid() == 1 {
		t.Skip("already inside the VM")
	}
	if testing.Short() {
		t.Skip("boots a VM (about 15 s); skipped with -short")
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 not installed (scripts/install-deps.sh installs it)")
	}
	top, err := filepath.Abs("../../..") // go test runs in the package directory
	if err != nil {
		t.Fatal(err)
	}
	kdir := filepath.Join(top, "cache/kernel")
	ver, err := os.ReadFile(filepath.Join(kdir, "version"))
	if err != nil {
		t.Skip("no guest kernel in cache/kernel: run scripts/fetch-kernel.sh")
	}
	modDir := filepath.Join(kdir, "modules", strings.TrimSpace(string(ver)), "kernel/drivers/hid")

	dir := t.TempDir()
	bin := filepath.Join(dir, "init")
	build := exec.Command("go", "test", "-c", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the test binary: %v\n%s", err, out)
	}
	files := map[string]string{"init": bin}
	for _, m := range []string{"hid.ko", "uhid.ko", "hid-generic.ko"} {
		files["modules/"+m] = filepath.Join(modDir, m)
	}
	initrd := filepath.Join(dir, "initrd.cpio")
	if err := writeNewc(initrd, files); err != nil {
		t.Fatal(err)
	}
	args := []string{"-m", "512", "-nographic", "-no-reboot", "-kernel", filepath.Join(kdir, "vmlinuz"),
		"-initrd", initrd, "-append", "console=ttyS0 panic=-1 -- -test.run=^TestHidrawViaUHID$ -test.v"}
	// No KVM: nested KVM on the CI hosts hangs this kernel before its first
	// message, and TCG boots it in about 2 s.
	cmd := exec.Command(qemu, args...)
	done := make(chan struct{})
	var out []byte
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("VM did not finish in 3 minutes:\n%s", out)
	}
	text := string(out)
	if !strings.Contains(text, "GLINT-QEMU-EXIT 0") || !strings.Contains(text, "--- PASS: TestHidrawViaUHID") {
		t.Fatalf("hidraw test in the VM failed (qemu: %v):\n%s", err, text)
	}
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, "found Nitrokey Pro") || strings.Contains(l, "TestHidrawViaUHID") {
			t.Log(strings.TrimSpace(l))
		}
	}
}

// writeNewc writes an initramfs in the cpio "newc" format (the kernel's
// Documentation/driver-api/early-userspace/buffer-format.rst).
func writeNewc(path string, files map[string]string) error {
	var b bytes.Buffer
	ino := 1
	pad := func() {
		for b.Len()%4 != 0 {
			b.WriteByte(0)
		}
	}
	entry := func(name string, mode uint32, data []byte) {
		fmt.Fprintf(&b, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
		ino++
		b.WriteString(name)
		b.WriteByte(0)
		pad()
		b.Write(data)
		pad()
	}
	entry("modules", unix.S_IFDIR|0o755, nil)
	for name, src := range files {
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		entry(name, unix.S_IFREG|0o755, data)
	}
	entry("TRAILER!!!", 0, nil)
	return os.WriteFile(path, b.Bytes(), 0o644)
}
