package otp

import (
	"io"
	"io/fs"
	"strings"
)

// Placeholder strings firmware vendors leave in SMBIOS (DMI) fields. A label
// built from them would not tell two machines apart on the owner's phone.
var dmiPlaceholders = []string{
	"to be filled by o.e.m.", "default string", "system product name",
	"system serial number", "not specified", "not applicable", "none",
	"o.e.m.", "oem", "invalid", "unknown", "0", "00000000", "123456789",
	"0123456789", "chassis serial number", "type1productconfigid",
}

func cleanLabel(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		switch {
		case r == ':':
			r = '-' // a colon would split issuer from account (Key Uri Format)
		case r == '\t' || r == '\n' || r == '\r' || r == ' ':
			space = true
			continue
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0xfffd:
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	out := b.String()
	if len(out) > 64 {
		out = strings.TrimRight(out[:64], " ")
		for !validLabelPart(out) && len(out) > 0 {
			out = out[:len(out)-1] // do not cut a UTF-8 sequence in half
		}
	}
	return out
}

func isPlaceholder(s string) bool {
	l := strings.ToLower(s)
	for _, p := range dmiPlaceholders {
		if l == p {
			return true
		}
	}
	return false
}

// MachineAccount builds the account part of the enrollment label so the
// owner can tell machines apart in the phone app: the DMI product name and
// serial number when the firmware filled them in ("ThinkPad X230 PF0ABCDE"),
// otherwise the hostname, otherwise "this machine". Vendor placeholders such
// as "To Be Filled By O.E.M." are skipped; colons become dashes.
func MachineAccount(hostname, dmiProduct, dmiSerial string) string {
	var parts []string
	for _, p := range []string{dmiProduct, dmiSerial} {
		if c := cleanLabel(p); c != "" && !isPlaceholder(c) {
			parts = append(parts, c)
		}
	}
	if len(parts) > 0 {
		return strings.Join(parts, " ")
	}
	if h := cleanLabel(hostname); h != "" && h != "localhost" && h != "(none)" {
		return h
	}
	return "this machine"
}

// ReadDMI reads the product name and serial number from sysfs (pass
// os.DirFS("/sys")). product_serial is readable by root only, which glint
// is as PID 1; a missing file gives "".
func ReadDMI(sysfs fs.FS) (product, serial string) {
	read := func(name string) string {
		f, err := sysfs.Open(name)
		if err != nil {
			return ""
		}
		defer f.Close()
		b, _ := io.ReadAll(io.LimitReader(f, 256))
		return strings.TrimSpace(string(b))
	}
	return read("class/dmi/id/product_name"), read("class/dmi/id/product_serial")
}
