//go:build e2e

package e2e

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/glint-boot/glint/internal/tpm"
	"github.com/glint-boot/glint/internal/tpm/swtpmtest"
)

// Firmware is what the emulated laptop runs at power-on.
type Firmware string

const (
	CorebootTPM2 Firmware = "coreboot-tpm2" // out/coreboot-tpm2.rom, swtpm TPM 2.0
	CorebootTPM1 Firmware = "coreboot-tpm1" // out/coreboot-tpm1.rom, swtpm TPM 1.2
	OVMF         Firmware = "ovmf"          // UEFI (OVMF) + direct kernel boot, TPM 2.0
)

// TPM2 reports whether the machine has a TPM 2.0 (else 1.2).
func (f Firmware) TPM2() bool { return f != CorebootTPM1 }

// Debian's OVMF (package ovmf): Secure Boot capable code, and variable stores without and
// with keys enrolled (Microsoft's, as shipped laptops have).
const (
	ovmfCode      = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
	ovmfVarsEmpty = "/usr/share/OVMF/OVMF_VARS_4M.fd"
	ovmfVarsMS    = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"
)

// kernelCmdline is what coreboot's Linux payload passes (scripts/build-coreboot.sh); OVMF's
// direct kernel boot gets the same. The last console= is /dev/console: the serial line.
const kernelCmdline = "console=tty0 console=ttyS0,115200 quiet panic=-1"

// Machine is one emulated laptop. Everything that survives power-off lives in Dir: the TPM's
// NVRAM (swtpm state, like the chip on a real board), the flash image, /boot (kept as a host
// directory, see disk.go), the owner's key stick and the transcripts.
type Machine struct {
	Name     string
	Firmware Firmware
	Top      string // repository root
	Dir      string // out/e2e/<name>
	TPMDir   string
	BootDir  string // host mirror of the guest's /boot partition
	ROM      string // this machine's flash image (coreboot: a copy with the owner key in CBFS)
	Stick    string // the owner's key stick image; "" = unplugged
	USB      string // a USB stick image on QEMU's xHCI as usb-storage; "" = none
	Disk2    string // a second virtio disk (a root file system); "" = none
	// Card is the unix socket of an OpenPGP card simulator speaking QEMU's VSCard protocol
	// (cardsim.ServeVSCard): the guest sees a USB CCID reader (usb-ccid) holding the card.
	Card string
	// FlashDisk gives the guest the flash chip as a virtio disk (serial glint-flash, the ROM
	// file itself): what glint writes there is the next power-on's firmware (flash.DiskChip).
	FlashDisk bool
	Payload   string // OVMF: glint's initramfs with the owner key in /etc/glint (no CBFS there)
	Owner     *Owner

	// Per-boot settings, changed by scenarios and restored by them.
	RTC string // QEMU -rtc base= ("" = host UTC, QEMU's default)
	// QEMUArgs are more QEMU arguments (a network card for the attestation rows).
	QEMUArgs []string
	OVMFVars string // OVMF: this machine's UEFI variable store (pflash, persistent)

	mu    sync.Mutex
	Boots []BootRecord
}

// BootRecord is one power-on, for the summary table.
type BootRecord struct {
	Scenario string
	Took     time.Duration // power-on to QEMU exit
	ToInit   time.Duration // power-on to glint's first line (0 = not seen)
	ToKexec  time.Duration // power-on to "glint: kexec" (0 = not seen)
	ToOS     time.Duration // power-on to the OS marker after kexec (0 = not seen)
}

// Run is a powered-on machine.
type Run struct {
	*Console
	m        *Machine
	scenario string
	qemu     *exec.Cmd
	swtpm    *exec.Cmd
	exited   chan error
	start    time.Time
	monitor  string
	ended    bool
}

const (
	markerInit  = `glint: `
	markerKexec = `glint: kexec `
	markerOS    = `GLINT-E2E-OS-UP`
)

// NewMachine prepares a fresh machine (state in out/e2e/<name>): TPM manufactured (EK created, no owner), owner key,
// key stick, flash image with the owner's public key, and a signed-nothing /boot.
func NewMachine(t *testing.T, fw Firmware, name string) *Machine {
	t.Helper()
	return newMachineIn(t, fw, name, filepath.Join(repoRoot(t), "out", "e2e", name))
}

