package settings

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

const pin = "sha256:4f0c0b5e8e1f1c2d3a4b5c6d7e8f90112233445566778899aabbccddeeff0011"

func TestSet(t *testing.T) {
	var s Settings
	if s.Enabled() {
		t.Fatal("no server named, yet enabled")
	}
	for _, kv := range [][2]string{
		{"attest.server", "https://attest.example:8443/"},
		{"attest.pin", pin},
		{"attest.network", "static 10.0.2.15/24 gw 10.0.2.2 dns 10.0.2.3"},
		{"attest.interface", "eth1"},
	} {
		if err := s.Set(kv[0], kv[1]); err != nil {
			t.Fatalf("%s = %s: %v", kv[0], kv[1], err)
		}
	}
	// The server's URL labels the attestation key: the trailing slash is
	// dropped as glint attest enroll drops it, so both derive one key.
	if !s.Enabled() || s.Server != "https://attest.example:8443" {
		t.Fatalf("server %q", s.Server)
	}
	cfg, err := s.NetConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Interface != "eth1" || cfg.Static == nil || cfg.Static.Addr != netip.MustParsePrefix("10.0.2.15/24") ||
		cfg.Static.Gateway != netip.MustParseAddr("10.0.2.2") || len(cfg.Static.DNS) != 1 {
		t.Fatalf("net config %+v %+v", cfg, cfg.Static)
	}
	if err := s.Set("attest.network", "dhcp"); err != nil {
		t.Fatal(err)
	}
	if cfg, _ := s.NetConfig(); cfg.Static != nil {
		t.Fatal("dhcp gave a static configuration")
	}
}

func TestSetRefuses(t *testing.T) {
	for _, kv := range [][3]string{
		{"attest.server", "http://attest.example", "https://"},  // no TLS
		{"attest.server", "https://", "https://"},               // no host
		{"attest.server", "https://a.example/?x=1", "https://"}, // a query
		{"attest.pin", "sha256:abcd", "64 hex digits"},          // short
		{"attest.pin", strings.Replace(pin, "sha256", "md5", 1), "64 hex digits"},
		{"attest.network", "static 10.0.2.15", "prefix"}, // no prefix length
		{"attest.network", "bootp", "want dhcp or static"},
	} {
		var s Settings
		err := s.Set(kv[0], kv[1])
		if err == nil || !strings.Contains(err.Error(), kv[2]) {
			t.Errorf("%s = %s: %v, want an error naming %q", kv[0], kv[1], err, kv[2])
		}
		if s != (Settings{}) {
			t.Errorf("%s = %s: refused, yet kept: %+v", kv[0], kv[1], s)
		}
	}
	var s Settings
	if err := s.Set("boot.policy", "normal"); !errors.Is(err, ErrNotMine) {
		t.Fatalf("another package's key: %v", err)
	}
}
