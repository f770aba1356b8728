package boot

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/glint-boot/glint/internal/ownerconfig"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/rom"
	"github.com/glint-boot/glint/internal/safefile"
)

// InitOptions are what main passes to the PID-1 flow.
type InitOptions struct {
	// BuildTime is when this binary was built (a clock before it is wrong).
	BuildTime time.Time
	// TPM overrides the TPM device ("" tries /dev/tpmrm0 then /dev/tpm0).
	TPM string
	// RunCommand runs glint CLI verbs in the recovery shell.
	RunCommand RunCommandFunc
}

// Init is glint as /init: it sets up the system, then runs the boot flow
// forever. It returns only if the console is gone and power-off failed.
func Init(opts InitOptions) (err error) {
	started := time.Now()
	// PID 1 must never die: a bug that panics is shown, and the owner gets
	// a minimal menu to power off or reboot instead of a kernel panic.
	defer func() {
		if r := recover(); r != nil {
			err = lastResort(r)
		}
	}()
	if con, cerr := openConsole(); cerr == nil {
		defer con.Close()
	}
	mountPseudoFS(&Journal{})
	// Only emergencies from the kernel on the console: probing disks for
	// /boot makes the ext4/vfat drivers complain about every partition
	// that is not theirs, and that would bury the TOTP code and the menu.
	if err := os.WriteFile("/proc/sys/kernel/printk", []byte("1 4 1 7"), 0o644); err != nil {
		fmt.Fprintf(os.Stdout, "glint: kernel console level: %v\n", err)
	}
	// Show the flow on the serial console and the screen at once: a laptop
	// owner looks at the screen, a server owner (and the test bench) at the
	// serial line. /dev/console is the kernel's last console= (serial here);
	// tty1 is the VGA/framebuffer console.
	ins, out, ttys := []io.Reader{os.Stdin}, io.Writer(os.Stdout), []*os.File{os.Stdin}
	if vga, err := os.OpenFile("/dev/tty1", os.O_RDWR, 0); err == nil && !sameFile(vga, os.Stdout) {
		ins = append(ins, vga)
		out = io.MultiWriter(os.Stdout, vga)
		ttys = append(ttys, vga)
	}
	console := NewMultiConsole(ins, out)
	console.Echo = ttyEcho(ttys...)
	j := NewJournal(out, nil)
	j.Logf("glint starting as PID %d", os.Getpid())
	if err := os.MkdirAll("/run/glint", 0o700); err != nil {
		j.Logf("mkdir /run/glint: %v", err)
	}
	modules := loadModules(j)

	fw := &linuxFirmware{}
	files, err := fw.OwnerFiles()
	if err != nil {
		// Normal on UEFI machines (no CBFS); the journal keeps why.
		j.Debugf("owner files from the firmware image: %v", err)
	}
	if len(files) == 0 {
		files = payloadOwnerFiles(j)
	}
	cfg := ownerconfig.Default()
	if raw, ok := files[rom.OwnerConfigFile]; ok {
		if c, err := ownerconfig.Parse(raw); err != nil {
			console.Banner(red, "OWNER CONFIGURATION BROKEN: using defaults")
			console.Printf("%v\n", err)
		} else {
			cfg = c
		}
	}
	profile := pcr.Detect()
	if cfg.Profile != "auto" {
		if p, err := pcr.ByName(cfg.Profile); err == nil {
			profile = p
		}
	}
	bootDev, bootDir := "", ""
	for try := 0; try < 20 && bootDir == ""; try++ {
		bootDev, bootDir = findBoot(j, cfg.BootDevice)
		if bootDir == "" {
			time.Sleep(250 * time.Millisecond) // disks may still be probing
		}
	}
	f := &Flow{
		Con: console, J: j,
		Machine:  &linuxMachine{bootDev: bootDev, bootDir: bootDir},
		TPM:      &tpmDevice{spec: opts.TPM},
		Firmware: fw,
		BootDir:  bootDir, OwnerFiles: files, Config: cfg, Profile: profile, Modules: modules,
		BuildTime: opts.BuildTime, Started: started, RunCommand: opts.RunCommand,
	}
	err = f.Run()
	for {
		if errors.Is(err, ErrNoInput) {
			j.Logf("console input closed; powering off")
			f.shutdownTPM()
			return powerOff()
		}
		j.Logf("boot flow: %v; back to the menu", err)
		time.Sleep(time.Second)
		err = f.Menu()
	}
}

// payloadOwnerFiles reads /etc/glint/* from the initramfs (the payload is
// measured by the firmware as a whole, so these are covered too).
func payloadOwnerFiles(j *Journal) map[string][]byte {
	out := map[string][]byte{}
	ents, err := os.ReadDir("/etc/glint")
	if err != nil {
		return out
	}
	names := []string{}
	for _, e := range ents {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := safefile.ReadCapped(filepath.Join("/etc/glint", n), maxOwnerFile)
		if err != nil {
			j.Logf("owner file %s: %v", n, err)
			continue
		}
		out[n] = b
	}
	return out
}

// sameFile reports whether two open files are the same device.
func sameFile(a, b *os.File) bool {
	sa, err1 := a.Stat()
	sb, err2 := b.Stat()
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// lastResort runs after a panic in the flow: it says so and offers the only
// safe choices left, without touching the TPM or /boot again.
func lastResort(r any) error {
	fmt.Fprintf(os.Stdout, "\nglint: INTERNAL ERROR: %v\nglint: nothing was booted. This is a bug in glint; please report it.\n", r)
	c := NewConsole(os.Stdin, os.Stdout)
	for {
		a, err := c.Prompt("glint (safe mode): p) power off  b) reboot > ")
		if err != nil {
			return powerOff()
		}
		switch strings.TrimSpace(a) {
		case "p":
			return powerOff()
		case "b":
			return reboot()
		}
	}
}
