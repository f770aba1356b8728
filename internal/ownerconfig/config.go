// Package ownerconfig holds the owner's configuration: the small text file the
// owner keeps in the firmware image (CBFS file glint/config) next to their
// public key. glint measures it into PCR 7 before using it, so changing the
// configuration changes what the TPM will release, like changing the key.
//
// Format: one "key = value" per line, '#' starts a comment. Unknown keys are
// an error (a typo must not silently disable a protection). Example:
//
//	# glint owner configuration
//	profile = coreboot        # coreboot | uefi | auto
//	countdown = 5             # seconds before the default entry boots
//	rtc = utc                 # utc, or the RTC's offset from UTC like +01:00
//	totp.issuer = glint
//	totp.account = x230 of Alice
//	disk.unlock = attended    # attended (PIN) | unattended (servers) | off
//	boot.device = UUID=3f1c...# the /boot filesystem; default: search
//	boot.policy = restricted  # normal | restricted | basic (package bootpolicy,
//	                          # with the iso.* and rootfs.* settings)
//	attest.server = https://attest.example:8443  # report before kexec (package
//	attest.pin = sha256:4f0c...                   # attest/client, with attest.network)
package ownerconfig

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/glint-boot/glint/internal/attest/settings"
	"github.com/glint-boot/glint/internal/bootpolicy"
)

// Config is the owner's configuration with defaults filled in.
type Config struct {
	Profile      string        // "auto", "coreboot", "uefi"
	Countdown    int           // seconds
	RTCOffset    time.Duration // how far the RTC runs ahead of UTC
	TOTPIssuer   string
	TOTPAccount  string
	DiskUnlock   string // "attended", "unattended", "off"
	BootDevice   string // "", "UUID=...", "LABEL=...", "/dev/..."
	ForceAllowed bool   // may the owner force a boot after tampering (loud)
	// Boot is the boot policy: mode, ISO command line and keys, root file
	// system check (boot.policy, iso.*, rootfs.*).
	Boot bootpolicy.Settings
	// Attest names the attestation server glint reports to before kexec,
	// and how to reach it (attest.*; package attest/settings).
	Attest settings.Settings
}

// Default is the configuration of a machine whose owner wrote none.
func Default() Config {
	return Config{Profile: "auto", Countdown: 5, TOTPIssuer: "glint", DiskUnlock: "attended", ForceAllowed: true}
}

const (
	maxConfigSize = 64 << 10
	maxLineLen    = 1024
)

// ParseError names the line of the configuration that is wrong.
type ParseError struct {
	Line int
	Err  error
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("owner config line %d: %v (fix glint/config in the firmware image)", e.Line, e.Err)
}
func (e *ParseError) Unwrap() error { return e.Err }

// Parse reads an owner configuration. The bytes come from the firmware
// image, which is measured, but a broken file must still not crash PID 1.
func Parse(untrusted []byte) (Config, error) {
	c := Default()
	if len(untrusted) > maxConfigSize {
		return c, &ParseError{0, fmt.Errorf("%d bytes, more than %d", len(untrusted), maxConfigSize)}
	}
	s := bufio.NewScanner(bytes.NewReader(untrusted))
	s.Buffer(make([]byte, 0, 1024), maxLineLen)
	n := 0
	for s.Scan() {
		n++
		line := s.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return c, &ParseError{n, fmt.Errorf("%q is not key = value", line)}
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if err := c.set(k, v); err != nil {
			return c, &ParseError{n, err}
		}
	}
	if err := s.Err(); err != nil {
		return c, &ParseError{n + 1, err}
	}
	return c, nil
}

func (c *Config) set(k, v string) error {
	switch k {
	case "profile":
		if v != "auto" && v != "coreboot" && v != "uefi" {
			return fmt.Errorf("profile %q: want auto, coreboot or uefi", v)
		}
		c.Profile = v
	case "countdown":
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 3600 {
			return fmt.Errorf("countdown %q: want seconds 0..3600", v)
		}
		c.Countdown = n
	case "rtc":
		d, err := ParseRTC(v)
		if err != nil {
			return err
		}
		c.RTCOffset = d
	case "totp.issuer":
		c.TOTPIssuer = v
	case "totp.account":
		c.TOTPAccount = v
	case "disk.unlock":
		if v != "attended" && v != "unattended" && v != "off" {
			return fmt.Errorf("disk.unlock %q: want attended, unattended or off", v)
		}
		c.DiskUnlock = v
	case "boot.device":
		c.BootDevice = v
	case "force.allowed":
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("force.allowed %q: want true or false", v)
		}
		c.ForceAllowed = b
	default:
		err := c.Boot.Set(k, v)
		if errors.Is(err, bootpolicy.ErrNotMine) {
			err = c.Attest.Set(k, v)
		}
		if errors.Is(err, settings.ErrNotMine) {
			return fmt.Errorf("unknown setting %q", k)
		}
		return err
	}
	return nil
}

// ParseRTC reads "utc" or an offset like "+01:00" / "-05:30".
func ParseRTC(v string) (time.Duration, error) {
	if strings.EqualFold(v, "utc") {
		return 0, nil
	}
	if len(v) != 6 || (v[0] != '+' && v[0] != '-') || v[3] != ':' {
		return 0, fmt.Errorf("rtc %q: want utc or an offset like +01:00", v)
	}
	h, err1 := strconv.Atoi(v[1:3])
	m, err2 := strconv.Atoi(v[4:6])
	if err1 != nil || err2 != nil || h > 14 || m > 59 {
		return 0, fmt.Errorf("rtc %q: want utc or an offset like +01:00", v)
	}
	d := time.Duration(h)*time.Hour + time.Duration(m)*time.Minute
	if v[0] == '-' {
		d = -d
	}
	return d, nil
}
