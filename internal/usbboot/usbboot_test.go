package usbboot

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/bootpolicy"
	"github.com/glint-boot/glint/internal/gpgtest"
	"github.com/glint-boot/glint/internal/isoboot"
	"github.com/glint-boot/glint/internal/isoverify"
)

// stick is a directory standing in for a mounted USB file system: the
// mounting itself is the kernel's and is exercised on the emulated laptop
// (e2e/media_test.go); here the steps after it run for real (xorriso-made
// image, gpg-made signatures).
type stick struct {
	dir     string
	log     *[]string
	mounted bool
}

func (s *stick) MountAll() ([]Mount, error) {
	*s.log = append(*s.log, "mount")
	s.mounted = true
	return []Mount{{Device: "/dev/sdb1", Dir: s.dir}}, nil
}
func (s *stick) UnmountAll() error { *s.log = append(*s.log, "unmount"); s.mounted = false; return nil }

type pcr4 struct {
	log  *[]string
	fail bool
}

func (p *pcr4) ExtendBootMode(ev string) error {
	if p.fail {
		return errors.New("TPM gone")
	}
	*p.log = append(*p.log, "extend "+ev)
	return nil
}

type owner struct {
	confirm  bool
	asked    bool
	lines    []string
	progress int
}

func (o *owner) ChooseImage(c []isoboot.Candidate) (int, bool)            { return 0, true }
func (o *owner) ChooseEntry(isoboot.Candidate, *isoboot.Menu) (int, bool) { return 0, true }
func (o *owner) ConfirmUnsigned(isoboot.Candidate, error) bool {
	o.asked = true
	return o.confirm
}
func (o *owner) Progress(done, total int64)  { o.progress++ }
func (o *owner) Say(format string, a ...any) { o.lines = append(o.lines, fmt.Sprintf(format, a...)) }

var kernel = bytes.Repeat([]byte("vmlinuz!"), 50000)

func newStick(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("xorriso"); err != nil {
		t.Skip("xorriso not installed (scripts/install-deps.sh installs it)")
	}
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "isolinux"), 0o755)
	os.MkdirAll(filepath.Join(src, "live"), 0o755)
	os.WriteFile(filepath.Join(src, "isolinux/isolinux.cfg"), []byte("label live\n kernel /live/vmlinuz\n append initrd=/live/initrd.img boot=live quiet\n"), 0o644)
	os.WriteFile(filepath.Join(src, "live/vmlinuz"), kernel, 0o644)
	os.WriteFile(filepath.Join(src, "live/initrd.img"), []byte("initrd"), 0o644)
	dir := t.TempDir()
	if b, err := exec.Command("xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-V", "LIVE", "-o", filepath.Join(dir, "live.iso"), src).CombinedOutput(); err != nil {
		t.Fatalf("xorriso: %v\n%s", err, b)
	}
	return dir
}

