package boot

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/bootcfg"
	"github.com/glint-boot/glint/internal/manifest"
	"github.com/glint-boot/glint/internal/tpm"
	"github.com/glint-boot/glint/internal/tpm/swtpmtest"
)

// Issue 15 in the boot flow, on a real swtpm with real keys and /boot.

// TestFlowSetupTakesTheTPM: after set-up, code that runs after glint (a
// fresh TPM handle, as the OS would open) can no longer delete the rollback
// counter, reset the lockout or clear the TPM; the platform hierarchy was
// locked before any secret was shown.
func TestFlowSetupTakesTheTPM(t *testing.T) {
	for _, v := range []tpm.Version{tpm.Version20, tpm.Version12} {
		t.Run(v.String(), func(t *testing.T) {
			b := newBench(t, v)
			out := b.power(v, ownerPass+"\ny\n\n")
			if !strings.Contains(out, "Set-up complete") {
				t.Fatalf("set-up:\n%s", out)
			}
			osh, err := tpm.Open(swtpmtest.StartDir(t, v, b.tpmDir))
			must(t, err)
			defer osh.Close()
			if err := osh.NVUndefine(manifest.DefaultCounterIndex); !errors.Is(err, tpm.ErrOwnerAuth) {
				t.Fatalf("the OS undefines the rollback counter: %v", err)
			}
			if err := osh.ResetLockout(); !errors.Is(err, tpm.ErrOwnerAuth) {
				t.Fatalf("the OS resets the lockout: %v", err)
			}
			marks, err := osh.SetupMarks(manifest.DefaultCounterIndex)
			if err != nil || !marks.Counter || !marks.SRK {
				t.Fatalf("set-up marks: %+v, %v", marks, err)
			}
			// A normal boot locks the platform hierarchy before the code.
			out = b.power(v, "p\n")
			if !strings.Contains(out, "TOTP code:") || strings.Contains(out, "platform hierarchy") {
				t.Fatalf("normal boot:\n%s", out)
			}
		})
	}
}

// TestFlowStateRemovedIsTampering: deleting glint's state from /boot (and
// swapping the kernel) does not give a fresh OWNER SET-UP that the owner's
// passphrase would sign: the TPM remembers the set-up.
func TestFlowStateRemovedIsTampering(t *testing.T) {
	v := tpm.Version20
	b := newBench(t, v)
	b.power(v, ownerPass+"\ny\n\n")
	must(t, os.RemoveAll(filepath.Join(b.bootDir, "glint")))
	must(t, os.WriteFile(filepath.Join(b.bootDir, "vmlinuz-6.1.0-test"), []byte("evil kernel"), 0o644))
	out := b.power(v, "d\np\n")
	if strings.Contains(out, "OWNER SET-UP") || !strings.Contains(out, "GLINT STATE REMOVED") || !strings.Contains(out, "rollback counter") {
		t.Fatalf("state removed:\n%s", out)
	}
	if len(b.machine.kexecs) != 0 {
		t.Fatal("booted after glint's state was removed")
	}
}

// TestFlowResignShowsWhatIsSigned: re-signing lists the changed file with
// both hashes (after a BAD signature too) and signs nothing without "y".
func TestFlowResignShowsWhatIsSigned(t *testing.T) {
	for _, v := range []tpm.Version{tpm.Version20, tpm.Version12} {
		t.Run(v.String(), func(t *testing.T) { resignShowsWhatIsSigned(t, v) })
	}
}

func resignShowsWhatIsSigned(t *testing.T, v tpm.Version) {
	b := newBench(t, v)
	b.power(v, ownerPass+"\ny\n\n")
	mpath := filepath.Join(b.bootDir, "glint", "manifest")
	before, _ := os.ReadFile(mpath)
	kpath := filepath.Join(b.bootDir, "vmlinuz-6.1.0-test")
	must(t, os.WriteFile(kpath, []byte("a new kernel"), 0o644))
	// Break the signature as well: the re-sign screen still lists files.
	sig := filepath.Join(b.bootDir, "glint", "manifest.sig")
	sb, _ := os.ReadFile(sig)
	must(t, os.WriteFile(sig, []byte(strings.Replace(string(sb), "A", "B", 1)), 0o644))
	out := b.power(v, "s\n"+ownerPass+"\nn\np\n")
	if !strings.Contains(out, "does NOT verify") || !regexp.MustCompile(`changed "vmlinuz-6\.1\.0-test": sha256 [0-9a-f]{64} \(100000 bytes\) -> sha256 [0-9a-f]{64} \(12 bytes\)`).MatchString(out) {
		t.Fatalf("re-sign screen:\n%s", out)
	}
	if !strings.Contains(out, "not signed: the owner did not confirm") {
		t.Fatalf("signed without confirmation:\n%s", out)
	}
	if after, _ := os.ReadFile(mpath); string(after) != string(before) {
		t.Fatal("the manifest changed without confirmation")
	}
	out = b.power(v, "s\n"+ownerPass+"\ny\np\n")
	if !strings.Contains(out, "/boot signed") || !strings.Contains(out, "/boot: verified") {
		t.Fatalf("confirmed re-sign:\n%s", out)
	}
}

