package otp

import "testing"

func FuzzParseUTCOffset(f *testing.F) {
	for _, s := range []string{"+02:00", "-05:30", "+0545", "+2", "UTC", "Z", "-14:00", "+12:45"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseUTCOffset(s)
		if err != nil {
			return
		}
		if d > MaxUTCOffset || d < -MaxUTCOffset {
			t.Fatalf("%q gave %v, outside +-14h", s, d)
		}
		back, err := ParseUTCOffset(FormatUTCOffset(d))
		if err != nil || back != d {
			t.Fatalf("%q -> %v -> %q -> %v, %v", s, d, FormatUTCOffset(d), back, err)
		}
	})
}
