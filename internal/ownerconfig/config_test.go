package ownerconfig

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	c, err := Parse([]byte("# x\nprofile = uefi\ncountdown=0\nrtc = -05:30 # windows\ntotp.account = x230 of Alice\ndisk.unlock = unattended\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Profile != "uefi" || c.Countdown != 0 || c.RTCOffset != -(5*time.Hour+30*time.Minute) || c.TOTPAccount != "x230 of Alice" || c.DiskUnlock != "unattended" {
		t.Fatalf("got %+v", c)
	}
	if c.TOTPIssuer != "glint" {
		t.Fatalf("default issuer lost: %+v", c)
	}
}

func TestParseErrorsNameTheLine(t *testing.T) {
	for _, in := range []string{"\n\nbogus = 1", "\n\ncountdown = -1", "\n\nrtc = +1", "\n\nno equals sign"} {
		_, err := Parse([]byte(in))
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Line != 3 {
			t.Errorf("%q: got %v, want error on line 3", in, err)
		}
	}
	if _, err := Parse([]byte(strings.Repeat("x", maxLineLen+10))); err == nil {
		t.Error("overlong line accepted")
	}
}
