package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/approval"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/sealed"
	"github.com/glint-boot/glint/internal/tpm"
	"github.com/glint-boot/glint/internal/tpm/swtpmtest"
)

// glint flash approve on a machine whose TOTP secret is bound to the
// approval epoch counter (swtpm, TPM 2.0): the approval names the
// counter and its next value, read from the machine's TPM; without the
// TPM nothing is approved and the message says why.
func TestFlashApproveAtNextEpochCLI(t *testing.T) {
	image := tpm2Image(t, 3, map[string][]byte{"glint/owner.asc": []byte("owner key\n")})
	dir := t.TempDir()
	imgFile := filepath.Join(dir, "next.rom")
	if err := os.WriteFile(imgFile, image, 0o644); err != nil {
		t.Fatal(err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "approval.pem")
	if err := approval.WriteKeyFile(keyFile, k); err != nil {
		t.Fatal(err)
	}

	// Set-up: the TOTP secret sealed with the approval key defines the
	// counter and binds the secret to it.
	spec := swtpmtest.Start(t, tpm.Version20)
	tp, err := tpm.Open(spec)
	if err != nil {
		t.Fatal(err)
	}
	bootDir := t.TempDir()
	s := sealed.New(tp, pcr.Coreboot, bootDir)
	if err := s.RecordStart(); err != nil {
		t.Fatal(err)
	}
	s.ApprovalKey = k.Public()
	if _, err := s.SealNewTOTP(); err != nil {
		t.Fatal(err)
	}
	e0, err := approval.ReadEpoch(tp)
	if err != nil {
		t.Fatal(err)
	}
	tp.Close()
	approvals := filepath.Join(dir, "approvals")

	// Without the machine's TPM: refused, nothing approved.
	out, code := glintRun("flash", "approve", "--tpm", filepath.Join(dir, "no-such-tpm"), "--boot", bootDir,
		"--approval-key-file", keyFile, "--approvals", approvals, imgFile)
	if code == 0 || !strings.Contains(out, "approval epoch counter") {
		t.Fatalf("approved without the TPM: %d\n%s", code, out)
	}
	if _, err := os.Stat(approvals); !os.IsNotExist(err) {
		t.Fatal("an approval was kept although approving failed")
	}

	out, code = glintRun("flash", "approve", "--tpm", spec, "--boot", bootDir,
		"--approval-key-file", keyFile, "--approvals", approvals, imgFile)
	if code != 0 {
		t.Fatalf("approve: %d\n%s", code, out)
	}
	list, errs := approval.Load(approvals, approval.PurposeTOTP)
	if len(list) != 1 || len(errs) != 0 {
		t.Fatalf("approvals %v %v", list, errs)
	}
	a := list[0]
	if a.Policy.Epoch == nil || a.Policy.Epoch.Index != approval.EpochIndex || a.Policy.Epoch.Value != e0.Value+1 ||
		string(a.Policy.Epoch.Name) != string(e0.Name) || string(a.PolicyRef) != "glint-totp"+tpm.EpochRefSuffix {
		t.Fatalf("approved %s (epoch %+v, ref %q), want epoch %d of counter 0x%08x", approval.Describe(a), a.Policy.Epoch, a.PolicyRef, e0.Value+1, approval.EpochIndex)
	}
	if !strings.Contains(out, "epoch ") {
		t.Errorf("the output does not name the epoch:\n%s", out)
	}

	// Another update approved before the first one booted: approved past
	// it, so that the later update's first boot retires the earlier one.
	other := filepath.Join(dir, "other.rom")
	if err := os.WriteFile(other, tpm2Image(t, 4, map[string][]byte{"glint/owner.asc": []byte("owner key\n")}), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = glintRun("flash", "approve", "--tpm", spec, "--boot", bootDir,
		"--approval-key-file", keyFile, "--approvals", approvals, other)
	if code != 0 {
		t.Fatalf("approve another: %d\n%s", code, out)
	}
	list, _ = approval.Load(approvals, approval.PurposeTOTP)
	var epochs []uint64
	for _, a := range list {
		epochs = append(epochs, a.Policy.Epoch.Value)
	}
	if len(list) != 2 || !slices.Contains(epochs, e0.Value+1) || !slices.Contains(epochs, e0.Value+2) {
		t.Fatalf("approval epochs %v, want %d and %d", epochs, e0.Value+1, e0.Value+2)
	}
}
