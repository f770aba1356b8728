package manifest

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// Signing is where the owner's key vouches for /boot, so nothing is signed
// blind: the owner first sees what will be signed next to the last
// manifest found on /boot (file, old and new hash, added, removed) and
// confirms. That holds after a BAD signature too: the last manifest's file
// list is still shown, marked as unverified, because "signature is BAD"
// alone hides which files someone changed along with it. And the manifest
// signed is the one shown: SignPlanned signs the hashes of the plan, never
// a fresh walk of /boot that could differ from what the owner approved.

// SignPlan is what a signing would sign and how it differs from the last
// manifest on /boot.
type SignPlan struct {
	// New is /boot as hashed now: what SignPlanned signs.
	New *Manifest
	// Last is the manifest found on /boot before (nil: none).
	Last *Manifest
	// LastVerified: Last's signature verified against the owner keyring.
	// Otherwise LastProblem says why not (a *TamperError for a BAD or
	// foreign signature, ErrNoManifest, a parse error).
	LastVerified bool
	LastProblem  error
	// Differences between Last and New.
	Changed        []FileChange
	Added, Removed []Entry
}

// ErrSignatureNotChecked: PlanSign was given no owner keyring, so the last
// manifest's signature was not checked (the CLI without --pubkey).
var ErrSignatureNotChecked = errors.New("its signature was not checked: no owner public key given (--pubkey or GLINT_PUBKEY)")

// PlanSign hashes /boot and compares it with the last manifest there. With
// no keyring the last manifest is compared unverified and says so.
func PlanSign(bootDir string, keyring openpgp.EntityList, opts BuildOptions) (*SignPlan, error) {
	now, err := Build(bootDir, opts)
	if err != nil {
		return nil, err
	}
	p := &SignPlan{New: now}
	untrustedText, untrustedSig, err := ReadPair(bootDir)
	if err != nil {
		p.LastProblem = err
		if errors.Is(err, ErrNoManifest) {
			p.Added = now.Entries
			return p, nil
		}
		return p, nil
	}
	if len(keyring) == 0 {
		p.LastProblem = ErrSignatureNotChecked
		if m, perr := Parse(untrustedText); perr == nil {
			p.Last = m
			p.Changed, p.Added, p.Removed = Diff(m.Entries, now.Entries)
		} else {
			p.Added = now.Entries
		}
		return p, nil
	}
	if res, err := CheckSignature(untrustedText, untrustedSig, keyring); err == nil {
		p.Last, p.LastVerified = res.Manifest, true
	} else {
		p.LastProblem = err
		// Unverified, but still the best account of what was there: an
		// attacker who rewrote it can only make the list longer, never
		// hide a file from the new one.
		if m, perr := Parse(untrustedText); perr == nil {
			p.Last = m
		}
	}
	if p.Last != nil {
		p.Changed, p.Added, p.Removed = Diff(p.Last.Entries, now.Entries)
	} else {
		p.Added = now.Entries
	}
	return p, nil
}

// Same reports that the files are exactly those of a verified last manifest.
func (p *SignPlan) Same() bool {
	return p.LastVerified && len(p.Changed) == 0 && len(p.Added) == 0 && len(p.Removed) == 0
}

// Summary is the text shown before the owner confirms. maxLines bounds
// the file lines (0: all); the counts are always given.
func (p *SignPlan) Summary(maxLines int) string {
	var b strings.Builder
	switch {
	case p.Last == nil && errors.Is(p.LastProblem, ErrNoManifest):
		fmt.Fprintf(&b, "No signed manifest on /boot: all %d entries are new.\n", len(p.New.Entries))
	case p.Last == nil:
		fmt.Fprintf(&b, "The last manifest on /boot cannot be read (%v): all %d entries are shown as new.\n", p.LastProblem, len(p.New.Entries))
	case errors.Is(p.LastProblem, ErrSignatureNotChecked):
		fmt.Fprintf(&b, "Compared with the last manifest on /boot (counter %d; %v):\n", p.Last.Counter, p.LastProblem)
	case !p.LastVerified:
		fmt.Fprintf(&b, "Compared with the last manifest on /boot, whose signature does NOT verify (%v); its file list is shown anyway, unverified:\n", p.LastProblem)
	default:
		fmt.Fprintf(&b, "Compared with the last signed manifest (counter %d, signed %s):\n", p.Last.Counter, p.Last.Created.Format("2006-01-02 15:04 UTC"))
	}
	fmt.Fprintf(&b, "%d changed, %d added, %d removed.\n", len(p.Changed), len(p.Added), len(p.Removed))
	n := 0
	line := func(format string, a ...any) {
		if maxLines > 0 && n == maxLines {
			fmt.Fprintf(&b, "  ... (%d more)\n", len(p.Changed)+len(p.Added)+len(p.Removed)-n)
		}
		if maxLines == 0 || n < maxLines {
			fmt.Fprintf(&b, format, a...)
		}
		n++
	}
	for _, c := range p.Changed {
		line("  changed %q: %s -> %s\n", c.Path, describe(c.Want), describe(c.Got))
	}
	if p.Last != nil {
		for _, a := range p.Added {
			line("  added   %q: %s\n", a.Path, describe(a))
		}
	}
	for _, r := range p.Removed {
		line("  removed %q: %s\n", r.Path, describe(r))
	}
	if p.Same() {
		b.WriteString("Nothing changed since the last signing.\n")
	}
	return b.String()
}

// SignPlanned signs p.New, the hashes the owner saw, for the next counter
// value (as SignBoot does after hashing) and writes the pair.
func SignPlanned(bootDir string, p *SignPlan, s Signer, c Counter, opts SignOptions) (*Manifest, error) {
	if p == nil || p.New == nil {
		return nil, errors.New("nothing planned to sign")
	}
	m := *p.New
	return signBuilt(bootDir, &m, s, c, opts)
}
