package manifest

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

var errPowerCut = errors.New("simulated power cut")

// TestWritePowerCut stops Write after each of its steps (through writeHook:
// a real power cut cannot be scheduled in a test) and checks that what a
// reader then finds is a complete pair, old or new, that verifies.
func TestWritePowerCut(t *testing.T) {
	k := newGPGKey(t, "Owner", "ed25519")
	keyring := k.keyring(t)
	steps := []struct {
		step    string
		wantNew bool
	}{
		{"pending-manifest", false},
		{"pending-complete", false},
		{"committed", true},
		{"copied-manifest", true},
		{"copied-signature", true},
	}
	for _, s := range steps {
		t.Run(s.step, func(t *testing.T) {
			dir := makeBoot(t)
			signNoTPM(t, dir, k.signer(), 1)
			write(t, dir, "vmlinuz-6.1.0-18-amd64", "updated kernel")

			m, err := Build(dir, BuildOptions{})
			if err != nil {
				t.Fatal(err)
			}
			m.CounterIndex, m.Counter = DefaultCounterIndex, 2
			sig, err := Sign(m, k.signer())
			if err != nil {
				t.Fatal(err)
			}
			writeHook = func(step string) error {
				if step == s.step {
					return errPowerCut
				}
				return nil
			}
			err = Write(dir, m, sig)
			writeHook = nil
			if !errors.Is(err, errPowerCut) {
				t.Fatalf("hook not reached: %v", err)
			}

			res, err := Verify(dir, keyring, nil)
			if s.wantNew {
				if err != nil || res.Manifest.Counter != 2 {
					t.Fatalf("want the new pair to verify, got %v", err)
				}
			} else {
				// The old pair is intact: verifying it names the
				// kernel that changed since, nothing else.
				te := tamperOf(t, err)
				if te.BadSignature != nil || len(te.Changed) != 1 || res.Manifest.Counter != 1 {
					t.Fatalf("want the old pair, got %v", err)
				}
			}

			// The next write (after the reboot) cleans up and lands.
			m.Counter = 3
			sig, _ = Sign(m, k.signer())
			if err := Write(dir, m, sig); err != nil {
				t.Fatal(err)
			}
			if res, err := Verify(dir, keyring, nil); err != nil || res.Manifest.Counter != 3 {
				t.Fatalf("after recovery: %v", err)
			}
			left, _ := os.ReadDir(filepath.Join(dir, StateDir))
			for _, e := range left {
				if e.Name() != ManifestName && e.Name() != SignatureName {
					t.Fatalf("left behind %s", e.Name())
				}
			}
		})
	}
}

func TestReadPairRefusesHostileFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, StateDir), 0o755); err != nil {
		t.Fatal(err)
	}
	// A manifest that is a symlink to something huge is not read.
	os.Symlink("/dev/zero", filepath.Join(dir, StateDir, ManifestName))
	os.WriteFile(filepath.Join(dir, StateDir, SignatureName), []byte("x"), 0o644)
	if _, _, err := ReadPair(dir); err == nil {
		t.Fatal("read a symlinked manifest")
	}
	os.Remove(filepath.Join(dir, StateDir, ManifestName))
	os.WriteFile(filepath.Join(dir, StateDir, ManifestName), []byte("x"), 0o644)
	big := make([]byte, MaxSignatureSize+1)
	os.WriteFile(filepath.Join(dir, StateDir, SignatureName), big, 0o644)
	if _, _, err := ReadPair(dir); err == nil {
		t.Fatal("read an oversized signature")
	}
}
