package ownerconfig

import "testing"

func FuzzParse(f *testing.F) {
	f.Add([]byte("profile = coreboot\ncountdown = 5\nrtc = +01:00\n"))
	f.Add([]byte("totp.issuer = glint\ndisk.unlock = off\nboot.device = UUID=1234\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err == nil && (c.Countdown < 0 || c.Countdown > 3600) {
			t.Fatalf("accepted countdown %d", c.Countdown)
		}
	})
}
