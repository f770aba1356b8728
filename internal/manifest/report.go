package manifest

import (
	"fmt"
	"strconv"
	"time"
)

// TamperReport lists everything te found wrong, one line per finding, in
// the words both the boot menu (each line after "TAMPER: ") and glint
// verify print: the signature first, then the rollback counter, then every
// changed, added and removed path. Beside a path the OS's update hook
// mentioned in the unsigned expected-update note (nil: none), the note's
// explanation is added; it only explains, it never makes a change
// acceptable. Paths and note text come from /boot, which anyone with the
// disk can write: they are quoted, never printed raw.
func TamperReport(te *TamperError, note *ExpectedNote) []string {
	var out []string
	if te.UnknownKey != 0 {
		out = append(out, fmt.Sprintf("manifest signature: made by key %016X, which is not an owner key", te.UnknownKey))
	}
	if te.Revoked != nil {
		out = append(out, "manifest signature: "+te.Revoked.Error())
	}
	if te.BadSignature != nil {
		out = append(out, fmt.Sprintf("manifest signature is BAD: the manifest or its signature was modified (%v)", te.BadSignature))
	}
	if te.Foreign != nil {
		out = append(out, "machine: "+te.Foreign.Error())
	}
	if te.Rollback != nil {
		out = append(out, fmt.Sprintf("rollback counter: %v", te.Rollback))
	}
	why := func(p string) string {
		u := note.Explain(p)
		if u == nil {
			return ""
		}
		return fmt.Sprintf("   [expected by an UNSIGNED note: %s %s on %s]", QuoteText(u.Source), QuoteText(u.What), u.Time.UTC().Format(time.RFC3339))
	}
	for _, c := range te.Changed {
		out = append(out, fmt.Sprintf("changed: %s%s", c, why(c.Path)))
	}
	for _, a := range te.Added {
		out = append(out, fmt.Sprintf("added:   %q (not in the signed manifest)%s", a.Path, why(a.Path)))
	}
	for _, r := range te.Removed {
		out = append(out, fmt.Sprintf("removed: %q (listed in the signed manifest)%s", r.Path, why(r.Path)))
	}
	return out
}

// QuoteText prints plain printable ASCII as it is and anything else
// quoted, so text from /boot cannot send escape sequences to a console.
func QuoteText(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\' {
			return strconv.Quote(s)
		}
	}
	return s
}
