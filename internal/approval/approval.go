// Package approval is the owner's side of firmware updates without
// lock-out (docs/firmware-updates.md): signing the PCR values a new
// firmware image will produce, so that secrets sealed with
// tpm.Authorizer.SealAuthorized unseal after the update with no re-seal
// and no new TOTP enrolment, and finding the approval that matches the
// PCRs at boot.
//
// The threat it addresses is the blind re-seal: without approvals, every
// firmware update means sealing the secrets again while running the new,
// not yet trusted firmware. With them, the owner decides before writing
// which values the TPM may release secrets for, and the TPM enforces it
// (TPM2_PolicyAuthorize). Approvals are public data checked by the TPM,
// stored unprotected under /boot/glint/approvals.
//
// The approval key is an RSA (2048; 3072/4096 where the TPM loads them) or
// NIST P-256 signing key the owner holds: in gpg (GPGAgent: a key on an
// OpenPGP card or in the keyring signs the raw digest through gpg-agent's
// PKSIGN), or as a PEM file (KeyFile, for offline keys and tests).
//
//	s := &approval.GPGAgent{KeyID: "0x1234..."}
//	a, err := approval.Approve(predicted, approval.PurposeTOTP, s)
//	path, err := approval.Save("/boot/glint/approvals", a)
//	...at boot:
//	list, _ := approval.Load("/boot/glint/approvals", approval.PurposeTOTP)
//	a := approval.Find(list, expectedNow)
//	secret, err := dev.(tpm.Authorizer).UnsealAuthorized(blob, a, nil)
package approval

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/glint-boot/glint/internal/safefile"
	"github.com/glint-boot/glint/internal/tpm"
)

// Purposes bind an approval to one secret (tpm.Approval.PolicyRef).
const (
	PurposeTOTP = "glint-totp" // the TOTP/HOTP secret, sealed to PCRs 0-4, 7
	PurposeDisk = "glint-disk" // the disk key, sealed to PCRs 0-7
)

// Signer signs an approval digest with the approval key.
type Signer interface {
	// Public is the approval key.
	Public() (crypto.PublicKey, error)
	// SignDigest signs a SHA-256 digest: RSA as PKCS#1 v1.5 (DigestInfo),
	// ECDSA as ASN.1 DER (r, s).
	SignDigest(digest []byte) (tpm.SigScheme, []byte, error)
	String() string
}

// Approve signs policy for purpose and checks the signature before
// returning it (a card that signed with another key is caught here). An
// epoch-bound policy (policy.Epoch, see EpochIndex) is signed for
// tpm.EpochRef(purpose).
func Approve(policy tpm.PCRPolicy, purpose string, s Signer) (*tpm.Approval, error) {
	pub, err := s.Public()
	if err != nil {
		return nil, fmt.Errorf("approval key %s: %w", s, err)
	}
	if _, err := tpm.ApprovalKeyName(pub); err != nil {
		return nil, fmt.Errorf("approval key %s: %w", s, err)
	}
	ref := tpm.ApprovalRefFor(policy, []byte(purpose))
	digest, err := tpm.ApprovalDigest(policy, ref)
	if err != nil {
		return nil, err
	}
	scheme, sig, err := s.SignDigest(digest)
	if err != nil {
		return nil, fmt.Errorf("sign the approval with %s: %w", s, err)
	}
	a := &tpm.Approval{Policy: policy, PolicyRef: ref, Key: pub, Scheme: scheme, Signature: sig}
	if err := a.Check(); err != nil {
		return nil, fmt.Errorf("the signature %s made does not verify with its public key: %w", s, err)
	}
	return a, nil
}

// Caps for reading approvals back from /boot.
const (
	// maxApprovalFile is larger than any approval (24 SHA-512 PCRs and an
	// RSA-4096 key and signature are under 3 KiB).
	maxApprovalFile = 8 << 10
	// maxApprovals bounds the files read per purpose; an owner approves a
	// few firmware versions a year.
	maxApprovals = 256
)

const approvalExt = ".glap"

// Save writes a under dir atomically, named after its purpose, the digest
// of what it approves and its key (so approving the same values twice with
// one key keeps one file), and returns the path.
func Save(dir string, a *tpm.Approval) (string, error) {
	raw, err := a.Marshal()
	if err != nil {
		return "", err
	}
	ap, err := tpm.ApprovedPolicyDigest(a.Policy)
	if err != nil {
		return "", err
	}
	name := fmt.Sprintf("%s-%s-%.16s%s", purposeName(a.PolicyRef), hex.EncodeToString(ap[:8]), tpm.KeyFingerprint(a.Key), approvalExt)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	p := filepath.Join(dir, name)
	return p, safefile.Write(p, raw, 0o644)
}

