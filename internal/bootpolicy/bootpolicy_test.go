package bootpolicy

import (
	"errors"
	"strings"
	"testing"
)

func TestModes(t *testing.T) {
	for _, c := range []struct {
		m                                        Mode
		checks, force, unsignedISO, shell, flash bool
	}{
		{Normal, true, true, true, true, true},
		{Restricted, true, false, false, false, false},
		{Basic, false, false, true, true, true},
	} {
		got := [5]bool{c.m.TamperChecks(), c.m.AllowsForcedBoot(), c.m.AllowsUnsignedISO(), c.m.AllowsRecoveryShell(), c.m.AllowsMenuFlashing()}
		want := [5]bool{c.checks, c.force, c.unsignedISO, c.shell, c.flash}
		if got != want {
			t.Errorf("%v: got %v, want %v", c.m, got, want)
		}
		back, err := ParseMode(c.m.String())
		if err != nil || back != c.m {
			t.Errorf("%v does not round-trip", c.m)
		}
	}
	if !strings.Contains(Basic.Banner(), "UNPROTECTED") || Normal.Banner() != "" {
		t.Error("banners")
	}
}

func TestSetAndLines(t *testing.T) {
	var s Settings
	for k, v := range map[string]string{
		"boot.policy": "restricted", "iso.cmdline.add": "console=ttyS0 glint.usb", "iso.cmdline.remove": "quiet vga=",
		"iso.keys": "owner", "rootfs.check": "boot", "rootfs.device": "UUID=8d2f", "rootfs.fast": "true",
	} {
		if err := s.Set(k, v); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
	}
	var again Settings
	for _, l := range s.Lines() {
		k, v, _ := strings.Cut(l, " = ")
		if err := again.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(again.Lines(), "\n") != strings.Join(s.Lines(), "\n") || len(s.Lines()) != 7 {
		t.Fatalf("round trip: %q", s.Lines())
	}
	if err := s.Set("profile", "uefi"); !errors.Is(err, ErrNotMine) {
		t.Fatalf("foreign key: %v", err)
	}
	for k, v := range map[string]string{"boot.policy": "Restricted", "iso.cmdline.add": "a\"b", "rootfs.device": "UUID=a b", "iso.keys": "all", "rootfs.check": "yes"} {
		if err := s.Set(k, v); err == nil || errors.Is(err, ErrNotMine) {
			t.Errorf("%s = %s accepted", k, v)
		}
	}
}

func TestSetInConfig(t *testing.T) {
	in := "# owner config\ncountdown = 5\nboot.policy = normal # was\nrtc = utc\nboot.policy = basic\n"
	out, err := SetInConfig([]byte(in), "boot.policy", "restricted")
	if err != nil {
		t.Fatal(err)
	}
	want := "# owner config\ncountdown = 5\nboot.policy = restricted\nrtc = utc\n"
	if string(out) != want {
		t.Fatalf("got %q", out)
	}
	out, err = SetInConfig([]byte("countdown = 5"), "rootfs.check", "boot")
	if err != nil || string(out) != "countdown = 5\nrootfs.check = boot\n" {
		t.Fatalf("append: %q %v", out, err)
	}
	if _, err := SetInConfig(nil, "countdown", "3"); err == nil {
		t.Fatal("edited a setting that is not the boot policy's")
	}
	if _, err := SetInConfig(nil, "boot.policy", "lax"); err == nil {
		t.Fatal("bad value written")
	}
}
