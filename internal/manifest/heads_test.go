package manifest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// headsSign signs dir exactly as Heads' kexec-sign-config.sh -u -r does,
// with the same shell pipelines (find, xargs, sha256sum, sort -z, gpg). The
// TPM counter read is replaced by the text tpmr prints for value counter.
func headsSign(t *testing.T, dir string, k *testKey, counter uint64, legacy bool) {
	t.Helper()
	script := `set -e -o pipefail
cd "$BOOT"
printf '%s\n' 'Debian GNU/Linux|elf|kernel /vmlinuz-6.1.0-18-amd64|initrd /initrd.img-6.1.0-18-amd64|append root=/dev/mapper/root ro quiet' > kexec_default.1.txt
sha256sum ./vmlinuz-6.1.0-18-amd64 ./initrd.img-6.1.0-18-amd64 > kexec_default_hashes.txt
find ./ -type f ! -path './kexec*' -print0 | xargs -0 sha256sum > kexec_hashes.txt
find ./ ! -path './kexec*' -print0 | sort -z > kexec_tree.txt
printf '1a2b3c4: %016x\n' "$COUNTER" > "$TMPC/counter-1a2b3c4"
(cd "$TMPC" && sha256sum counter-1a2b3c4) | sed 's|  |  /tmp/|' > kexec_rollback.txt
if [ "$LEGACY" = 1 ]; then
  sha256sum kexec*.txt | sed 's|  |  /boot/|' | gpg --homedir "$GH" --digest-algo SHA256 --detach-sign -a > kexec.sig
else
  sha256sum kexec*.txt | gpg --homedir "$GH" --digest-algo SHA256 --detach-sign -a > kexec.sig
fi
`
	cmd := exec.Command("bash", "-c", script)
	l := "0"
	if legacy {
		l = "1"
	}
	cmd.Env = append(os.Environ(), "BOOT="+dir, "GH="+k.home, "COUNTER="+itoa(int(counter)), "LEGACY="+l, "TMPC="+t.TempDir(), "LC_ALL=C")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("heads signing script: %v\n%s", err, out)
	}
}

func headsBoot(t *testing.T) string {
	dir := makeBoot(t)
	// Heads refuses odd names (assert_signable) and gpg/find see them the
	// same anyway; keep the tree Heads-signable.
	os.Remove(filepath.Join(dir, "odd name\twith\\bytes\xff"))
	return dir
}