func TestRun(t *testing.T) {
	distro := gpgtest.NewKey(t, "Distro", "ed25519")
	dk, err := isoverify.ParseDistributionKeys(distro.Public, "test")
	if err != nil {
		t.Fatal(err)
	}
	kr := isoverify.NewKeyring(nil, dk)
	signed := func(t *testing.T) string {
		dir := newStick(t)
		distro.DetachSign(t, filepath.Join(dir, "live.iso"), filepath.Join(dir, "live.iso.sig"), false)
		return dir
	}
	cases := []struct {
		name    string
		dir     func(t *testing.T) string
		mode    bootpolicy.Mode
		confirm bool
		wantErr error
		asked   bool
		verify  bool
	}{
		{"normal, signed", signed, bootpolicy.Normal, false, nil, false, true},
		{"restricted, signed", signed, bootpolicy.Restricted, false, nil, false, true},
		{"restricted, unsigned: refused without asking", newStick, bootpolicy.Restricted, true, ErrRefused, false, false},
		{"normal, unsigned, owner confirms", newStick, bootpolicy.Normal, true, nil, true, false},
		{"normal, unsigned, owner declines", newStick, bootpolicy.Normal, false, ErrCancelled, true, false},
		{"basic, unsigned: no checks", newStick, bootpolicy.Basic, false, nil, false, false},
		{"normal, tampered: refused without asking", func(t *testing.T) string {
			dir := signed(t)
			p := filepath.Join(dir, "live.iso")
			b, _ := os.ReadFile(p)
			b[len(b)-5000] ^= 1
			os.WriteFile(p, b, 0o644)
			return dir
		}, bootpolicy.Normal, true, ErrRefused, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var log []string
			st := &stick{dir: c.dir(t), log: &log}
			ui := &owner{confirm: c.confirm}
			res, err := Run(st, &pcr4{log: &log}, ui, Policy{Settings: bootpolicy.Settings{Mode: c.mode, ISORemove: []string{"quiet"}}, Keys: kr})
			if !errors.Is(err, c.wantErr) || (c.wantErr == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, c.wantErr)
			}
			if ui.asked != c.asked {
				t.Fatalf("asked for confirmation: %v, want %v", ui.asked, c.asked)
			}
			if len(log) < 1 || log[0] != "extend usb" || st.mounted {
				t.Fatalf("PCR 4 not extended before the stick was mounted, or left mounted: %v", log)
			}
			if c.wantErr == ErrRefused && !strings.Contains(err.Error(), "live.iso") {
				t.Fatalf("refusal does not name the image: %v", err)
			}
			if err != nil {
				return
			}
			if !bytes.Equal(res.Boot.Image().Kernel.Data, kernel) || res.Boot.Cmdline != "boot=live" || (res.Verified != nil) != c.verify {
				t.Fatalf("boot %q verified %v", res.Boot.Cmdline, res.Verified != nil)
			}
		})
	}
	t.Run("no PCR 4, no USB", func(t *testing.T) {
		var log []string
		if _, err := Run(&stick{dir: t.TempDir(), log: &log}, &pcr4{log: &log, fail: true}, &owner{}, Policy{Keys: kr}); err == nil || len(log) != 0 {
			t.Fatalf("got %v, log %v", err, log)
		}
	})
}

func TestKeyringFollowsPolicy(t *testing.T) {
	extra := gpgtest.NewKey(t, "Extra Distro", "ed25519")
	for which, want := range map[bootpolicy.ISOKeys]int{bootpolicy.OwnerKeys: 0, bootpolicy.FirmwareKeys: 1, bootpolicy.BuiltinKeys: 11} {
		kr, err := Keyring(nil, extra.Public, which)
		if err != nil || len(kr.Keys()) != want {
			t.Errorf("%v: %d keys, want %d (%v)", which, len(kr.Keys()), want, err)
		}
	}
}

// Devices picks partitions on a USB bus from a sysfs tree shaped like the
// kernel's (symlinks from class/block into devices/).
func TestDevicesFromSysfs(t *testing.T) {
	sys := t.TempDir()
	class := filepath.Join(sys, "class", "block")
	os.MkdirAll(class, 0o755)
	devs := map[string]string{
		"sdb":  "devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb",
		"sdb1": "devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb/sdb1",
		"sdc":  "devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host7/target7:0:0/7:0:0:0/block/sdc",
		"vda":  "devices/pci0000:00/0000:00:03.0/virtio0/block/vda",
		"vda1": "devices/pci0000:00/0000:00:03.0/virtio0/block/vda/vda1",
		"sda":  "devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda",
	}
	for n, p := range devs {
		os.MkdirAll(filepath.Join(sys, p), 0o755)
		if n == "sdb1" || n == "vda1" { // partitions carry a "partition" file
			os.WriteFile(filepath.Join(sys, p, "partition"), []byte("1\n"), 0o644)
		}
		os.Symlink(filepath.Join("..", "..", p), filepath.Join(class, n))
	}
	got, err := (&SysStorage{SysBlock: class}).Devices()
	if err != nil || strings.Join(got, " ") != "sdb1 sdc" {
		t.Fatalf("got %v %v, want the USB partition and the unpartitioned USB disk", got, err)
	}
}
