package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/glint-boot/glint/internal/manifest"
	"github.com/glint-boot/glint/internal/tpm"
	"github.com/glint-boot/glint/internal/tpm/swtpmtest"
)

// BenchmarkVerifyQubes is `glint verify` of a Qubes OS 4.2 /boot (the tree
// of bench/qubes-boot.sh: 63 MB in 285 files, random bytes, in the page
// cache) with the rollback counter on a real swtpm, first whole and in
// process, then one phase at a time, so the time of each is known:
//
//	cli        glint verify as main runs it (no process start: see
//	           bench/verify.sh for that and for Heads' pipeline beside it)
//	keyring    reading the owner's armored public key
//	signature  the detached signature over the manifest, and parsing it
//	counter    opening the TPM and reading the rollback counter
//	hash       walking /boot and hashing every file (manifest.Build)
//
//	go test ./cmd/glint/ -run '^$' -bench VerifyQubes -cpuprofile cpu.out
func BenchmarkVerifyQubes(b *testing.B) {
	dir := b.TempDir()
	qubesBoot(b, dir)
	spec := swtpmtest.Start(b, tpm.Version20)
	pub, sec := ownerKey(b)
	pubFile := filepath.Join(b.TempDir(), "owner.asc")
	if err := os.WriteFile(pubFile, pub, 0o644); err != nil {
		b.Fatal(err)
	}
	t, err := tpm.Open(spec)
	if err != nil {
		b.Fatal(err)
	}
	signer, err := manifest.NewKeySigner(sec, nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := manifest.SignBoot(dir, signer, t, manifest.SignOptions{}); err != nil {
		b.Fatal(err)
	}
	t.Close()
	text, sig, err := manifest.ReadPair(dir)
	if err != nil {
		b.Fatal(err)
	}
	kr, err := manifest.ReadKeyring(pub)
	if err != nil {
		b.Fatal(err)
	}
	res, err := manifest.CheckSignature(text, sig, kr)
	if err != nil {
		b.Fatal(err)
	}

	b.Run("cli", func(b *testing.B) {
		for b.Loop() {
			var out bytes.Buffer
			if err := run([]string{"--tpm", spec, "verify", "--pubkey", pubFile, dir}, strings.NewReader(""), &out, &out); err != nil || !strings.HasPrefix(out.String(), "OK: ") {
				b.Fatalf("verify: %v\n%s", err, out.String())
			}
		}
	})
	b.Run("keyring", func(b *testing.B) {
		for b.Loop() {
			if _, err := manifest.ReadKeyring(pub); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("signature", func(b *testing.B) {
		for b.Loop() {
			if _, err := manifest.CheckSignature(text, sig, kr); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("counter", func(b *testing.B) {
		for b.Loop() {
			t, err := tpm.Open(spec)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := t.CounterRead(res.Manifest.CounterIndex); err != nil {
				b.Fatal(err)
			}
			t.Close()
		}
	})
	b.Run("hash", func(b *testing.B) {
		for b.Loop() {
			if _, err := manifest.Build(dir, manifest.BuildOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// qubesBoot fills dir as bench/qubes-boot.sh does, and reads it once so
// it is in the page cache.
func qubesBoot(tb testing.TB, dir string) {
	tb.Helper()
	write := func(rel string, size int64) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		f, err := os.Create(p)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := io.CopyN(f, rand.Reader, size); err != nil {
			tb.Fatal(err)
		}
		if err := f.Close(); err != nil {
			tb.Fatal(err)
		}
	}
	write("initramfs-6.6.48-1.qubes.fc37.x86_64.img", 45_000_000)
	write("vmlinuz-6.6.48-1.qubes.fc37.x86_64", 11_000_000)
	write("xen-4.17.4.gz", 1_100_000)
	for i := int64(0); i < 280; i++ {
		write(fmt.Sprintf("grub2/i386-pc/mod%03d.mod", i), 1024+(i*39*1024)/279)
	}
	write("grub2/grub.cfg", 700)
	write("grub2/grubenv", 1024)
}

// ownerKey makes an ed25519 OpenPGP key (as `gpg --quick-gen-key ...
// ed25519` does) with go-crypto: armored public and secret key.
func ownerKey(tb testing.TB) (pub, sec []byte) {
	tb.Helper()
	e, err := openpgp.NewEntity("Bench Owner", "", "owner@example.org", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		tb.Fatal(err)
	}
	var p, s bytes.Buffer
	w, _ := armor.Encode(&p, openpgp.PublicKeyType, nil)
	if err := e.Serialize(w); err != nil {
		tb.Fatal(err)
	}
	w.Close()
	w, _ = armor.Encode(&s, openpgp.PrivateKeyType, nil)
	if err := e.SerializePrivate(w, nil); err != nil {
		tb.Fatal(err)
	}
	w.Close()
	return p.Bytes(), s.Bytes()
}
