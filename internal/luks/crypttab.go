package luks

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode"
)

// Caps for reading a crypttab (from an OS initrd: verified by the /boot
// manifest, but still parsed as untrusted).
const (
	maxCrypttabSize    = 64 << 10
	maxCrypttabEntries = 64
	maxCrypttabField   = 1024
)

// KeyPath is where the injected disk key lives inside the initrd.
const KeyPath = "/secret.key"

// CrypttabEntry is one crypttab(5) line: NAME DEVICE KEYFILE OPTIONS.
type CrypttabEntry struct {
	Name    string   // mapper name, e.g. "root_crypt" or "luks-<uuid>"
	Device  string   // e.g. "UUID=4d8ee565-..."
	KeyFile string   // "none", a path, or "" meaning "unlock with the injected key"
	Options []string // comma-separated field 4, e.g. ["luks", "discard"]
}

// KeyEntry is an entry that unlocks the LUKS volume with this UUID with the
// injected key, under mapper name (empty: Heads' "luks-<uuid>").
func KeyEntry(name, uuid string, options ...string) CrypttabEntry {
	if name == "" {
		name = "luks-" + uuid
	}
	return CrypttabEntry{Name: name, Device: "UUID=" + uuid, Options: options}
}

// UUID returns the LUKS UUID the entry's device names (UUID=... or
// /dev/disk/by-uuid/...), or "".
func (e CrypttabEntry) UUID() string {
	if u, ok := strings.CutPrefix(e.Device, "UUID="); ok {
		return u
	}
	if u, ok := strings.CutPrefix(e.Device, "/dev/disk/by-uuid/"); ok {
		return u
	}
	return ""
}

// ParseCrypttab reads crypttab(5) text. Comments and blank lines are
// dropped; fields may be separated by any run of spaces or tabs.
func ParseCrypttab(untrusted []byte) ([]CrypttabEntry, error) {
	if len(untrusted) > maxCrypttabSize {
		return nil, fmt.Errorf("crypttab: %d bytes (cap %d): %w", len(untrusted), maxCrypttabSize, ErrTooLarge)
	}
	var out []CrypttabEntry
	sc := bufio.NewScanner(bytes.NewReader(untrusted))
	sc.Buffer(make([]byte, 0, 4096), maxCrypttabSize)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.Fields(text)
		if len(f) < 2 || len(f) > 4 {
			return nil, fmt.Errorf("crypttab line %d: %d fields, want 2 to 4: %w", line, len(f), ErrFormat)
		}
		for _, x := range f {
			if len(x) > maxCrypttabField {
				return nil, fmt.Errorf("crypttab line %d: field of %d bytes: %w", line, len(x), ErrTooLarge)
			}
		}
		if len(out) == maxCrypttabEntries {
			return nil, fmt.Errorf("crypttab: more than %d entries: %w", maxCrypttabEntries, ErrTooLarge)
		}
		e := CrypttabEntry{Name: f[0], Device: f[1], KeyFile: "none"}
		if len(f) > 2 {
			e.KeyFile = f[2]
		}
		if len(f) > 3 {
			e.Options = strings.Split(f[3], ",")
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("crypttab: %w", err)
	}
	return out, nil
}

// validField rejects what would break a crypttab line or smuggle a second
// one: whitespace, control characters, '#' at the start, commas where the
// field is itself a list element.
func validField(s string, allowComma bool) bool {
	if s == "" || len(s) > maxCrypttabField || s[0] == '#' {
		return false
	}
	for _, r := range s {
		// Any Unicode space (U+00A0, U+2003 ...) splits fields for
		// crypttab readers that use Unicode-aware splitting, ours
		// included: a name containing one would shift every field.
		if r <= ' ' || r == 0x7f || unicode.IsSpace(r) || !unicode.IsPrint(r) || (!allowComma && r == ',') {
			return false
		}
	}
	return true
}

