package sealed

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/glint-boot/glint/internal/luks"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/seal"
	"github.com/glint-boot/glint/internal/tpm"
	"github.com/glint-boot/glint/internal/tpm/swtpmtest"
)

const luksPass = "recovery passphrase"

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// luksImage formats a real LUKS2 volume in a file with cryptsetup (fast
// PBKDF so the test takes milliseconds, not seconds).
func luksImage(t *testing.T) string {
	t.Helper()
	cs, err := exec.LookPath("cryptsetup")
	if err != nil {
		t.Skip("cryptsetup not installed (make deps installs it)")
	}
	img := filepath.Join(t.TempDir(), "disk.img")
	must(t, os.WriteFile(img, nil, 0o600))
	must(t, os.Truncate(img, 32<<20))
	c := exec.Command(cs, "luksFormat", "--type", "luks2", "--batch-mode", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--key-file", "-", img)
	c.Stdin = strings.NewReader(luksPass)
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("luksFormat: %v\n%s", err, out)
	}
	return img
}

// workstation is the state the CLI verbs build on a running system: the
// TPM (a real swtpm on tpmDir, power-cycled by starting it), PCR 4 as it
// is now.
func workstation(t *testing.T, v tpm.Version, tpmDir, bootDir string) (*State, tpm.TPM) {
	t.Helper()
	tp, err := tpm.Open(swtpmtest.StartDir(t, v, tpmDir))
	must(t, err)
	// The OS sends TPM2_Shutdown at every clean reboot; without it each
	// power cycle after using a PIN-protected object counts as a failed
	// authorisation (TPM 2.0 Part 1, 19.8.6).
	t.Cleanup(func() { tp.Shutdown(); tp.Close() })
	s := New(tp, pcr.Coreboot, bootDir)
	must(t, s.RecordStart())
	return s, tp
}

func TestDiskSealUnseal(t *testing.T) {
	for _, v := range []tpm.Version{tpm.Version20, tpm.Version12} {
		t.Run(v.String(), func(t *testing.T) {
			img := luksImage(t)
			bootDir, tpmDir := t.TempDir(), t.TempDir()
			s, _ := workstation(t, v, tpmDir, bootDir)
			rec, err := s.SealDisk(img, []byte(luksPass), nil, "root_crypt")
			if err != nil {
				t.Fatalf("seal: %v", err)
			}
			if rec.Extra["slot"] != "31" {
				t.Errorf("key in slot %s, want 31 (Heads' LUKS2 slot)", rec.Extra["slot"])
			}
			// Power cycle (PCRs reset), then unseal as the boot does.
			s, _ = workstation(t, v, tpmDir, bootDir)
			key, err := s.UnsealDiskOn(img, nil)
			if err != nil {
				t.Fatalf("unseal: %v", err)
			}
			if err := luks.TestKey(img, key); err != nil {
				t.Fatalf("unsealed key does not open the volume: %v", err)
			}
			// The key cpio the OS initrd gets holds the key and a crypttab
			// entry under the recorded name (an initrd glint cannot read:
			// both dialects).
			cp, err := DiskKeyCpio(key, bytes.NewReader(nil), rec)
			must(t, err)
			files := cpioFiles(t, cp)
			if !bytes.Equal(files["secret.key"], key) || !strings.Contains(string(files["cryptroot/crypttab"]), "root_crypt UUID="+rec.Extra["uuid"]) {
				t.Fatalf("key cpio lacks the key or the crypttab entry: %q", files["cryptroot/crypttab"])
			}
		})
	}
}

func TestDiskKeyWithheld(t *testing.T) {
	v := tpm.Version20
	img := luksImage(t)
	bootDir, tpmDir := t.TempDir(), t.TempDir()
	s, _ := workstation(t, v, tpmDir, bootDir)
	if _, err := s.SealDisk(img, []byte(luksPass), []byte("1234"), ""); err != nil {
		t.Fatalf("seal: %v", err)
	}

	t.Run("wrong PIN", func(t *testing.T) {
		s, _ := workstation(t, v, tpmDir, bootDir)
		_, err := s.UnsealDiskOn(img, []byte("9999"))
		if !errors.Is(err, tpm.ErrAuthFail) {
			t.Fatalf("wrong PIN: got %v, want ErrAuthFail", err)
		}
	})
	t.Run("right PIN", func(t *testing.T) {
		s, _ := workstation(t, v, tpmDir, bootDir)
		if _, err := s.UnsealDiskOn(img, []byte("1234")); err != nil {
			t.Fatalf("right PIN: %v", err)
		}
	})
	t.Run("firmware PCR changed", func(t *testing.T) {
		s, tp := workstation(t, v, tpmDir, bootDir)
		must(t, tp.Extend(2, []byte("other firmware")))
		_, err := s.UnsealDiskOn(img, []byte("1234"))
		var me *seal.MismatchError
		if !errors.As(err, &me) || len(me.PCRs()) != 1 || me.PCRs()[0] != 2 {
			t.Fatalf("changed PCR 2: got %v", err)
		}
	})
	t.Run("LUKS header changed", func(t *testing.T) {
		s, _ := workstation(t, v, tpmDir, bootDir)
		c := exec.Command("cryptsetup", "luksAddKey", "--batch-mode", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--key-file", "/dev/fd/3", img, "/dev/fd/4")
		r1, w1, _ := os.Pipe()
		r2, w2, _ := os.Pipe()
		c.ExtraFiles = []*os.File{r1, r2}
		w1.WriteString(luksPass)
		w1.Close()
		w2.WriteString("attacker passphrase")
		w2.Close()
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("luksAddKey: %v\n%s", err, out)
		}
		_, err := s.UnsealDiskOn(img, []byte("1234"))
		var ce *luks.ChangedError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), "keyslot") {
			t.Fatalf("changed header: got %v, want a ChangedError naming the keyslot", err)
		}
	})
	t.Run("no record", func(t *testing.T) {
		s, _ := workstation(t, v, tpmDir, t.TempDir())
		if _, err := s.UnsealDiskOn(img, nil); !errors.Is(err, seal.ErrNotSealed) {
			t.Fatalf("no record: got %v, want ErrNotSealed", err)
		}
	})
}

// cpioFiles reads a newc archive back with u-root's reader.
func cpioFiles(t *testing.T, archive []byte) map[string][]byte {
	t.Helper()
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(archive)))
	must(t, err)
	out := map[string][]byte{}
	for _, r := range recs {
		b := make([]byte, r.FileSize)
		if r.FileSize > 0 {
			if _, err := r.ReaderAt.ReadAt(b, 0); err != nil {
				t.Fatal(err)
			}
		}
		out[strings.TrimPrefix(r.Name, "/")] = b
	}
	return out
}
