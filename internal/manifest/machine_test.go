package manifest

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/tpm"
)

// newMachine is one TPM set up by glint (PrepareOwnership). swtpmtest's TPMs
// share their seeds within a test run, so a second machine clears its TPM
// first: a new owner seed, a new SRK, another identity, as a real second
// laptop has.
func newMachine(t *testing.T, v tpm.Version, other bool) tpm.TPM {
	t.Helper()
	dev := openSWTPM(t, v)
	if other {
		if err := dev.Clear(); err != nil {
			t.Fatal(err)
		}
	}
	if err := dev.PrepareOwnership(); err != nil {
		t.Fatal(err)
	}
	return dev
}

// counterTo increments dev's counter until it reads want (both machines of
// one owner at the same counter value: the case the counter cannot catch).
func counterTo(t *testing.T, dev tpm.TPM, want uint64) {
	t.Helper()
	v, err := dev.CounterRead(DefaultCounterIndex)
	if err != nil {
		if err := dev.NVDefine(tpm.NVSpace{Index: DefaultCounterIndex, Counter: true}); err != nil {
			t.Fatal(err)
		}
		if v, err = dev.CounterIncrement(DefaultCounterIndex); err != nil {
			t.Fatal(err)
		}
	}
	for v < want && want > 0 {
		if v, err = dev.CounterIncrement(DefaultCounterIndex); err != nil {
			t.Fatal(err)
		}
	}
	if v > want && want > 1 {
		t.Fatalf("counter at %d, past %d", v, want)
	}
}

// TestForeignBootRefused: an organisation signs two machines with one owner
// key. /boot copied from machine A to machine B, whose counter has the same
// value, verified on B before; now it names "another machine's TPM".
func TestForeignBootRefused(t *testing.T) {
	for _, v := range []tpm.Version{tpm.Version20, tpm.Version12} {
		t.Run(v.String(), func(t *testing.T) {
			a := newMachine(t, v, false)
			b := newMachine(t, v, true)
			ida, _ := a.Identity()
			idb, _ := b.Identity()
			if ida.String() == idb.String() {
				t.Fatal("the two machines have one identity: the test cannot tell them apart")
			}
			k := newGPGKey(t, "Owner", "ed25519")
			bootA := makeBoot(t)
			counterTo(t, b, 1) // define B's counter
			bNow, _ := b.CounterRead(DefaultCounterIndex)
			var m *Manifest
			for m == nil || m.Counter < bNow {
				var err error
				if m, err = SignBoot(bootA, k.signer(), a, SignOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			if m.Machine == nil || m.Machine.String() != ida.String() {
				t.Fatalf("signed manifest names %v, want %v", m.Machine, ida)
			}
			text, _, _ := ReadPair(bootA)
			if !bytes.HasPrefix(text, []byte("glint-manifest 2\ncounter ")) || !bytes.Contains(text, []byte("\nmachine "+ida.String()+"\n")) {
				t.Fatalf("manifest text:\n%s", text[:200])
			}
			res, err := Verify(bootA, k.keyring(t), a)
			if err != nil || !res.MachineChecked || res.Unbound {
				t.Fatalf("on its own machine: %+v, %v", res, err)
			}

			counterTo(t, b, m.Counter)
			_, err = Verify(bootA, k.keyring(t), b) // the disk moved to B
			te := tamperOf(t, err)
			if te.Foreign == nil || te.Rollback != nil || te.Foreign.This.String() != idb.String() {
				t.Fatalf("on another machine at the same counter: %v", te)
			}
			msg := err.Error()
			if !strings.Contains(msg, "signed for another machine's TPM") || !strings.Contains(msg, ida.Short()) || !strings.Contains(msg, idb.Short()) || strings.Contains(msg, "TPM cleared") {
				t.Fatalf("message: %s", msg)
			}
		})
	}
}

// TestForeignBootChangedNamesFiles: /boot signed on machine A, changed, and
// found on machine B whose TPM has no counter at all: the report names the
// foreign binding and the changed file both.
func TestForeignBootChangedNamesFiles(t *testing.T) {
	a := newMachine(t, tpm.Version20, false)
	b := newMachine(t, tpm.Version20, true)
	k := newGPGKey(t, "Owner", "ed25519")
	boot := makeBoot(t)
	if _, err := SignBoot(boot, k.signer(), a, SignOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.CounterRead(DefaultCounterIndex); err == nil {
		t.Fatal("machine B already has a counter: the test needs one without")
	}
	const victim = "grub/grub.cfg"
	if err := os.WriteFile(filepath.Join(boot, filepath.FromSlash(victim)), []byte("menuentry evil {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Verify(boot, k.keyring(t), b)
	te := tamperOf(t, err)
	if te.Foreign == nil || len(te.Changed) != 1 || te.Changed[0].Path != victim {
		t.Fatalf("foreign and changed: %+v", te)
	}
}

// TestUnboundManifest: a manifest signed before the TPM was set up (or by
// an older glint, format 1) verifies as before and says it is unbound.
func TestUnboundManifest(t *testing.T) {
	dev := openSWTPM(t, tpm.Version20) // no PrepareOwnership: no identity
	k := newGPGKey(t, "Owner", "ed25519")
	dir := makeBoot(t)
	m, err := SignBoot(dir, k.signer(), dev, SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	text, _, _ := ReadPair(dir)
	if m.Machine != nil || !bytes.HasPrefix(text, []byte("glint-manifest 1\n")) {
		t.Fatalf("unbound manifest:\n%s", text[:80])
	}
	res, err := Verify(dir, k.keyring(t), dev)
	if err != nil || !res.Unbound || res.MachineChecked {
		t.Fatalf("%+v, %v", res, err)
	}
	// Once the TPM is set up, the next signing binds.
	if err := dev.PrepareOwnership(); err != nil {
		t.Fatal(err)
	}
	if m, err = SignBoot(dir, k.signer(), dev, SignOptions{}); err != nil || m.Machine == nil {
		t.Fatalf("after set-up: %+v, %v", m, err)
	}
}

// TestMachineLineParsing: the version 2 line is where it must be and well
// formed; a version 1 manifest cannot carry it.
func TestMachineLineParsing(t *testing.T) {
	id := tpm.Identity{Kind: tpm.IdentitySRKName}
	id.Digest[3] = 9
	m := &Manifest{CounterIndex: DefaultCounterIndex, Counter: 3, Machine: &id}
	good := m.Marshal()
	got, err := Parse(good)
	if err != nil || got.Machine == nil || *got.Machine != id {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for name, bad := range map[string]string{
		"machine in version 1":   strings.Replace(string(good), "glint-manifest 2", "glint-manifest 1", 1),
		"version 2 without line": strings.Replace(string(good), "machine "+id.String()+"\n", "", 1),
		"bad identity":           strings.Replace(string(good), id.String(), "tpm2-srk-name:00", 1),
		"version 3":              strings.Replace(string(good), "glint-manifest 2", "glint-manifest 3", 1),
	} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Errorf("%s: %v is not a ParseError", name, err)
			}
		}
	}
}
