package ownerconfig

import (
	"testing"

	"github.com/glint-boot/glint/internal/bootpolicy"
)

// FuzzParseBootPolicy runs whole configurations with boot policy lines:
// whatever is accepted is a mode the boot flow knows.
func FuzzParseBootPolicy(f *testing.F) {
	f.Add([]byte("profile = coreboot\nboot.policy = restricted\niso.cmdline.add = console=ttyS0\nrootfs.check = boot\nrootfs.device = UUID=1234\n"))
	f.Add([]byte("boot.policy = basic # unprotected\niso.keys = owner\niso.cmdline.remove = quiet splash vga=\nrootfs.fast = true\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err != nil {
			return
		}
		switch c.Boot.Mode {
		case bootpolicy.Normal, bootpolicy.Restricted, bootpolicy.Basic:
		default:
			t.Fatalf("accepted mode %v", c.Boot.Mode)
		}
	})
}
