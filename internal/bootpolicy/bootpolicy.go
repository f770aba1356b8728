// Package bootpolicy is the owner's boot policy: how strict glint is
// (Normal, Restricted, Basic, after PureBoot's modes), what it adds to and
// removes from an ISO's kernel command line, which keys may sign an ISO,
// and whether the root file system is checked at boot.
//
// The settings are lines of the owner configuration (internal/ownerconfig,
// CBFS glint/config), so they are measured into PCR 7 with the rest of it:
// switching modes changes PCR 7, the TPM no longer releases the TOTP secret
// sealed under the old mode, and the code on the phone stops matching until
// the owner authenticates and reseals. Nobody can relax the policy
// silently. Keys (Settings.Set):
//
//	boot.policy = normal        # normal | restricted | basic
//	iso.cmdline.add = console=ttyS0
//	iso.cmdline.remove = quiet splash vga=
//	iso.keys = builtin          # builtin | firmware | owner
//	rootfs.check = off          # off | boot
//	rootfs.device = UUID=8d2f... # the root file system to check
//	rootfs.fast = false         # skip files whose inode, size and times did not move
//
// What the modes mean, for the boot flow (the Allows* methods):
//
//	                       normal              restricted          basic
//	tamper checks          yes                 yes                 none ("UNPROTECTED")
//	unsigned /boot         refused, may force  refused, no force   boots
//	unsigned ISO           after confirmation  refused             boots
//	recovery shell         yes (PCR 4 moves)   reboots instead     yes
//	flashing from the menu yes (owner auth)    blocked             yes
package bootpolicy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Mode is how strict the boot is.
type Mode int

const (
	// Normal is glint as it always was: tamper checks, the owner may
	// override after a loud warning.
	Normal Mode = iota
	// Restricted boots only an owner-signed /boot or an ISO signed by a
	// trusted key; nothing can be overridden from the menu.
	Restricted
	// Basic checks nothing (coreboot + a boot menu), and says so on every
	// screen.
	Basic
)

func (m Mode) String() string {
	switch m {
	case Normal:
		return "normal"
	case Restricted:
		return "restricted"
	case Basic:
		return "basic"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// ParseMode reads a mode name.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "normal":
		return Normal, nil
	case "restricted":
		return Restricted, nil
	case "basic":
		return Basic, nil
	}
	return Normal, fmt.Errorf("boot.policy %q: want normal, restricted or basic", s)
}

// TamperChecks reports whether glint verifies /boot and seals secrets.
func (m Mode) TamperChecks() bool { return m != Basic }

// AllowsForcedBoot reports whether the owner may boot a /boot that did not
// verify ("ignore tampering", loud, measured).
func (m Mode) AllowsForcedBoot() bool { return m == Normal }

// AllowsUnsignedISO reports whether an ISO no trusted key signed may boot
// (after explicit confirmation in Normal mode).
func (m Mode) AllowsUnsignedISO() bool { return m != Restricted }

// AllowsRecoveryShell reports whether the recovery shell opens; in
// Restricted mode choosing it reboots instead.
func (m Mode) AllowsRecoveryShell() bool { return m != Restricted }

// AllowsMenuFlashing reports whether firmware may be flashed from the boot
// menu.
func (m Mode) AllowsMenuFlashing() bool { return m != Restricted }

// Banner is the line the boot screens show for the mode; empty for Normal.
func (m Mode) Banner() string {
	switch m {
	case Restricted:
		return "RESTRICTED BOOT: only signed systems boot; recovery, forced boot and flashing are off"
	case Basic:
		return "UNPROTECTED: basic mode, glint checks nothing on this machine (set boot.policy to leave it)"
	}
	return ""
}

// ISOKeys says which keys may sign an ISO.
type ISOKeys int

const (
	// BuiltinKeys: the owner's keys, the distribution keys built into glint
	// (internal/isoverify/keys), and any in the firmware's glint/iso-keys.asc.
	BuiltinKeys ISOKeys = iota
	// FirmwareKeys: the owner's keys and glint/iso-keys.asc only.
	FirmwareKeys
	// OwnerKeys: the owner's keys only.
	OwnerKeys
)

func (k ISOKeys) String() string {
	return [...]string{"builtin", "firmware", "owner"}[k]
}