// newMachineIn is NewMachine with the machine's state in dir.
func newMachineIn(t *testing.T, fw Firmware, name, dir string) *Machine {
	t.Helper()
	top := repoRoot(t)
	m := &Machine{Name: name, Firmware: fw, Top: top, Dir: dir}
	m.TPMDir = filepath.Join(m.Dir, "tpm")
	m.BootDir = filepath.Join(m.Dir, "boot")
	if err := os.RemoveAll(m.Dir); err != nil {
		t.Fatal(err)
	}
	must(t, os.MkdirAll(m.TPMDir, 0o700))
	must(t, m.manufactureTPM())
	m.Owner = newOwner(t, filepath.Join(m.Dir, "owner"))
	m.Stick = filepath.Join(m.Dir, "stick.img")
	must(t, buildKeyStick(m.Stick, m.Owner))
	must(t, populateBoot(t, top, m.BootDir))
	switch fw {
	case CorebootTPM2, CorebootTPM1:
		m.ROM = filepath.Join(m.Dir, "flash.rom")
		must(t, copyFile(filepath.Join(top, "out", string(fw)+".rom"), m.ROM))
		if os.Getenv("GLINT_E2E_OWNER_KEY") == "payload" {
			// debugging aid only: the owner key also in the payload's /etc/glint, for a glint
			// that cannot read CBFS yet. The bench's default is the real design (CBFS only).
			p := filepath.Join(m.Dir, "payload.cpio.xz")
			must(t, ownerPayload(top, p, m.Owner.PublicFile))
			must(t, run("cbfstool", m.ROM, "remove", "-n", "fallback/payload"))
			must(t, run("cbfstool", m.ROM, "add-payload", "-n", "fallback/payload",
				"-f", payloadKernel(top), "-I", p, "-C", kernelCmdline))
		}
		must(t, cbfsAdd(m.ROM, m.Owner.PublicFile, "glint/owner.asc"))
	case OVMF:
		// pflash code + a variable store of its own, as a real UEFI laptop has; the code is the
		// Secure Boot capable build, so enrolling keys (row 8) changes only the variables.
		m.ROM = ovmfCode
		m.OVMFVars = filepath.Join(m.Dir, "OVMF_VARS.fd")
		must(t, copyFile(ovmfVarsEmpty, m.OVMFVars))
		m.Payload = filepath.Join(m.Dir, "payload.cpio.xz")
		must(t, ownerPayload(top, m.Payload, m.Owner.PublicFile))
	}
	return m
}

// manufactureTPM gives the machine a TPM as it leaves the factory (TPM 2.0: endorsement key
// created, PCR banks SHA-1 and SHA-256 active) or, for TPM 1.2, as Heads-class firmware
// leaves it after the owner's first reset: owned with the TCG well-known owner and SRK
// secrets, which glint's TPM 1.2 layer expects (internal/tpm/tpm12.go). The unit tests' TPM
// helper makes it (swtpmtest.Manufacture).
func (m *Machine) manufactureTPM() error {
	v := tpm.Version12
	if m.Firmware.TPM2() {
		v = tpm.Version20
	}
	return swtpmtest.Manufacture(v, m.TPMDir)
}

