package ownerconfig

import (
	"errors"
	"testing"

	"github.com/glint-boot/glint/internal/bootpolicy"
)

// The boot policy lines are part of the owner configuration, so they are
// measured into PCR 7 with it; a wrong value names its line.
func TestBootPolicyLines(t *testing.T) {
	c, err := Parse([]byte("countdown = 3\nboot.policy = restricted\niso.cmdline.remove = quiet splash\nrootfs.check = boot # at every boot\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Boot.Mode != bootpolicy.Restricted || len(c.Boot.ISORemove) != 2 || !c.Boot.RootfsCheck || c.Countdown != 3 {
		t.Fatalf("got %+v", c)
	}
	_, err = Parse([]byte("\nboot.policy = lax\n"))
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Line != 2 {
		t.Fatalf("bad mode: %v", err)
	}
	if _, err := Parse([]byte("boot.polcy = basic\n")); err == nil {
		t.Fatal("a misspelt key was accepted")
	}
}