// Settings are the owner's boot policy settings with defaults filled in.
type Settings struct {
	Mode         Mode
	ISOAdd       []string // words appended to an ISO's kernel command line
	ISORemove    []string // words removed ("quiet"), or prefixes ("vga=")
	ISOKeys      ISOKeys
	RootfsCheck  bool   // check the root file system at boot
	RootfsDevice string // "UUID=...", "LABEL=...", "/dev/..."; "" = the root= of the entry booted
	RootfsFast   bool
}

// Default is the policy of a machine whose owner set none.
func Default() Settings { return Settings{} }

// Caps on what a configuration line may ask for.
const (
	MaxWords   = 64
	MaxWordLen = 256
)

// ErrNotMine is returned by Set for keys this package does not own.
var ErrNotMine = errors.New("not a boot policy setting")

// Set applies one "key = value" of the owner configuration. It returns
// ErrNotMine for keys that are not the boot policy's, so the configuration
// parser can try its own.
func (s *Settings) Set(key, value string) error {
	switch key {
	case "boot.policy":
		m, err := ParseMode(value)
		if err != nil {
			return err
		}
		s.Mode = m
	case "iso.cmdline.add", "iso.cmdline.remove":
		words, err := cmdlineWords(key, value)
		if err != nil {
			return err
		}
		if key == "iso.cmdline.add" {
			s.ISOAdd = words
		} else {
			s.ISORemove = words
		}
	case "iso.keys":
		switch value {
		case "builtin":
			s.ISOKeys = BuiltinKeys
		case "firmware":
			s.ISOKeys = FirmwareKeys
		case "owner":
			s.ISOKeys = OwnerKeys
		default:
			return fmt.Errorf("iso.keys %q: want builtin, firmware or owner", value)
		}
	case "rootfs.check":
		switch value {
		case "off":
			s.RootfsCheck = false
		case "boot":
			s.RootfsCheck = true
		default:
			return fmt.Errorf("rootfs.check %q: want off or boot", value)
		}
	case "rootfs.device":
		if len(value) > MaxWordLen || strings.ContainsAny(value, " \t#") {
			return fmt.Errorf("rootfs.device %.40q: want one word like UUID=... or /dev/sda2", value)
		}
		s.RootfsDevice = value
	case "rootfs.fast":
		b, err := strconv.ParseBool(value)
		if err != nil {
			return fmt.Errorf("rootfs.fast %q: want true or false", value)
		}
		s.RootfsFast = b
	default:
		return ErrNotMine
	}
	return nil
}

// cmdlineWords splits a command-line setting into words, refusing what a
// kernel command line cannot carry (control characters, quotes that would
// change the words the kernel sees).
func cmdlineWords(key, value string) ([]string, error) {
	words := strings.Fields(value)
	if len(words) > MaxWords {
		return nil, fmt.Errorf("%s: %d words, more than %d", key, len(words), MaxWords)
	}
	for _, w := range words {
		if len(w) > MaxWordLen {
			return nil, fmt.Errorf("%s: a word of %d bytes, more than %d", key, len(w), MaxWordLen)
		}
		for _, c := range w {
			if c < 0x21 || c > 0x7e || c == '"' || c == '#' {
				return nil, fmt.Errorf("%s: %.40q: only printable ASCII without quotes or '#'", key, w)
			}
		}
	}
	return words, nil
}

// Lines renders s as owner configuration lines, only the settings that
// differ from Default (what `glint policy set` writes).
func (s Settings) Lines() []string {
	var out []string
	if s.Mode != Normal {
		out = append(out, "boot.policy = "+s.Mode.String())
	}
	if len(s.ISOAdd) > 0 {
		out = append(out, "iso.cmdline.add = "+strings.Join(s.ISOAdd, " "))
	}
	if len(s.ISORemove) > 0 {
		out = append(out, "iso.cmdline.remove = "+strings.Join(s.ISORemove, " "))
	}
	if s.ISOKeys != BuiltinKeys {
		out = append(out, "iso.keys = "+s.ISOKeys.String())
	}
	if s.RootfsCheck {
		out = append(out, "rootfs.check = boot")
	}
	if s.RootfsDevice != "" {
		out = append(out, "rootfs.device = "+s.RootfsDevice)
	}
	if s.RootfsFast {
		out = append(out, "rootfs.fast = true")
	}
	return out
}