// TestFlowClockSetByHandLocksTOTP: the clock item no longer shows codes for
// a time someone typed in: PCR 4 moves first, and the next boot is normal.
func TestFlowClockSetByHandLocksTOTP(t *testing.T) {
	v := tpm.Version20
	b := newBench(t, v)
	b.power(v, ownerPass+"\ny\n\n")
	out := b.power(v, "t\n2031-06-01 09:00:00\no\nc\np\n")
	after := out[strings.Index(out, "clock set to"):]
	if strings.Contains(after, "TOTP code:") || !strings.Contains(after, "TOTP REFUSED") || !strings.Contains(after, "not available in this boot") {
		t.Fatalf("a code after the clock was set by hand:\n%s", after)
	}
	if out := b.power(v, "p\n"); !strings.Contains(out, "TOTP code:") {
		t.Fatalf("next boot:\n%s", out)
	}
}

// TestFlowPlatformLockedByFirmwareIsNoWrongPIN: OVMF sets the platform
// authorisation itself; glint shows the code and says nothing of a PIN.
func TestFlowPlatformLockedByFirmwareIsNoWrongPIN(t *testing.T) {
	v := tpm.Version20
	b := newBench(t, v)
	b.power(v, ownerPass+"\ny\n\n")
	b.firmwareLocksPlatform = true
	out := b.power(v, "p\n")
	if !strings.Contains(out, "TOTP code:") || strings.Contains(strings.ToLower(out), "wrong pin") || strings.Contains(out, "platform hierarchy:") {
		t.Fatalf("firmware-locked platform:\n%s", out)
	}
}

// TestVerifiedFSServesSignedBytes: the boot entries are parsed from the
// verified configuration; a grub.cfg swapped after verification cannot be
// read through it.
func TestVerifiedFSServesSignedBytes(t *testing.T) {
	v := tpm.Version20
	b := newBench(t, v)
	b.power(v, ownerPass+"\ny\n\n")
	kr, err := manifest.ReadKeyring(b.pub)
	must(t, err)
	res, err := manifest.Verify(b.bootDir, kr, nil)
	must(t, err)
	f := &Flow{BootDir: b.bootDir, manifest: res.Manifest}
	vfs := manifest.FS(res.Manifest, f.readVerified)
	d, err := bootcfg.DiscoverFS(vfs)
	if err != nil || len(d.Entries) != 1 || d.Entries[0].Cmdline != "root=/dev/vda2 ro quiet" {
		t.Fatalf("entries from the verified configuration: %+v, %v", d, err)
	}
	cfg := filepath.Join(b.bootDir, "grub", "grub.cfg")
	orig, _ := os.ReadFile(cfg)
	must(t, os.WriteFile(cfg, []byte(strings.Replace(string(orig), "quiet", "init=/bin/sh", 1)), 0o644))
	if _, err := bootcfg.DiscoverFS(manifest.FS(res.Manifest, f.readVerified)); err == nil {
		if _, err := fs.ReadFile(vfs, "grub/grub.cfg"); err == nil {
			t.Fatal("a grub.cfg swapped after verification was served")
		}
	}
}

// TestFlowLockoutSaidAndResetByOwner: the menu's lockout item says the
// state in words, and the owner's key (deriving the lockout authorisation)
// resets it; nothing else does (the OS was shown unable in
// TestFlowSetupTakesTheTPM).
func TestFlowLockoutSaidAndResetByOwner(t *testing.T) {
	v := tpm.Version20
	b := newBench(t, v)
	b.power(v, ownerPass+"\ny\n\n")
	// Wrong authorisations against a PIN-protected object until lockout.
	dev, err := tpm.Open(swtpmtest.StartDir(t, v, b.tpmDir))
	must(t, err)
	vals, err := dev.ReadPCRs(tpm.SHA256, []int{16})
	must(t, err)
	blob, err := dev.Seal([]byte("k"), tpm.PCRPolicy{Bank: tpm.SHA256, Values: vals}, []byte("right"))
	must(t, err)
	for i := 0; i < 20; i++ {
		if _, err := dev.Unseal(blob, []byte("wrong")); errors.Is(err, tpm.ErrLockout) {
			break
		}
	}
	must(t, dev.Shutdown())
	dev.Close()
	out := b.power(v, "l\n"+ownerPass+"\nl\np\n")
	if !strings.Contains(out, "The TPM is LOCKED after too many wrong PINs") || !strings.Contains(out, "TPM PIN lockout reset") {
		t.Fatalf("lockout item:\n%s", out)
	}
	after := out[strings.Index(out, "TPM PIN lockout reset"):]
	if !strings.Contains(after, "TPM PIN lockout: none") {
		t.Fatalf("not reset:\n%s", after)
	}
}
