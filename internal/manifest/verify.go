package manifest

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/glint-boot/glint/internal/tpm"
)

// MaxKeyringSize bounds an owner keyring file.
const MaxKeyringSize = 1 << 20

// ReadKeyring parses armored or binary OpenPGP keys (public or secret).
func ReadKeyring(untrusted []byte) (openpgp.EntityList, error) {
	if len(untrusted) > MaxKeyringSize {
		return nil, fmt.Errorf("keyring of %d bytes is larger than %d", len(untrusted), MaxKeyringSize)
	}
	var el openpgp.EntityList
	var err error
	if bytes.Contains(untrusted, []byte("-----BEGIN PGP")) {
		el, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(untrusted))
	} else {
		el, err = openpgp.ReadKeyRing(bytes.NewReader(untrusted))
	}
	if err != nil {
		return nil, fmt.Errorf("read OpenPGP keys: %w", err)
	}
	if len(el) == 0 {
		return nil, errors.New("no OpenPGP keys in keyring")
	}
	return el, nil
}

// FileChange is one path whose manifest entry and on-disk state differ.
type FileChange struct {
	Path      string
	Want, Got Entry // Want from the signed manifest, Got from /boot now
}

func (c FileChange) String() string {
	// %q: a file name is attacker-chosen and must not drive the console
	// (escape sequences) when the boot menu prints it.
	return fmt.Sprintf("%q: signed %s, now %s", c.Path, describe(c.Want), describe(c.Got))
}

func describe(e Entry) string {
	switch e.Kind {
	case KindFile:
		return fmt.Sprintf("sha256 %s (%d bytes)", hex.EncodeToString(e.SHA256[:]), e.Size)
	case KindLink:
		return fmt.Sprintf("symlink to %q", e.Target)
	}
	return e.Kind.String()
}

// RollbackError is a validly signed manifest whose counter is not the TPM's.
type RollbackError struct {
	Index    uint32
	Manifest uint64 // counter value in the signed manifest
	TPM      uint64 // value the TPM counter holds
}

func (e *RollbackError) Error() string {
	if e.TPM > e.Manifest {
		return fmt.Sprintf("rollback: the manifest was signed at counter %d but the TPM counter 0x%08x is at %d (counter ahead: an older signed /boot was put back, or a signing was interrupted); check /boot, then sign it again with your key",
			e.Manifest, e.Index, e.TPM)
	}
	return fmt.Sprintf("counter behind: the manifest was signed at counter %d but the TPM counter 0x%08x is at %d (TPM cleared, or this /boot was signed on another machine); sign /boot again with your key",
		e.Manifest, e.Index, e.TPM)
}

// TamperError is everything Verify found wrong. If the signature does not
// verify (BadSignature, UnknownKey or Revoked), nothing else is checked: an unsigned
// file list cannot say what changed.
type TamperError struct {
	// BadSignature is why the signature did not verify (corrupt,
	// truncated, or over other bytes), nil if it did.
	BadSignature error
	// UnknownKey is the key ID that made the signature when that key is not
	// in the owner's keyring (0 if not applicable).
	UnknownKey uint64
	// Revoked is set when the signature is by an owner key that was
	// revoked (see revoke.go: every revocation counts, whatever the date).
	Revoked *RevokedKeyError
	// Foreign: signed for another machine's TPM (format version 2).
	Foreign  *ForeignMachineError
	Rollback *RollbackError
	Changed  []FileChange
	Added    []Entry // on disk, not in the manifest
	Removed  []Entry // in the manifest, not on disk
}

func (e *TamperError) Error() string {
	// The words of the report the boot menu and glint verify print, so a
	// finding reads the same wherever the error ends up.
	return "/boot does not match its signed manifest: " + strings.Join(TamperReport(e, nil), "; ")
}

func (e *TamperError) empty() bool {
	return e.BadSignature == nil && e.UnknownKey == 0 && e.Revoked == nil && e.Foreign == nil && e.Rollback == nil &&
		len(e.Changed) == 0 && len(e.Added) == 0 && len(e.Removed) == 0
}

// Result is a verified manifest and who signed it.
type Result struct {
	Manifest *Manifest
	// Signer is the owner key that made the signature.
	Signer *openpgp.Entity
	// SignedAt is the signature's creation time (as the signer's clock said).
	SignedAt time.Time
	// CounterChecked is false when Verify was given no counter.
	CounterChecked bool
	// Unbound: the manifest names no TPM (format version 1, or signed
	// before this TPM was set up), so it would verify on any machine of
	// the same owner at the same counter value; sign again to bind it.
	Unbound bool
	// MachineChecked: the manifest's machine is this machine's TPM.
	MachineChecked bool
	// Kept are the bytes of the files VerifyOptions.Build.Keep selected,
	// as they were hashed for this verification.
	Kept map[string][]byte
}

