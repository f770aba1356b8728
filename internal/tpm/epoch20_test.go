package tpm_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/tpm"
)

const testEpochIndex = 0x0180474f

// An approval cannot be replayed once a newer one was used (swtpm): the
// secret is sealed at epoch E0; the owner approves the next firmware at
// E0+1, which opens it while the counter still reads E0 (the update is not
// committed) and after the counter moved to E0+1 (its first boot); from
// then on the sealed-to state and every approval of epoch E0, the firmware
// the owner left behind, are refused, by name in Go and by the TPM.
func TestApprovalEpochRefusesOlderApprovals20(t *testing.T) {
	dev := start20(t)
	auth := dev.(tpm.Authorizer)
	ec := dev.(tpm.EpochCounter)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.NVDefine(tpm.NVSpace{Index: testEpochIndex, Counter: true}); err != nil {
		t.Fatal(err)
	}
	e0, err := ec.ReadEpoch(testEpochIndex)
	if err != nil {
		t.Fatal(err)
	}
	pcrs := []int{0, 2, 4, 7}
	secret := []byte("totp secret bound to an epoch")
	old := currentPolicy(t, dev, tpm.SHA256, pcrs...)
	old.Epoch = e0
	blob, err := auth.SealAuthorized(secret, key.Public(), totpRef, old, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := auth.UnsealAuthorized(blob, nil, nil); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("sealed-to state at its epoch: %q %v", got, err)
	}
	if e, err := tpm.AuthorizedBlobEpoch(blob); err != nil || e == nil || e.Value != e0.Value {
		t.Fatalf("the blob's epoch: %+v %v", e, err)
	}

	// An approval from before epochs (PolicyPCR alone) of the very same
	// values is refused: it could be replayed forever.
	plain := currentPolicy(t, dev, tpm.SHA256, pcrs...)
	legacy, err := tpm.SignApproval(plain, totpRef, key, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.UnsealAuthorized(blob, legacy, nil); !errors.Is(err, tpm.ErrApproval) || !strings.Contains(err.Error(), "before approval epochs") {
		t.Fatalf("a pre-epoch approval: %v", err)
	}

	// The owner approves the current firmware at E0 (an old approval) and
	// the next one, PCR 2 changed, at E0+1.
	atE0 := currentPolicy(t, dev, tpm.SHA256, pcrs...)
	atE0.Epoch = e0
	oldApproval, err := tpm.SignApproval(atE0, totpRef, key, false)
	if err != nil {
		t.Fatal(err)
	}
	next := tpm.PCRPolicy{Bank: tpm.SHA256, Values: map[int][]byte{}, Epoch: &tpm.Epoch{Index: e0.Index, Name: e0.Name, Value: e0.Value + 1}}
	for p, v := range old.Values {
		next.Values[p] = v
	}
	next.Values[2] = extendSim(tpm.SHA256, old.Values[2], []byte("firmware 2"))
	newApproval, err := tpm.SignApproval(next, totpRef, key, false)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := auth.UnsealAuthorized(blob, oldApproval, nil); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("the old approval before any newer one was used: %q %v", got, err)
	}

	// The new firmware boots (PCR 2) and its approval opens the secret
	// although the counter still reads E0; its first boot commits E0+1.
	if err := dev.Extend(2, []byte("firmware 2")); err != nil {
		t.Fatal(err)
	}
	if got, err := auth.UnsealAuthorized(blob, newApproval, nil); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("the new approval before its commit: %q %v", got, err)
	}
	if _, err := dev.CounterIncrement(testEpochIndex); err != nil {
		t.Fatal(err)
	}
	if got, err := auth.UnsealAuthorized(blob, newApproval, nil); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("the new approval after its commit: %q %v", got, err)
	}

	// An approval of the new firmware's values made at the old epoch (a
	// copy an attacker kept) is refused, by Go first...
	stale := next
	stale.Epoch = e0
	staleApproval, err := tpm.SignApproval(stale, totpRef, key, false)
	if err != nil {
		t.Fatal(err)
	}
	var pe *tpm.PolicyError
	if _, err := auth.UnsealAuthorized(blob, staleApproval, nil); !errors.As(err, &pe) || !errors.Is(err, tpm.ErrEpochPassed) {
		t.Fatalf("an approval of an older epoch: %v", err)
	}
	// ...and by the TPM itself, with the Go check switched off: PolicyNV
	// fails (TPM_RC_POLICY), the secret stays sealed.
	tpm.SkipEpochPrecheck(t)
	if _, err := auth.UnsealAuthorized(blob, staleApproval, nil); !errors.As(err, &pe) || !strings.Contains(err.Error(), "TPM2_PolicyNV failed") {
		t.Fatalf("the TPM's refusal of an older epoch: %v", err)
	}
	if got, err := auth.UnsealAuthorized(blob, newApproval, nil); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("the current approval without the Go check: %q %v", got, err)
	}
	tpm.RestoreEpochPrecheck()
	if _, err := dev.CounterIncrement(testEpochIndex); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.UnsealAuthorized(blob, newApproval, nil); !errors.As(err, &pe) {
		t.Fatalf("an approval whose epoch passed: %v", err)
	}

	// Putting back the old firmware (PCR 2 cannot be undone in a running
	// TPM, so: a secret sealed at the old epoch in the state now) is
	// refused in its sealed-to state too, and so is the old approval.
	now := currentPolicy(t, dev, tpm.SHA256, pcrs...)
	if _, err := auth.UnsealAuthorized(blob, oldApproval, nil); !errors.As(err, &pe) || !errors.Is(err, tpm.ErrEpochPassed) {
		t.Fatalf("the old firmware's approval after the update: %v", err)
	}
	now.Epoch = e0
	if _, err := auth.SealAuthorized(secret, key.Public(), totpRef, now, nil); !errors.Is(err, tpm.ErrEpochPassed) {
		t.Fatalf("sealing to an epoch the counter passed: %v", err)
	}
	cur, err := ec.ReadEpoch(testEpochIndex)
	if err != nil {
		t.Fatal(err)
	}
	now.Epoch = cur
	blob2, err := auth.SealAuthorized(secret, key.Public(), totpRef, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dev.CounterIncrement(testEpochIndex); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.UnsealAuthorized(blob2, nil, nil); !errors.As(err, &pe) || !errors.Is(err, tpm.ErrEpochPassed) {
		t.Fatalf("the sealed-to state after the epoch passed: %v", err)
	}
}

// A blob sealed before epochs (version 1) keeps working with the approvals
// it always took.
func TestApprovalEpochKeepsOldBlobs20(t *testing.T) {
	dev := start20(t)
	auth := dev.(tpm.Authorizer)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pol := currentPolicy(t, dev, tpm.SHA256, 0, 7)
	blob, err := auth.SealAuthorized([]byte("old"), key.Public(), totpRef, pol, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := tpm.AuthorizedBlobEpoch(blob); err != nil || e != nil {
		t.Fatalf("a blob without an epoch: %+v %v", e, err)
	}
	a, err := tpm.SignApproval(pol, totpRef, key, false)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := auth.UnsealAuthorized(blob, a, nil); err != nil || string(got) != "old" {
		t.Fatalf("an old blob with an old approval: %q %v", got, err)
	}
}
