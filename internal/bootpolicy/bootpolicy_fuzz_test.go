package bootpolicy

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzSet: any key/value either is refused or leaves Settings that render
// to lines which parse back to the same Settings.
func FuzzSet(f *testing.F) {
	for _, kv := range [][2]string{
		{"boot.policy", "restricted"}, {"boot.policy", "basic"}, {"iso.cmdline.add", "console=ttyS0,115200 nomodeset"},
		{"iso.cmdline.remove", "quiet splash vga="}, {"iso.keys", "firmware"}, {"rootfs.check", "boot"},
		{"rootfs.device", "UUID=3f1c2a9e-6b1d-4c1e-9a43-2b8f3e7d1c55"}, {"rootfs.fast", "1"}, {"profile", "coreboot"},
	} {
		f.Add(kv[0], kv[1])
	}
	f.Fuzz(func(t *testing.T, k, v string) {
		var s Settings
		if err := s.Set(k, v); err != nil {
			return
		}
		for _, w := range append(append([]string{}, s.ISOAdd...), s.ISORemove...) {
			if w == "" || strings.ContainsAny(w, " \t\n\"#") {
				t.Fatalf("accepted word %q", w)
			}
		}
		var again Settings
		for _, l := range s.Lines() {
			lk, lv, _ := strings.Cut(l, " = ")
			if err := again.Set(lk, lv); err != nil {
				t.Fatalf("rendered line %q does not parse: %v", l, err)
			}
		}
		if strings.Join(again.Lines(), "\n") != strings.Join(s.Lines(), "\n") {
			t.Fatalf("round trip changed %q", s.Lines())
		}
	})
}

// FuzzSetInConfig: after an edit the configuration has exactly one line
// for the key, with the value, and every other non-empty line is kept.
func FuzzSetInConfig(f *testing.F) {
	f.Add([]byte("# glint owner configuration\nprofile = coreboot\ncountdown = 5\nboot.policy = normal\n"), "restricted")
	f.Add([]byte("boot.policy=basic\r\nboot.policy = normal # old\n"), "normal")
	f.Fuzz(func(t *testing.T, config []byte, mode string) {
		out, err := SetInConfig(config, "boot.policy", mode)
		if err != nil {
			return
		}
		n := 0
		for _, l := range strings.Split(string(out), "\n") {
			body := l
			if i := strings.IndexByte(body, '#'); i >= 0 {
				body = body[:i]
			}
			k, v, ok := strings.Cut(body, "=")
			if ok && strings.TrimSpace(k) == "boot.policy" {
				n++
				if strings.TrimSpace(v) != mode {
					t.Fatalf("value %q, want %q", v, mode)
				}
			}
		}
		if n != 1 {
			t.Fatalf("%d boot.policy lines in %q", n, out)
		}
		for _, l := range bytes.Split(config, []byte("\n")) {
			if len(bytes.TrimSpace(l)) > 0 && !bytes.Contains(l, []byte("boot.policy")) && !bytes.Contains(out, l) {
				t.Fatalf("line %q lost", l)
			}
		}
	})
}