// Boot powers the machine on. The TPM is a fresh swtpm process on the machine's state
// directory (a real TPM keeps NVRAM and loses PCRs at power-off; so does this), /boot is
// written to the disk image from BootDir, and the serial line is attached to a Console
// whose transcript goes to out/e2e/<machine>/<scenario>.log.
func (m *Machine) Boot(t *testing.T, scenario string) *Run {
	t.Helper()
	disk := filepath.Join(m.Dir, "disk.img")
	must(t, buildBootDisk(disk, m.BootDir))

	sock := filepath.Join(m.Dir, "swtpm.sock")
	os.Remove(sock)
	targs := []string{"socket", "--tpmstate", "dir=" + m.TPMDir, "--ctrl", "type=unixio,path=" + sock,
		"--log", "file=" + filepath.Join(m.Dir, "swtpm.log") + ",level=1", "--terminate"}
	if m.Firmware.TPM2() {
		targs = append(targs, "--tpm2")
	}
	sw := exec.Command("swtpm", targs...)
	sw.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	must(t, sw.Start())
	if err := waitFor(sock, 5*time.Second); err != nil {
		sw.Process.Kill()
		t.Fatalf("swtpm did not start: %v", err)
	}

	mon := filepath.Join(m.Dir, "monitor.sock")
	os.Remove(mon)
	qargs := m.qemuArgs(disk, sock, mon)
	q := exec.Command("qemu-system-x86_64", qargs...)
	q.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := q.StdinPipe()
	must(t, err)
	stdout, err := q.StdoutPipe()
	must(t, err)
	q.Stderr = q.Stdout // QEMU's own complaints land in the transcript too
	logf, err := os.OpenFile(filepath.Join(m.Dir, scenario+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	must(t, err)
	fmt.Fprintf(logf, "\n===== power-on %s (%s) =====\n", time.Now().UTC().Format(time.RFC3339), strings.Join(qargs, " "))
	r := &Run{m: m, scenario: scenario, qemu: q, swtpm: sw, exited: make(chan error, 1), monitor: mon}
	r.start = time.Now()
	if err := q.Start(); err != nil {
		sw.Process.Kill()
		t.Fatalf("start qemu: %v", err)
	}
	r.Console = newConsole(stdout, stdin, logf, markerInit, markerKexec, markerOS)
	r.Console.started = r.start
	go func() { r.exited <- q.Wait(); logf.Close() }()
	t.Cleanup(func() {
		// a failed test leaves the machine running: stop it, and still count the boot
		if !r.ended {
			r.kill()
			<-r.exited
			r.finish(t)
		}
	})
	return r
}

// qemuArgs is the emulated laptop's QEMU command line: the machine, its TPM (swtpm on sock), its
// disks and devices, the monitor socket mon, the serial line on stdio, the firmware.
func (m *Machine) qemuArgs(disk, sock, mon string) []string {
	qargs := []string{"-machine", "q35", "-accel", accel(), "-cpu", "max", "-m", "1024", "-smp", "1",
		"-display", "none", "-vga", "std", "-no-reboot",
		"-serial", "stdio", "-monitor", "unix:" + mon + ",server=on,wait=off",
		"-chardev", "socket,id=chrtpm,path=" + sock,
		"-tpmdev", "emulator,id=tpm0,chardev=chrtpm", "-device", "tpm-tis,tpmdev=tpm0",
		"-drive", "file=" + disk + ",if=virtio,format=raw",
	}
	if m.Stick != "" {
		qargs = append(qargs, "-drive", "file="+m.Stick+",if=virtio,format=raw")
	}
	if m.USB != "" {
		qargs = append(qargs, "-device", "qemu-xhci,id=xhci", "-drive", "if=none,id=usbstick,format=raw,file="+m.USB,
			"-device", "usb-storage,bus=xhci.0,drive=usbstick")
	}
	if m.Disk2 != "" {
		qargs = append(qargs, "-drive", "file="+m.Disk2+",if=virtio,format=raw")
	}
	if m.Card != "" {
		if m.USB == "" {
			qargs = append(qargs, "-device", "qemu-xhci,id=xhci")
		}
		qargs = append(qargs, "-device", "usb-ccid,id=ccid,bus=xhci.0", "-chardev", "socket,id=card,path="+m.Card,
			"-device", "ccid-card-passthru,chardev=card,bus=ccid.0")
	}
	if m.FlashDisk && m.Firmware != OVMF {
		qargs = append(qargs, "-drive", "file="+m.ROM+",if=none,id=chip,format=raw",
			"-device", "virtio-blk-pci,drive=chip,serial=glint-flash")
	}
	if m.RTC != "" {
		qargs = append(qargs, "-rtc", "base="+m.RTC)
	}
	qargs = append(qargs, m.QEMUArgs...)
	switch m.Firmware {
	case OVMF:
		// the Secure Boot build keeps its variables in SMM-protected flash
		qargs[1] = "q35,smm=on"
		qargs = append(qargs, "-global", "driver=cfi.pflash01,property=secure,value=on",
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+m.ROM,
			"-drive", "if=pflash,format=raw,unit=1,file="+m.OVMFVars)
		qargs = append(qargs, "-kernel", payloadKernel(m.Top),
			"-initrd", m.Payload, "-append", kernelCmdline)
	default:
		qargs = append(qargs, "-bios", m.ROM)
	}
	return qargs
}

// accel is TCG unless GLINT_QEMU_ACCEL names another (KVM does not work on the CI machines,
// see docs: emulation facts).
func accel() string {
	if a := os.Getenv("GLINT_QEMU_ACCEL"); a != "" {
		return a
	}
	return "tcg"
}

// Wait waits for the machine to stop by itself (power-off, or reboot: -no-reboot turns a
// reboot into an exit), at most timeout. Then /boot is read back from the disk into BootDir.
func (r *Run) Wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-r.exited:
	case <-time.After(timeout):
		r.kill()
		r.finish(t)
		t.Fatalf("machine did not stop within %s; last output:\n%s", timeout, r.Console.tailLocked(1500))
	}
	r.finish(t)
}