// VerifyOptions tune VerifyWith.
type VerifyOptions struct {
	Build BuildOptions
	// Machine is this machine's TPM identity; nil: the counter's, if it is
	// an IdentityReader.
	Machine *tpm.Identity
}

// ForeignMachineError: the manifest was signed for another machine's TPM.
type ForeignMachineError struct {
	Manifest *tpm.Identity // the TPM it was signed for
	This     *tpm.Identity // this machine's TPM; nil if it has no identity (not set up, or cleared)
}

func (e *ForeignMachineError) Error() string {
	if e.This == nil {
		return fmt.Sprintf("signed for another machine's TPM: the manifest names TPM %s, and this machine's TPM has no glint identity (it was cleared or replaced since signing, or /boot comes from another machine); do not boot it unless you moved this disk yourself, then sign /boot on this machine", e.Manifest.Short())
	}
	return fmt.Sprintf("signed for another machine's TPM: the manifest names TPM %s, this machine's TPM is %s (a /boot copied from another machine of the same owner, or this TPM was cleared or replaced since signing); do not boot it unless you moved this disk yourself, then sign /boot on this machine", e.Manifest.Short(), e.This.Short())
}

// Verify checks /boot against its signed manifest: the signature against
// the owner keyring (in Go; no gpg in the initramfs), the manifest counter
// against the TPM (nil counter skips this and says so in Result), and every
// file, directory and symlink. The error is a *TamperError naming everything
// that is wrong, ErrNoManifest, or a plain error for I/O problems.
func Verify(bootDir string, keyring openpgp.EntityList, counter CounterReader) (*Result, error) {
	return VerifyWith(bootDir, keyring, counter, VerifyOptions{})
}

// VerifyWith is Verify with options.
func VerifyWith(bootDir string, keyring openpgp.EntityList, counter CounterReader, opts VerifyOptions) (*Result, error) {
	// /boot is hashed while the signature, the machine and the counter are
	// checked: hashing the biggest file decides how long verification
	// takes, and it needs none of them. Its result is used only after they
	// passed, and every return waits for it, so nothing reads /boot after
	// VerifyWith returned.
	type built struct {
		m   *Manifest
		err error
	}
	hashed := make(chan built, 1)
	bo := opts.Build
	bo.report = true
	go func() {
		m, err := Build(bootDir, bo)
		hashed <- built{m, err}
	}()
	var now built
	wait := func() built {
		if hashed != nil {
			now, hashed = <-hashed, nil
		}
		return now
	}
	defer wait()

	untrustedText, untrustedSig, err := ReadPair(bootDir)
	if err != nil {
		return nil, err
	}
	res, err := CheckSignature(untrustedText, untrustedSig, keyring)
	if err != nil {
		return nil, err
	}
	m := res.Manifest
	te := &TamperError{}
	this := opts.Machine
	_, canAsk := counter.(IdentityReader)
	if this == nil && canAsk {
		if this, err = machineOf(counter); err != nil {
			return res, err
		}
	}
	switch {
	case m.Machine == nil:
		res.Unbound = true
	case this == nil && !canAsk:
		// No TPM to compare with (a workstation check of a /boot):
		// MachineChecked stays false.
	case this == nil || *this != *m.Machine:
		te.Foreign = &ForeignMachineError{Manifest: m.Machine, This: this}
	default:
		res.MachineChecked = true
	}
	if counter != nil {
		v, err := counter.CounterRead(m.CounterIndex)
		if err != nil && te.Foreign != nil {
			// No counter here is what a /boot from another machine
			// finds on a TPM that has none of its own: the foreign
			// binding explains it, "TPM cleared" would mislead. The file
			// differences are named too: a foreign /boot that was also
			// changed shows both findings.
			if b := wait(); b.err == nil {
				te.Changed, te.Added, te.Removed = Diff(m.Entries, b.m.Entries)
			}
			return res, te
		}
		if errors.Is(err, tpm.ErrNotDefined) {
			// The words the boot menu and glint verify both show.
			return res, fmt.Errorf("the TPM rollback counter of the signed /boot does not exist: the TPM was cleared or replaced since /boot was signed (or /boot was signed on another machine); if you did not clear it, treat this machine as tampered, otherwise set it up again (counter 0x%08x: %w)", m.CounterIndex, err)
		}
		if err != nil {
			return res, fmt.Errorf("read TPM rollback counter 0x%08x: %w (without it an older signed /boot cannot be told from the current one)", m.CounterIndex, err)
		}
		res.CounterChecked = true
		if v != m.Counter {
			te.Rollback = &RollbackError{Index: m.CounterIndex, Manifest: m.Counter, TPM: v}
		}
	}
	if b := wait(); b.err != nil {
		return res, fmt.Errorf("hash /boot: %w", b.err)
	}
	te.Changed, te.Added, te.Removed = Diff(m.Entries, now.m.Entries)
	if !te.empty() {
		return res, te
	}
	res.Kept = now.m.Kept
	return res, nil
}