func purposeName(ref []byte) string {
	s := strings.TrimSuffix(string(ref), tpm.EpochRefSuffix)
	if s == "" || strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-')
	}) {
		return "approval"
	}
	return s
}

// Load reads the approvals for purpose under dir (untrusted files: each
// capped and parsed; ones that do not parse are returned as errors, the
// rest are usable). Approvals whose signature does not verify are dropped
// with an error too.
func Load(dir, purpose string) ([]*tpm.Approval, []error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, []error{err}
	}
	var names []string
	for _, e := range ents {
		if n := e.Name(); e.Type().IsRegular() && strings.HasPrefix(n, purposeName([]byte(purpose))+"-") && strings.HasSuffix(n, approvalExt) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var out []*tpm.Approval
	var errs []error
	if len(names) > maxApprovals {
		errs = append(errs, fmt.Errorf("%s: %d approvals, only the first %d are read", dir, len(names), maxApprovals))
		names = names[:maxApprovals]
	}
	for _, n := range names {
		p := filepath.Join(dir, n)
		raw, err := readCapped(p, maxApprovalFile)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		a, err := tpm.ParseApproval(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
			continue
		}
		if string(a.PolicyRef) != purpose && string(a.PolicyRef) != string(tpm.EpochRef([]byte(purpose))) {
			errs = append(errs, fmt.Errorf("%s: an approval for %q, not %q", p, a.PolicyRef, purpose))
			continue
		}
		if err := a.Check(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
			continue
		}
		out = append(out, a)
	}
	return out, errs
}

func readCapped(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than an approval can be (%d bytes)", path, limit)
	}
	return b, nil
}

// Find returns the approval (by key, if key is not nil) whose values are
// exactly want's, or nil. With want.Epoch (the counter now) it skips
// approvals of an older epoch, which the TPM would refuse, and of the rest
// prefers the lowest epoch, so that using it retires no more than needed
// (Commit). The TPM decides; this only picks the candidate.
func Find(list []*tpm.Approval, want tpm.PCRPolicy, key crypto.PublicKey) *tpm.Approval {
	wantName := []byte(nil)
	if key != nil {
		wantName, _ = tpm.ApprovalKeyName(key)
	}
	var best *tpm.Approval
	for _, a := range list {
		if want.Epoch != nil && a.Policy.Epoch != nil && a.Policy.Epoch.Value < want.Epoch.Value {
			continue
		}
		if !sameValues(a.Policy, want) {
			continue
		}
		if wantName != nil {
			if n, err := tpm.ApprovalKeyName(a.Key); err != nil || !bytes.Equal(n, wantName) {
				continue
			}
		}
		if best == nil || epochOf(a) < epochOf(best) {
			best = a
		}
	}
	return best
}

// epochOf orders approvals: one without an epoch first (it is the only
// kind a secret sealed before epochs takes), then by epoch.
func epochOf(a *tpm.Approval) uint64 {
	if a.Policy.Epoch == nil {
		return 0
	}
	return a.Policy.Epoch.Value + 1
}

// Superseded counts the approvals for exactly want's values whose epoch
// the counter (want.Epoch) has passed: why no approval matched.
func Superseded(list []*tpm.Approval, want tpm.PCRPolicy) int {
	if want.Epoch == nil {
		return 0
	}
	n := 0
	for _, a := range list {
		if a.Policy.Epoch != nil && a.Policy.Epoch.Value < want.Epoch.Value && sameValues(a.Policy, want) {
			n++
		}
	}
	return n
}

func sameValues(a, b tpm.PCRPolicy) bool {
	if a.Bank != b.Bank || len(a.Values) != len(b.Values) {
		return false
	}
	for p, v := range b.Values {
		if !bytes.Equal(a.Values[p], v) {
			return false
		}
	}
	return true
}

// Describe is one line for the owner: what an approval approves.
func Describe(a *tpm.Approval) string {
	pcrs := make([]int, 0, len(a.Policy.Values))
	for p := range a.Policy.Values {
		pcrs = append(pcrs, p)
	}
	sort.Ints(pcrs)
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s PCRs", a.PolicyRef, a.Policy.Bank)
	for _, p := range pcrs {
		fmt.Fprintf(&b, " %d=%x", p, a.Policy.Values[p][:4])
	}
	if a.Policy.Epoch != nil {
		fmt.Fprintf(&b, " epoch %d", a.Policy.Epoch.Value)
	}
	fmt.Fprintf(&b, " (key %s, %s)", tpm.KeyFingerprint(a.Key)[:16], a.Scheme)
	return b.String()
}