func (r *Run) finish(t *testing.T) {
	if r.ended {
		return
	}
	r.ended = true
	took := time.Since(r.start)
	done := make(chan struct{})
	go func() { r.swtpm.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-r.swtpm.Process.Pid, syscall.SIGKILL)
		<-done
	}
	rec := BootRecord{Scenario: r.scenario, Took: took}
	rec.ToInit, _ = r.Console.FirstSeen(markerInit)
	rec.ToKexec, _ = r.Console.FirstSeen(markerKexec)
	rec.ToOS, _ = r.Console.FirstSeen(markerOS)
	r.m.mu.Lock()
	r.m.Boots = append(r.m.Boots, rec)
	r.m.mu.Unlock()
	recordBoot(r.m.Name, rec)
	if err := readBackBoot(filepath.Join(r.m.Dir, "disk.img"), r.m.BootDir); err != nil {
		t.Errorf("read /boot back from the disk: %v", err)
	}
}

// kill ends a run that is still going (test failure or timeout).
func (r *Run) kill() {
	if r.qemu.Process != nil {
		syscall.Kill(-r.qemu.Process.Pid, syscall.SIGKILL)
	}
	if r.swtpm.Process != nil {
		syscall.Kill(-r.swtpm.Process.Pid, syscall.SIGKILL)
	}
}

// Stop pulls the plug (for runs that end in a state with nothing more to test) and then
// does what Wait does.
func (r *Run) Stop(t *testing.T) {
	t.Helper()
	r.monitorCmd("quit")
	select {
	case <-r.exited:
	case <-time.After(10 * time.Second):
		r.kill()
		<-r.exited
	}
	r.finish(t)
}

// monitorCmd sends one command to the QEMU monitor and returns its reply.
func (r *Run) monitorCmd(cmd string) (string, error) {
	c, err := net.DialTimeout("unix", r.monitor, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 64<<10)
	var got strings.Builder
	readUntilPrompt := func() error {
		for !strings.HasSuffix(got.String(), "(qemu) ") {
			n, err := c.Read(buf)
			got.Write(buf[:n])
			if err != nil {
				return err
			}
		}
		return nil
	}
	if err := readUntilPrompt(); err != nil {
		return got.String(), err
	}
	got.Reset()
	if _, err := c.Write([]byte(cmd + "\n")); err != nil {
		return "", err
	}
	if cmd == "quit" {
		return "", nil
	}
	err = readUntilPrompt()
	return got.String(), err
}

func waitFor(path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New(path + " did not appear")
}

func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	must(t, err)
	return filepath.Dir(wd) // tests run in e2e/
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o644)
}

// clearTPM2 runs a real TPM2_Clear (platform authorisation, empty before firmware sets it)
// on the machine's TPM state while the machine is off: swtpm on TCP, tpm2-tools, orderly
// shutdown so the state is saved.
func clearTPM2(m *Machine) error {
	port, err := swtpmtest.FreePortPair()
	if err != nil {
		return err
	}
	sw := exec.Command("swtpm", "socket", "--tpm2", "--tpmstate", "dir="+m.TPMDir,
		"--server", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", port),
		"--ctrl", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", port+1),
		"--flags", "not-need-init,startup-clear")
	if err := sw.Start(); err != nil {
		return err
	}
	defer func() { sw.Process.Kill(); sw.Wait() }()
	tcti := fmt.Sprintf("swtpm:host=127.0.0.1,port=%d", port)
	var last error
	for i := 0; i < 50; i++ {
		cmd := exec.Command("tpm2_clear", "-c", "p")
		cmd.Env = append(os.Environ(), "TPM2TOOLS_TCTI="+tcti)
		out, err := cmd.CombinedOutput()
		if err == nil {
			last = nil
			break
		}
		last = fmt.Errorf("tpm2_clear: %v: %s", err, out)
		time.Sleep(100 * time.Millisecond)
	}
	if last != nil {
		return last
	}
	cmd := exec.Command("tpm2_shutdown")
	cmd.Env = append(os.Environ(), "TPM2TOOLS_TCTI="+tcti)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("tpm2_shutdown: %v: %s", err, out)
	}
	if out, err := exec.Command("swtpm_ioctl", "--tcp", fmt.Sprintf("127.0.0.1:%d", port+1), "-s").CombinedOutput(); err != nil {
		return fmt.Errorf("swtpm_ioctl -s: %v: %s", err, out)
	}
	return nil
}