// CheckSignature verifies an armored detached signature over manifest text
// and parses the text. Key expiry is judged at the signature's creation
// time, not by the clock: a coreboot machine with a flat RTC battery boots
// in 1970, and a signature "from the future" must not lock the owner out.
// Revocation is not: a revoked owner key is refused whatever date its
// signature claims (revoke.go, *RevokedKeyError in TamperError.Revoked).
func CheckSignature(untrustedText, untrustedSig []byte, keyring openpgp.EntityList) (*Result, error) {
	signer, signedAt, err := checkDetached(untrustedText, untrustedSig, keyring)
	if err != nil {
		return nil, err
	}
	m, err := Parse(untrustedText)
	if err != nil {
		// Signed by the owner yet malformed: not tampering, a bug or a
		// newer format.
		return nil, fmt.Errorf("the owner-signed manifest cannot be read: %w", err)
	}
	return &Result{Manifest: m, Signer: signer, SignedAt: signedAt}, nil
}

// checkDetached verifies an armored detached signature over signed; a
// failure is a *TamperError with BadSignature or UnknownKey set.
func checkDetached(signed, untrustedSig []byte, keyring openpgp.EntityList) (*openpgp.Entity, time.Time, error) {
	if len(untrustedSig) > MaxSignatureSize {
		return nil, time.Time{}, &TamperError{BadSignature: fmt.Errorf("signature file of %d bytes is larger than %d", len(untrustedSig), MaxSignatureSize)}
	}
	sigPkt, err := readSignaturePacket(untrustedSig)
	if err != nil {
		return nil, time.Time{}, &TamperError{BadSignature: err}
	}
	if sigPkt.IssuerKeyId == nil {
		return nil, time.Time{}, &TamperError{BadSignature: errors.New("signature names no issuer key")}
	}
	keys := keyring.KeysByIdUsage(*sigPkt.IssuerKeyId, packet.KeyFlagSign)
	if len(keys) == 0 {
		return nil, time.Time{}, &TamperError{UnknownKey: *sigPkt.IssuerKeyId}
	}
	signedAt := sigPkt.CreationTime
	// Before the signature is even checked: a revoked owner key signs
	// nothing, whatever date its signature claims (revoke.go).
	for _, k := range keys {
		if r := revocationOf(k, signedAt); r != nil {
			return nil, time.Time{}, &TamperError{Revoked: r}
		}
	}
	cfg := &packet.Config{Time: func() time.Time { return signedAt }}
	signer, err := openpgp.CheckArmoredDetachedSignature(keyring, bytes.NewReader(signed), bytes.NewReader(untrustedSig), cfg)
	if err != nil {
		if errors.Is(err, pgperrors.ErrUnknownIssuer) {
			return nil, time.Time{}, &TamperError{UnknownKey: *sigPkt.IssuerKeyId}
		}
		return nil, time.Time{}, &TamperError{BadSignature: err}
	}
	return signer, signedAt, nil
}

// readSignaturePacket decodes the armor and the first packet, which must be
// a signature.
func readSignaturePacket(untrustedSig []byte) (*packet.Signature, error) {
	block, err := armor.Decode(bytes.NewReader(untrustedSig))
	if err != nil {
		if err == io.EOF {
			return nil, errors.New("no armored signature found")
		}
		return nil, fmt.Errorf("armor: %w", err)
	}
	if block.Type != openpgp.SignatureType {
		return nil, fmt.Errorf("armored block is %q, not a signature", block.Type)
	}
	p, err := packet.NewReader(block.Body).Next()
	if err != nil {
		return nil, fmt.Errorf("signature packet: %w", err)
	}
	sig, ok := p.(*packet.Signature)
	if !ok {
		return nil, fmt.Errorf("first packet is %T, not a signature", p)
	}
	return sig, nil
}

// Diff compares two sorted entry lists: what changed, what only the second
// has (added), what only the first has (removed).
func Diff(want, got []Entry) (changed []FileChange, added, removed []Entry) {
	i, j := 0, 0
	for i < len(want) || j < len(got) {
		switch {
		case j == len(got) || i < len(want) && want[i].Path < got[j].Path:
			removed = append(removed, want[i])
			i++
		case i == len(want) || got[j].Path < want[i].Path:
			added = append(added, got[j])
			j++
		default:
			if want[i] != got[j] {
				changed = append(changed, FileChange{Path: want[i].Path, Want: want[i], Got: got[j]})
			}
			i++
			j++
		}
	}
	return changed, added, removed
}