func TestReadHeads(t *testing.T) {
	k := newGPGKey(t, "Owner", "rsa3072")
	for _, legacy := range []bool{false, true} {
		name := "current"
		if legacy {
			name = "legacy /boot/ paths"
		}
		t.Run(name, func(t *testing.T) {
			dir := headsBoot(t)
			headsSign(t, dir, k, 9, legacy)
			h, err := ReadHeads(dir, k.keyring(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			if h.Legacy != legacy || h.CounterIndex != 0x1a2b3c4 || h.CounterChecked {
				t.Fatalf("%+v", h)
			}
			if d := h.Defaults["kexec_default.1.txt"]; !strings.HasPrefix(d, "Debian GNU/Linux|elf|kernel /vmlinuz") {
				t.Fatalf("default %q", d)
			}
			// Migration: the same /boot in glint's format, signed and verified.
			m := h.ToManifest()
			m.CounterIndex, m.Counter = DefaultCounterIndex, 1
			sig, err := Sign(m, k.signer())
			if err != nil {
				t.Fatal(err)
			}
			if err := Write(dir, m, sig); err != nil {
				t.Fatal(err)
			}
			if _, err := Verify(dir, k.keyring(t), nil); err != nil {
				t.Fatal(err)
			}
			// glint's state dir does not upset the Heads check.
			if _, err := ReadHeads(dir, k.keyring(t), nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestReadHeadsTamper(t *testing.T) {
	k := newGPGKey(t, "Owner", "ed25519")
	other := newGPGKey(t, "Other", "ed25519")
	cases := []struct {
		name   string
		tamper func(dir string)
		check  func(te *TamperError) bool
	}{
		{"changed", func(dir string) { os.WriteFile(filepath.Join(dir, "grub/grub.cfg"), []byte("evil"), 0o644) },
			func(te *TamperError) bool { return len(te.Changed) == 1 && te.Changed[0].Path == "grub/grub.cfg" }},
		{"added", func(dir string) { os.WriteFile(filepath.Join(dir, "evil.efi"), []byte("x"), 0o644) },
			func(te *TamperError) bool { return len(te.Added) == 1 && te.Added[0].Path == "evil.efi" }},
		{"added dir", func(dir string) { os.Mkdir(filepath.Join(dir, "evil"), 0o755) },
			func(te *TamperError) bool { return len(te.Added) == 1 && te.Added[0].Path == "evil" }},
		{"removed", func(dir string) { os.Remove(filepath.Join(dir, "config-6.1.0-18-amd64")) },
			func(te *TamperError) bool {
				return len(te.Removed) == 1 && te.Removed[0].Path == "config-6.1.0-18-amd64"
			}},
		{"removed symlink", func(dir string) { os.Remove(filepath.Join(dir, "vmlinuz")) },
			func(te *TamperError) bool { return len(te.Removed) == 1 && te.Removed[0].Path == "vmlinuz" }},
		{"hashes edited", func(dir string) {
			p := filepath.Join(dir, "kexec_hashes.txt")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, append(b, []byte(strings.Repeat("0", 64)+"  ./evil\n")...), 0o644)
		}, func(te *TamperError) bool { return te.BadSignature != nil }},
		{"default edited", func(dir string) {
			os.WriteFile(filepath.Join(dir, "kexec_default.1.txt"), []byte("Evil|elf|kernel /evil\n"), 0o644)
		}, func(te *TamperError) bool { return te.BadSignature != nil }},
		{"signed file added", func(dir string) {
			os.WriteFile(filepath.Join(dir, "kexec_iso_add.txt"), []byte("init=/bin/sh\n"), 0o644)
		}, func(te *TamperError) bool { return te.BadSignature != nil }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := headsBoot(t)
			headsSign(t, dir, k, 3, false)
			c.tamper(dir)
			_, err := ReadHeads(dir, k.keyring(t), nil)
			if te := tamperOf(t, err); !c.check(te) {
				t.Fatalf("wrong report: %v", te)
			}
		})
	}
	t.Run("wrong key", func(t *testing.T) {
		dir := headsBoot(t)
		headsSign(t, dir, other, 3, false)
		_, err := ReadHeads(dir, k.keyring(t), nil)
		if te := tamperOf(t, err); te.UnknownKey != other.keyring(t)[0].PrimaryKey.KeyId {
			t.Fatalf("%v", te)
		}
	})
	t.Run("not heads", func(t *testing.T) {
		if _, err := ReadHeads(makeBoot(t), k.keyring(t), nil); err == nil || !strings.Contains(err.Error(), "not signed by Heads") {
			t.Fatalf("%v", err)
		}
	})
}

func TestParseHeadsFiles(t *testing.T) {
	h := strings.Repeat("ab", 32)
	got, err := ParseHeadsHashes([]byte(h + "  ./a b\n\\" + h + "  ./x\\\\y\\nz\n" + h + " *./bin\n"))
	if err != nil || len(got) != 3 || got[0].Path != "a b" || got[1].Path != "x\\y\nz" || got[2].Path != "bin" {
		t.Fatalf("%+v %v", got, err)
	}
	for _, bad := range []string{h + " ./a\n", h + "  a\n", h + "  ./../x\n", "zz" + h[2:] + "  ./a\n", h + "  ./a\n" + h + "  ./a\n"} {
		_, err := ParseHeadsHashes([]byte(bad))
		var pe *HeadsParseError
		if !errors.As(err, &pe) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
	tree, err := ParseHeadsTree([]byte("./\x00./a\x00./a/b\x00"))
	if err != nil || len(tree) != 2 || tree[1] != "a/b" {
		t.Fatalf("%q %v", tree, err)
	}
	for _, bad := range []string{"", "./a", "a\x00", "./\x00./a/../b\x00"} {
		if _, err := ParseHeadsTree([]byte(bad)); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}