// formatLine renders e for style. Entries with KeyFile "" get the injected
// key and the options that make the style's initramfs read it.
func formatLine(e CrypttabEntry, style Style) (string, error) {
	if !validField(e.Name, true) || !validField(e.Device, true) {
		return "", fmt.Errorf("crypttab entry %q %q: name and device must be non-empty with no spaces or control characters", e.Name, e.Device)
	}
	key := e.KeyFile
	var opts []string
	if key == "" {
		key = KeyPath
		opts = append(opts, "luks")
		if style == StyleInitramfsTools {
			// initramfs-tools' cryptroot runs the keyscript with the key
			// field as its argument and pipes its output to cryptsetup.
			// glint's keyscript gives the key once and then asks for the
			// passphrase like Debian does: with keyscript=/bin/cat a wrong
			// key is retried until cryptroot drops to a shell, leaving the
			// owner no way to type the recovery passphrase (proven in QEMU
			// with a real Debian initramfs, internal/luks/qemutest).
			opts = append(opts, "keyscript="+KeyscriptPath)
		}
		for _, o := range e.Options {
			// Options that would make cryptsetup read our key differently
			// (or from somewhere else) are dropped; the rest (discard,
			// no-read-workqueue, ...) are kept.
			name, _, _ := strings.Cut(o, "=")
			switch name {
			case "luks", "keyscript", "keyfile-size", "keyfile-offset", "keyfile-timeout", "tries", "plain", "tcrypt", "bitlk", "none":
				continue
			}
			opts = append(opts, o)
		}
	} else {
		opts = e.Options
	}
	if !validField(key, true) {
		return "", fmt.Errorf("crypttab entry %s: key file %q is not a valid field", e.Name, key)
	}
	line := e.Name + " " + e.Device + " " + key
	if len(opts) > 0 {
		for _, o := range opts {
			if !validField(o, false) {
				return "", fmt.Errorf("crypttab entry %s: option %q is not valid", e.Name, o)
			}
		}
		line += " " + strings.Join(opts, ",")
	}
	return line, nil
}

// MergeCrypttab keeps the OS's own crypttab (from its initrd) and points
// every entry for a volume in keyed (LUKS UUIDs glint holds the key for) at
// the injected key, so the OS's mapper names (root_crypt, luks-<uuid>, ...)
// survive: the kernel command line and fstab refer to them. Volumes of keyed
// that the OS crypttab does not list are added under "luks-<uuid>".
// Entries for other volumes stay exactly as they were.
func MergeCrypttab(osEntries []CrypttabEntry, keyed []string) []CrypttabEntry {
	want := map[string]bool{}
	for _, u := range keyed {
		want[strings.ToLower(u)] = true
	}
	covered := map[string]bool{}
	var out []CrypttabEntry
	for _, e := range osEntries {
		if u := strings.ToLower(e.UUID()); u != "" && want[u] {
			e.KeyFile = ""
			covered[u] = true
		}
		out = append(out, e)
	}
	for _, u := range keyed {
		if !covered[strings.ToLower(u)] {
			out = append(out, KeyEntry("", u))
			covered[strings.ToLower(u)] = true
		}
	}
	return out
}

// KeyCrypttab decides the crypttab the key cpio carries: the OS initrd's own
// entries (so its mapper names, root_crypt or luks-<uuid>, and its other
// volumes survive) with the sealed volume pointed at the injected key, in
// the OS initrd's dialect. If the initrd cannot be read, both dialects with
// the name recorded at seal time.
func KeyCrypttab(osInitrd io.Reader, uuid, name string) ([]CrypttabEntry, Style) {
	style := StyleBoth
	var osTab []CrypttabEntry
	if info, err := ReadInitrd(osInitrd); err == nil {
		style, osTab = info.Style, info.Crypttab
	}
	listed := false
	for _, e := range osTab {
		if strings.EqualFold(e.UUID(), uuid) {
			listed = true
		}
	}
	if !listed && name != "" {
		return append(osTab, KeyEntry(name, uuid, "luks")), style
	}
	return MergeCrypttab(osTab, []string{uuid}), style
}
