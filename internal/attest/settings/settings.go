// Package settings holds the attestation lines of the owner configuration
// (package ownerconfig reads the file; these lines are the ones that name
// an attestation server and how to reach it). It is small and depends on
// nothing heavy, because the owner configuration is read early in the boot
// flow by packages far below the attestation client.
package settings

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/glint-boot/glint/internal/netconf"
)

// Settings are the attestation lines of the owner configuration (package
// ownerconfig: CBFS glint/config, measured into PCR 7, so a changed server
// or pin changes what the TPM releases):
//
//	attest.server    = https://attest.example:8443   # report before kexec
//	attest.pin       = sha256:4f0c…                   # the server's key (glint attest serve --tls-auto)
//	attest.network   = dhcp                           # or: static 10.0.2.15/24 gw 10.0.2.2 [dns 10.0.2.3]
//	attest.interface = eth0                           # default: the first with a link
type Settings struct {
	Server    string
	Pin       string
	Network   string // "dhcp" or "static ..."
	Interface string
}

// ErrNotMine says a key is not an attestation setting.
var ErrNotMine = errors.New("not an attestation setting")

// Set applies one key = value line.
func (s *Settings) Set(key, value string) error {
	switch key {
	case "attest.server":
		u, err := url.Parse(value)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("attest.server %q: want https://HOST[:PORT]", value)
		}
		s.Server = strings.TrimRight(value, "/")
	case "attest.pin":
		if _, err := ParsePin(value); err != nil {
			return err
		}
		s.Pin = value
	case "attest.network":
		if value != "dhcp" {
			rest, ok := strings.CutPrefix(value, "static ")
			if !ok {
				return fmt.Errorf("attest.network %q: want dhcp or static ADDR/PREFIX [gw GATEWAY] [dns SERVER]", value)
			}
			if _, err := netconf.ParseStatic(rest); err != nil {
				return err
			}
		}
		s.Network = value
	case "attest.interface":
		s.Interface = value
	default:
		return ErrNotMine
	}
	return nil
}

// Enabled reports whether a server is configured.
func (s *Settings) Enabled() bool { return s.Server != "" }

// NetConfig is the network bring-up these settings ask for.
func (s *Settings) NetConfig() (netconf.Config, error) {
	cfg := netconf.Config{Interface: s.Interface, ResolvConf: "/etc/resolv.conf"}
	if rest, ok := strings.CutPrefix(s.Network, "static "); ok {
		st, err := netconf.ParseStatic(rest)
		if err != nil {
			return cfg, err
		}
		cfg.Static = st
	}
	return cfg, nil
}

// ParsePin reads a server key pin, "sha256:HEX": the SHA-256 of the
// server certificate's SubjectPublicKeyInfo.
func ParsePin(pin string) ([]byte, error) {
	h, ok := strings.CutPrefix(pin, "sha256:")
	b, err := hex.DecodeString(h)
	if !ok || err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("server pin %q: want sha256: and 64 hex digits", pin)
	}
	return b, nil
}
