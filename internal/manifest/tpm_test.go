package manifest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/tpm"
	"github.com/glint-boot/glint/internal/tpm/swtpmtest"
)

func openSWTPM(t *testing.T, v tpm.Version) tpm.TPM {
	t.Helper()
	dev, err := tpm.Open(swtpmtest.Start(t, v))
	if errors.Is(err, tpm.ErrUnsupported) {
		t.Skipf("internal/tpm cannot drive a %v yet: %v", v, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	return dev
}

func TestSignBootWithTPM(t *testing.T) {
	for _, v := range []tpm.Version{tpm.Version20, tpm.Version12} {
		t.Run(v.String(), func(t *testing.T) {
			dev := openSWTPM(t, v)
			k := newGPGKey(t, "Owner", "ed25519")
			dir := makeBoot(t)
			m1, err := SignBoot(dir, k.signer(), dev, SignOptions{Default: "debian"})
			if errors.Is(err, tpm.ErrUnsupported) {
				t.Skipf("%v: the tpm package has no monotonic counter for this family yet: %v", v, err)
			}
			if err != nil {
				t.Fatal(err)
			}
			res, err := Verify(dir, k.keyring(t), dev)
			if err != nil {
				t.Fatal(err)
			}
			if !res.CounterChecked || res.Manifest.Counter != m1.Counter || res.Manifest.Default != "debian" {
				t.Fatalf("%+v", res)
			}
			// Signing again moves the counter by one and keeps the default.
			m2, err := SignBoot(dir, k.signer(), dev, SignOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if m2.Counter != m1.Counter+1 || m2.Default != "debian" || m2.CounterIndex != DefaultCounterIndex {
				t.Fatalf("second signing: %+v after %+v", m2, m1)
			}
			if _, err := Verify(dir, k.keyring(t), dev); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestRollback: sign, keep a copy of the whole /boot, update the kernel,
// sign again, put the old /boot back. Everything in it is validly signed,
// and only the counter tells it is old.
func TestRollback(t *testing.T) {
	dev := openSWTPM(t, tpm.Version20)
	k := newGPGKey(t, "Owner", "ed25519")
	dir := makeBoot(t)
	m1, err := SignBoot(dir, k.signer(), dev, SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(t.TempDir(), "old")
	cp(t, dir, old)
	write(t, dir, "vmlinuz-6.1.0-18-amd64", "patched kernel")
	if _, err := SignBoot(dir, k.signer(), dev, SignOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = Verify(old, k.keyring(t), dev)
	te := tamperOf(t, err)
	if te.Rollback == nil || te.Rollback.Manifest != m1.Counter || te.Rollback.TPM != m1.Counter+1 {
		t.Fatalf("want a rollback from %d to %d, got %v", m1.Counter+1, m1.Counter, err)
	}
	if len(te.Changed)+len(te.Added)+len(te.Removed) != 0 || te.BadSignature != nil {
		t.Fatalf("the old /boot is consistent in itself; only the counter may be reported: %v", te)
	}
	if !strings.Contains(te.Error(), "counter ahead") {
		t.Fatalf("message: %v", te)
	}
	// Restoring only the old pair over the new files: rollback and the
	// kernel named.
	os.RemoveAll(filepath.Join(dir, StateDir))
	cp(t, filepath.Join(old, StateDir), filepath.Join(dir, StateDir))
	_, err = Verify(dir, k.keyring(t), dev)
	te = tamperOf(t, err)
	if te.Rollback == nil || len(te.Changed) != 1 || te.Changed[0].Path != "vmlinuz-6.1.0-18-amd64" {
		t.Fatalf("%v", te)
	}
}

// TestInterruptedSigning: the TPM was incremented and the power went before
// the manifest was written. Verify explains and signing again recovers.
func TestInterruptedSigning(t *testing.T) {
	dev := openSWTPM(t, tpm.Version20)
	k := newGPGKey(t, "Owner", "ed25519")
	dir := makeBoot(t)
	if _, err := SignBoot(dir, k.signer(), dev, SignOptions{}); err != nil {
		t.Fatal(err)
	}
	writeHook = func(step string) error {
		if step == "pending-manifest" {
			return errPowerCut
		}
		return nil
	}
	_, err := SignBoot(dir, k.signer(), dev, SignOptions{})
	writeHook = nil
	if !errors.Is(err, errPowerCut) {
		t.Fatalf("hook not reached: %v", err)
	}
	_, err = Verify(dir, k.keyring(t), dev)
	te := tamperOf(t, err)
	if te.Rollback == nil || !strings.Contains(te.Error(), "interrupted") {
		t.Fatalf("%v", err)
	}
	if _, err := SignBoot(dir, k.signer(), dev, SignOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(dir, k.keyring(t), dev); err != nil {
		t.Fatal(err)
	}
}

// TestFailedSignatureLeavesCounter: a wrong PIN must not move the counter,
// or the old, still valid manifest would stop verifying.
func TestFailedSignatureLeavesCounter(t *testing.T) {
	dev := openSWTPM(t, tpm.Version20)
	k := newGPGKey(t, "Owner", "ed25519")
	dir := makeBoot(t)
	if _, err := SignBoot(dir, k.signer(), dev, SignOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := SignBoot(dir, &GPG{Home: k.home, KeyID: "0000000000000000"}, dev, SignOptions{}); err == nil {
		t.Fatal("signed with a key that does not exist")
	}
	if _, err := Verify(dir, k.keyring(t), dev); err != nil {
		t.Fatalf("old manifest no longer verifies: %v", err)
	}
}

func TestReadHeadsCounter(t *testing.T) {
	dev := openSWTPM(t, tpm.Version20)
	const idx = 0x01a2b3c4 // as Heads would name it: counter-1a2b3c4
	if err := dev.NVDefine(tpm.NVSpace{Index: idx, Size: 8, Counter: true}); err != nil {
		t.Fatal(err)
	}
	v, err := dev.CounterIncrement(idx)
	if err != nil {
		t.Fatal(err)
	}
	k := newGPGKey(t, "Owner", "ed25519")
	dir := headsBoot(t)
	headsSign(t, dir, k, v, false)
	h, err := ReadHeads(dir, k.keyring(t), dev)
	if err != nil || !h.CounterChecked {
		t.Fatalf("%+v %v", h, err)
	}
	if _, err := dev.CounterIncrement(idx); err != nil {
		t.Fatal(err)
	}
	_, err = ReadHeads(dir, k.keyring(t), dev)
	te := tamperOf(t, err)
	if te.Rollback == nil || te.Rollback.Manifest != v || te.Rollback.TPM != v+1 {
		t.Fatalf("%v", err)
	}
}

func cp(t *testing.T, from, to string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", from, to).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
}

// TestCounterMissing: a /boot signed on one TPM, verified on another with no
// rollback counter (or on the same after a clear): not a tamper finding but
// an error that says what a missing counter means, in the words the boot
// menu and glint verify both show.
func TestCounterMissing(t *testing.T) {
	signed, other := openSWTPM(t, tpm.Version20), openSWTPM(t, tpm.Version20)
	k := newGPGKey(t, "Owner", "ed25519")
	dir := makeBoot(t)
	if _, err := SignBoot(dir, k.signer(), signed, SignOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := Verify(dir, k.keyring(t), other)
	var te *TamperError
	if !errors.Is(err, tpm.ErrNotDefined) || errors.As(err, &te) || !strings.Contains(err.Error(), "rollback counter of the signed /boot does not exist: the TPM was cleared or replaced") {
		t.Fatalf("verify on a TPM without the counter: %v", err)
	}
}
