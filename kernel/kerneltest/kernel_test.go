//go:build qemu

package kerneltest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/glint-boot/glint/internal/chipset"
	"github.com/glint-boot/glint/internal/hostcheck"
)

const (
	qemu     = "qemu-system-x86_64"
	busybox  = "/bin/busybox"
	ovmfPath = "/usr/share/ovmf/OVMF.fd"
)

// guestInit runs the checks and reports what the kernel offers; every section is bracketed so
// the host can cut it out of the serial log.
const guestInit = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t securityfs securityfs /sys/kernel/security
[ -d /sys/firmware/efi ] && mount -t efivarfs efivarfs /sys/firmware/efi/efivars
mkdir -p /tmp && mount -t tmpfs tmpfs /tmp
# USB devices enumerate after /init starts: wait (up to 20 s) for the keyboard, the stick and
# the card reader, as glint waits for a stick
i=0; while [ $i -lt 100 ] && [ $(cat /sys/bus/usb/devices/*/idVendor 2>/dev/null | wc -l) -lt 5 ]; do sleep 0.2; i=$((i+1)); done
i=0; while [ $i -lt 50 ] && [ ! -e /dev/hidraw0 ]; do sleep 0.2; i=$((i+1)); done
# usb-storage waits a second (delay_use) before it scans the stick: wait for both SCSI disks
# (AHCI and the stick)
i=0; while [ $i -lt 75 ] && [ $(ls /sys/class/block | grep -c '^sd[a-z]$') -lt 2 ]; do sleep 0.2; i=$((i+1)); done
echo "KT-RELEASE $(uname -r)"
echo "KT-UPTIME $(cut -d' ' -f1 /proc/uptime)"
for p in /dev/tpm0 /dev/tpmrm0 /dev/mem /dev/port /dev/uhid /dev/loop-control /dev/hidraw0 \
         /sys/kernel/security/tpm0/binary_bios_measurements /sys/firmware/efi/efivars \
         /sys/bus/coreboot /sys/class/dmi/id/product_name /dev/rtc0; do
  [ -e "$p" ] && echo "KT-HAVE $p"
done
for d in /sys/class/block/*; do echo "KT-BLOCK $(basename $d)"; done
for d in /sys/class/net/*; do echo "KT-NET $(basename $d) $(basename $(readlink $d/device/driver 2>/dev/null) 2>/dev/null)"; done
for d in /dev/bus/usb/*/*; do [ -e "$d" ] && echo "KT-USBFS $d"; done
for d in /sys/bus/usb/devices/*; do [ -f $d/idVendor ] && echo "KT-USB $(cat $d/idVendor):$(cat $d/idProduct) $(cat $d/product 2>/dev/null)"; done
ip link set lo up && echo KT-HAVE packet-capable-netlink
# loop + iso9660 + vfat + ext4 are built in: /proc/filesystems lists them
grep -qw iso9660 /proc/filesystems && echo KT-FS iso9660
grep -qw vfat /proc/filesystems && echo KT-FS vfat
grep -qw ext4 /proc/filesystems && echo KT-FS ext4
echo KT-DUMP-BEGIN; glint host dump; echo KT-DUMP-END
echo KT-CHECK-BEGIN; glint host check --json --phase payload 2>/dev/null; echo KT-CHECK-END
echo KT-LOCK-BEGIN; glint host lock 2>&1; echo "KT-LOCK-RC $?"; echo KT-LOCK-END
echo KT-AFTER-BEGIN; glint host check --json --phase payload-locked 2>/dev/null; echo KT-AFTER-END
echo KT-DONE
poweroff -f
`

type fixture struct {
	root, dir, kernel, initrd string
}

func repoRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

func setup(t *testing.T) *fixture {
	t.Helper()
	for _, tool := range []string{qemu, "swtpm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (make deps): %v", tool, err)
		}
	}
	f := &fixture{root: repoRoot(t), dir: t.TempDir()}
	f.kernel = filepath.Join(f.root, "out/kernel/bzImage")
	if _, err := os.Stat(f.kernel); err != nil {
		t.Skipf("no payload kernel (run scripts/build-kernel.sh or make kernel): %v", err)
	}
	// the payload build of glint (Makefile PAYLOAD_BUILD), the one that runs from flash
	glintBin := filepath.Join(f.dir, "glint")
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "payload", "-gcflags=all=-l", "-ldflags=-s -w", "-o", glintBin, "./cmd/glint")
	cmd.Dir = f.root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build glint: %v\n%s", err, out)
	}
	var buf bytes.Buffer
	w := cpio.Newc.Writer(&buf)
	recs := []cpio.Record{
		cpio.Directory("bin", 0o755), cpio.Directory("dev", 0o755), cpio.Directory("proc", 0o755),
		cpio.Directory("sys", 0o755), cpio.CharDev("dev/console", 0o600, 5, 1),
		cpio.StaticRecord(mustRead(t, busybox), cpio.Info{Name: "bin/busybox", Mode: cpio.S_IFREG | 0o755}),
		cpio.StaticRecord(mustRead(t, glintBin), cpio.Info{Name: "bin/glint", Mode: cpio.S_IFREG | 0o755}),
		cpio.StaticFile("init", guestInit, 0o755),
	}
	for i := range recs {
		recs[i] = cpio.MakeReproducible(recs[i])
	}
	if err := cpio.WriteRecords(w, recs); err != nil {
		t.Fatal(err)
	}
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatal(err)
	}
	f.initrd = filepath.Join(f.dir, "initrd.cpio")
	if err := os.WriteFile(f.initrd, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// coreboot's 16 MiB flash needs it compressed: xz with a CRC32 check, as the payload is
	// (Linux's initramfs decoder rejects the default CRC64)
	xz := exec.Command("xz", "--check=crc32", "-3", "-k", f.initrd)
	if out, err := xz.CombinedOutput(); err != nil {
		t.Fatalf("xz the initramfs: %v\n%s", err, out)
	}
	return f
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Skipf("%s: %v", p, err)
	}
	return b
}

type machine struct {
	name     string
	firmware string // seabios, ovmf, coreboot
	tpm2     bool
}

// result is one guest run's serial output cut into its parts.
type result struct {
	serial   string
	release  string
	have     map[string]bool
	block    []string
	nets     []string
	usb      []string
	usbfs    int
	dump     string
	check    *hostcheck.Report
	lock     string
	lockRC   string
	after    *hostcheck.Report
	wall     time.Duration
	initWall time.Duration
}

const cmdline = "console=ttyS0,115200 quiet panic=-1"

func run(t *testing.T, f *fixture, m machine) *result {
	t.Helper()
	dir := filepath.Join(f.dir, m.name)
	tpmDir := filepath.Join(dir, "tpm")
	if err := os.MkdirAll(tpmDir, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "swtpm.sock")
	swArgs := []string{"socket", "--tpmstate", "dir=" + tpmDir, "--ctrl", "type=unixio,path=" + sock,
		"--terminate", "--flags", "not-need-init"}
	if m.tpm2 {
		swArgs = append(swArgs, "--tpm2")
	}
	sw := exec.Command("swtpm", swArgs...)
	if err := sw.Start(); err != nil {
		t.Fatal(err)
	}
	defer sw.Process.Kill()
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	disk := func(name string, size int64) string {
		p := filepath.Join(dir, name)
		fh, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		fh.Truncate(size)
		fh.Close()
		return p
	}
	args := []string{"-machine", "q35", "-accel", "tcg", "-cpu", "max", "-m", "1024", "-nographic", "-no-reboot",
		"-chardev", "socket,id=chrtpm,path=" + sock, "-tpmdev", "emulator,id=tpm0,chardev=chrtpm", "-device", "tpm-tis,tpmdev=tpm0",
		// disks: virtio, AHCI (q35's built-in controller), NVMe, USB storage
		"-drive", "file=" + disk("virtio.img", 1<<20) + ",if=virtio,format=raw",
		"-drive", "file=" + disk("ahci.img", 1<<20) + ",if=ide,format=raw",
		"-drive", "file=" + disk("nvme.img", 1<<20) + ",if=none,id=nvm,format=raw", "-device", "nvme,drive=nvm,serial=glint",
		"-drive", "file=" + disk("usb.img", 1<<20) + ",if=none,id=stick,format=raw",
		// USB: xHCI with a keyboard (HID), a stick and a CCID smart-card reader
		"-device", "qemu-xhci,id=xhci", "-device", "usb-kbd,bus=xhci.0", "-device", "usb-storage,bus=xhci.0,drive=stick",
		"-device", "usb-ccid,bus=xhci.0",
		// NICs: e1000e (the X230/T430's Intel 82579LM family driver) and virtio-net
		"-nic", "user,model=e1000e", "-nic", "user,model=virtio-net-pci",
	}
	switch m.firmware {
	case "seabios":
		args = append(args, "-kernel", f.kernel, "-initrd", f.initrd, "-append", cmdline)
	case "ovmf":
		args = append(args, "-bios", ovmfPath, "-kernel", f.kernel, "-initrd", f.initrd, "-append", cmdline)
	case "coreboot":
		rom := filepath.Join(f.root, "out/coreboot-tpm2.rom")
		if !m.tpm2 {
			rom = filepath.Join(f.root, "out/coreboot-tpm1.rom")
		}
		if _, err := os.Stat(rom); err != nil {
			t.Skipf("no coreboot ROM (make rom): %v", err)
		}
		mine := filepath.Join(dir, "flash.rom")
		if err := os.WriteFile(mine, mustRead(t, rom), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, c := range [][]string{{mine, "remove", "-n", "fallback/payload"},
			{mine, "add-payload", "-n", "fallback/payload", "-f", f.kernel, "-I", f.initrd + ".xz", "-C", cmdline}} {
			if out, err := exec.Command("cbfstool", c...).CombinedOutput(); err != nil {
				t.Fatalf("cbfstool %v: %v\n%s", c, err, out)
			}
		}
		args = append(args, "-bios", mine)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	q := exec.CommandContext(ctx, qemu, args...)
	out, err := q.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	q.Stderr = q.Stdout
	start := time.Now()
	if err := q.Start(); err != nil {
		t.Fatal(err)
	}
	var serial strings.Builder
	r := &result{have: map[string]bool{}}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		serial.WriteString(line + "\n")
		if strings.Contains(line, "KT-RELEASE") && r.initWall == 0 {
			r.initWall = time.Since(start)
		}
	}
	q.Wait()
	r.wall = time.Since(start)
	r.serial = serial.String()
	os.WriteFile(filepath.Join(dir, "serial.log"), []byte(r.serial), 0o644)
	if keep := os.Getenv("GLINT_QEMU_KEEP"); keep != "" {
		os.MkdirAll(keep, 0o755)
		os.WriteFile(filepath.Join(keep, m.name+".serial"), []byte(r.serial), 0o644)
	}
	if !strings.Contains(r.serial, "KT-DONE") {
		t.Fatalf("%s: the guest did not finish (%v):\n%s", m.name, err, tail(r.serial, 60))
	}
	parse(t, r)
	return r
}

func section(s, name string) string {
	_, rest, ok := strings.Cut(s, "KT-"+name+"-BEGIN\n")
	if !ok {
		return ""
	}
	body, _, _ := strings.Cut(rest, "KT-"+name+"-END")
	return body
}

func parse(t *testing.T, r *result) {
	t.Helper()
	for _, line := range strings.Split(r.serial, "\n") {
		// firmware and kernel output may share the line (escape codes, no newline)
		if i := strings.Index(line, "KT-"); i > 0 {
			line = line[i:]
		}
		k, v, _ := strings.Cut(line, " ")
		switch k {
		case "KT-RELEASE":
			r.release = v
		case "KT-HAVE":
			r.have[v] = true
		case "KT-BLOCK":
			r.block = append(r.block, v)
		case "KT-NET":
			r.nets = append(r.nets, v)
		case "KT-USB":
			r.usb = append(r.usb, v)
		case "KT-USBFS":
			r.usbfs++
		case "KT-LOCK-RC":
			r.lockRC = v
		}
	}
	r.dump = section(r.serial, "DUMP")
	r.lock = section(r.serial, "LOCK")
	for name, dst := range map[string]**hostcheck.Report{"CHECK": &r.check, "AFTER": &r.after} {
		body := section(r.serial, name)
		var rep hostcheck.Report
		if err := json.Unmarshal([]byte(body), &rep); err != nil {
			t.Errorf("host check %s output is not the JSON report: %v\n%s", name, err, body)
		}
		*dst = &rep
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func status(r *hostcheck.Report, id string) hostcheck.Status {
	res, _ := r.Get(id)
	return res.Status
}

func TestPayloadKernel(t *testing.T) {
	f := setup(t)
	machines := []machine{
		{name: "seabios", firmware: "seabios", tpm2: true},
		{name: "ovmf", firmware: "ovmf", tpm2: true},
		{name: "coreboot", firmware: "coreboot", tpm2: false},
	}
	for _, m := range machines {
		m := m
		t.Run(m.name, func(t *testing.T) {
			r := run(t, f, m)
			t.Logf("%s: kernel %s, /init after %v, whole run %v", m.name, r.release, r.initWall.Round(100*time.Millisecond), r.wall.Round(100*time.Millisecond))
			if !strings.HasSuffix(r.release, "-glint") {
				t.Errorf("booted kernel %q is not glint's", r.release)
			}
			wantHave := []string{"/dev/tpm0", "/dev/mem", "/dev/port", "/dev/uhid", "/dev/loop-control", "/dev/hidraw0", "/dev/rtc0", "/sys/class/dmi/id/product_name"}
			switch m.firmware {
			case "ovmf":
				wantHave = append(wantHave, "/sys/firmware/efi/efivars", "/sys/kernel/security/tpm0/binary_bios_measurements")
			case "seabios":
				wantHave = append(wantHave, "/sys/kernel/security/tpm0/binary_bios_measurements")
			case "coreboot":
				wantHave = append(wantHave, "/sys/bus/coreboot")
			}
			for _, p := range wantHave {
				if !r.have[p] {
					t.Errorf("%s missing in the guest", p)
				}
			}
			blocks := strings.Join(r.block, " ")
			for _, want := range []string{`\bvda\b`, `\bsd[a-z]\b.*\bsd[a-z]\b`, `\bnvme0n1\b`} {
				if !regexp.MustCompile(want).MatchString(blocks) {
					t.Errorf("block devices %q lack /%s/ (virtio, AHCI + USB storage, NVMe)", blocks, want)
				}
			}
			nets := strings.Join(r.nets, " ")
			if !strings.Contains(nets, "e1000e") || !strings.Contains(nets, "virtio_net") {
				t.Errorf("NICs %q: want e1000e and virtio_net bound", nets)
			}
			usb := strings.Join(r.usb, "; ")
			for _, want := range []string{"QEMU USB Keyboard", "QEMU USB HARDDRIVE", "QEMU USB CCID"} {
				if !strings.Contains(usb, want) {
					t.Errorf("USB devices %q lack %s", usb, want)
				}
			}
			if r.usbfs < 3 {
				t.Errorf("usbfs shows %d device nodes under /dev/bus/usb, want the CCID reader among them", r.usbfs)
			}
			for _, fs := range []string{"iso9660", "vfat", "ext4"} {
				if !strings.Contains(r.serial, "KT-FS "+fs) {
					t.Errorf("file system %s not built in", fs)
				}
			}
			checkPlatform(t, m, r)
		})
	}
}

// checkPlatform judges what glint's host checks said in the guest.
func checkPlatform(t *testing.T, m machine, r *result) {
	t.Helper()
	d, err := chipset.ParseDump([]byte(r.dump))
	if err != nil {
		t.Fatalf("glint host dump output: %v\n%s", err, r.dump)
	}
	st, err := chipset.Decode(d)
	if err != nil {
		t.Fatal(err)
	}
	if st.Chipset == nil || st.Chipset.Family != chipset.FamilyICH9 {
		t.Errorf("q35 not recognised as ICH9: %+v", st)
	}
	for _, want := range []struct {
		id   string
		want hostcheck.Status
	}{
		{hostcheck.IDTPM, hostcheck.Pass}, {hostcheck.IDPCRs, hostcheck.Pass}, {hostcheck.IDEventLog, hostcheck.Pass},
		{hostcheck.IDME, hostcheck.NotApplicable}, {hostcheck.IDSPILock, hostcheck.CannotTell},
	} {
		if got := status(r.check, want.id); got != want.want {
			res, _ := r.check.Get(want.id)
			t.Errorf("%s: %s (%s), want %s", want.id, got, res.Detail, want.want)
		}
	}
	// The lock request is sent for real (/dev/port, APM 0xb2); QEMU has no SPI controller to
	// lock and coreboot's q35 SMM handler finalizes nothing, so glint must say it did not take.
	if r.lockRC != "1" || !strings.Contains(r.lock, "NOT locked") {
		t.Errorf("host lock on q35: rc %s, said %q; want a refusal to call the flash locked", r.lockRC, r.lock)
	}
	if os.Getenv("GLINT_UPDATE") != "" {
		d.Source = fmt.Sprintf("recorded in QEMU 7.2 q35 (TCG), %s firmware, by kernel/kerneltest", m.firmware)
		p := filepath.Join(repoRoot(t), "internal/hostcheck/testdata", "qemu-q35-"+m.firmware+".dump")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, d.Marshal(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%s: SMRAM %+v, BIOS %+v, SPI missing: %s", m.name, st.SMRAM, st.BIOS, st.SPIMissing)
}
