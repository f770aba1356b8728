package manifest

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/glint-boot/glint/internal/tpm"
)

// Signer makes an armored detached OpenPGP signature over message.
type Signer interface {
	Sign(message []byte) (armoredSignature []byte, err error)
	// String names the key for messages ("gpg key 0x1234..." ).
	String() string
}

// GPG signs with the real gpg, so the key may live on an OpenPGP smartcard
// (Nitrokey, YubiKey, Librem Key): gpg-agent and scdaemon do the card work.
type GPG struct {
	Home  string // GNUPGHOME; empty means gpg's default
	KeyID string // --local-user; empty means gpg's default key
	// Passphrase (or card PIN), given to gpg with --pinentry-mode loopback
	// through a pipe. Nil lets gpg-agent ask through its pinentry.
	Passphrase []byte
	// Program is the gpg binary; empty means "gpg" from $PATH.
	Program string
	// Timeout bounds one signing (a card waiting for a touch); 0 means 2 min.
	Timeout time.Duration
}

func (g *GPG) String() string {
	if g.KeyID == "" {
		return "gpg default key"
	}
	return "gpg key " + g.KeyID
}

// Sign runs gpg --detach-sign --armor over message.
func (g *GPG) Sign(message []byte) ([]byte, error) {
	prog := g.Program
	if prog == "" {
		prog = "gpg"
	}
	timeout := g.Timeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := []string{"--no-tty", "--yes", "--digest-algo", "SHA256"}
	if g.Home != "" {
		args = append(args, "--homedir", g.Home)
	}
	if g.KeyID != "" {
		args = append(args, "--local-user", g.KeyID)
	}
	var extra []*os.File
	if g.Passphrase != nil {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		defer r.Close()
		go func() {
			w.Write(g.Passphrase)
			w.Close()
		}()
		extra = append(extra, r)
		// fd 3 is the first of ExtraFiles.
		args = append(args, "--batch", "--pinentry-mode", "loopback", "--passphrase-fd", "3")
	}
	args = append(args, "--detach-sign", "--armor", "--output", "-", "-")
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Stdin = bytes.NewReader(message)
	cmd.ExtraFiles = extra
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if ctx.Err() != nil {
			msg = "timed out after " + timeout.String() + " (waiting for a PIN or a touch?) " + msg
		}
		return nil, fmt.Errorf("gpg could not sign with %s: %v: %s (is the key present, the smartcard inserted, the PIN right?)", g, err, msg)
	}
	if !bytes.Contains(stdout.Bytes(), []byte("-----BEGIN PGP SIGNATURE-----")) {
		return nil, fmt.Errorf("gpg with %s produced no armored signature", g)
	}
	return stdout.Bytes(), nil
}

// KeySigner signs in pure Go with an OpenPGP secret key, for the initramfs
// where no gpg exists (the owner brings an exported key on a USB stick).
type KeySigner struct {
	entity *openpgp.Entity
	wiped  bool
}

// NewKeySigner reads an armored (or binary) secret key and unlocks it with
// passphrase if it is protected.
func NewKeySigner(untrustedKey []byte, passphrase []byte) (*KeySigner, error) {
	el, err := ReadKeyring(untrustedKey)
	if err != nil {
		return nil, err
	}
	for _, e := range el {
		if e.PrivateKey == nil {
			continue
		}
		if err := e.DecryptPrivateKeys(passphrase); err != nil {
			if len(passphrase) == 0 {
				return nil, fmt.Errorf("secret key %X is protected by a passphrase; give it", e.PrimaryKey.Fingerprint)
			}
			return nil, fmt.Errorf("unlock secret key %X (wrong passphrase?): %w", e.PrimaryKey.Fingerprint, err)
		}
		if _, ok := e.SigningKey(time.Now()); !ok {
			continue
		}
		return &KeySigner{entity: e}, nil
	}
	return nil, errors.New("no secret key able to sign in that file (is it a public key export? use gpg --export-secret-keys)")
}

func (k *KeySigner) String() string {
	return fmt.Sprintf("key %X", k.entity.PrimaryKey.Fingerprint)
}

// Sign makes an armored detached binary-mode signature, as gpg does.
func (k *KeySigner) Sign(message []byte) ([]byte, error) {
	if k.wiped {
		return nil, errors.New("the owner key was wiped after use: unlock it again")
	}
	var out bytes.Buffer
	cfg := &packet.Config{DefaultHash: crypto.SHA256}
	if err := openpgp.ArmoredDetachSign(&out, k.entity, bytes.NewReader(message), cfg); err != nil {
		return nil, fmt.Errorf("sign with %s: %w", k, err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// Sign returns the detached signature over m's canonical text.
func Sign(m *Manifest, s Signer) ([]byte, error) {
	return s.Sign(m.Marshal())
}

// Counter is the part of a TPM that SignBoot needs (tpm.TPM has it).
type Counter interface {
	CounterReader
	CounterIncrement(index uint32) (uint64, error)
	NVDefine(space tpm.NVSpace) error
}

// CounterReader is the part of a TPM that Verify needs.
type CounterReader interface {
	CounterRead(index uint32) (uint64, error)
}

// DefaultCounterIndex is glint's rollback counter: TPM 2.0 NV index
// 0x0180474c in the owner range 0x01800000-0x01BFFFFF of the TCG "Registry
// of Reserved TPM 2.0 Handles and Localities" (v1.1, section 2.2), low bytes
// "GL". Heads picks a random index in 0x01000000-0x013FFFFF, which the
// registry gives to TPM manufacturers.
const DefaultCounterIndex uint32 = 0x0180474c

// SignOptions tune SignBoot.
type SignOptions struct {
	Build BuildOptions
	// CounterIndex is the NV index of the rollback counter; 0 means the one
	// in the current manifest, or DefaultCounterIndex.
	CounterIndex uint32
	// Default is the default boot entry id; empty keeps the current
	// manifest's.
	Default string
	// Now stamps the informational created line; nil means time.Now.
	Now func() time.Time
	// Machine binds the manifest to a TPM (format version 2). nil: the
	// identity of the TPM SignBoot is given, if it has one (an
	// IdentityReader set up by glint); unbound otherwise.
	Machine *tpm.Identity
}

// IdentityReader is the part of a TPM that binds a manifest to it
// (tpm.TPM has it).
type IdentityReader interface {
	Identity() (*tpm.Identity, error)
}

// machineOf returns the TPM's identity, nil if it has none yet (not set up
// by glint), or an error if it cannot be read.
func machineOf(c any) (*tpm.Identity, error) {
	ir, ok := c.(IdentityReader)
	if !ok {
		return nil, nil
	}
	id, err := ir.Identity()
	if errors.Is(err, tpm.ErrNotProvisioned) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read this TPM's identity: %w", err)
	}
	return id, nil
}

// SignBoot is `glint sign`: hash /boot, sign a manifest for the next counter
// value, increment the TPM counter, write the pair atomically.
//
// Signing comes before the increment so a wrong PIN or a missing card
// leaves everything as it was. A power cut after the increment and before
// the write leaves the TPM one ahead of the old manifest, which Verify
// reports as "counter ahead" (interrupted signing or rollback): the owner
// signs again. If the TPM's new value is not the one signed for (a freshly
// defined TPM 2.0 counter starts at the highest value any counter reached),
// the manifest is signed again for the value the TPM holds.
func SignBoot(bootDir string, s Signer, c Counter, opts SignOptions) (*Manifest, error) {
	if c == nil {
		return nil, errors.New("signing needs the TPM rollback counter; no TPM given")
	}
	m, err := Build(bootDir, opts.Build)
	if err != nil {
		return nil, err
	}
	return signBuilt(bootDir, m, s, c, opts)
}

// signBuilt is SignBoot after hashing: it signs exactly the entries of m.
func signBuilt(bootDir string, m *Manifest, s Signer, c Counter, opts SignOptions) (*Manifest, error) {
	if c == nil {
		return nil, errors.New("signing needs the TPM rollback counter; no TPM given")
	}
	var old *Manifest
	if text, _, err := ReadPair(bootDir); err == nil {
		old, _ = Parse(text) // only to carry over the default and index
	}
	var err error
	m.CounterIndex = opts.CounterIndex
	if m.CounterIndex == 0 && old != nil {
		m.CounterIndex = old.CounterIndex
	}
	if m.CounterIndex == 0 {
		m.CounterIndex = DefaultCounterIndex
	}
	m.Default = opts.Default
	if m.Default == "" && old != nil {
		m.Default = old.Default
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	m.Created = now().UTC().Truncate(time.Second)
	m.Machine = opts.Machine
	if m.Machine == nil {
		if m.Machine, err = machineOf(c); err != nil {
			return nil, err
		}
	}

	cur, err := c.CounterRead(m.CounterIndex)
	if err != nil {
		// First signing on this TPM: define the counter. A TPM 2.0
		// counter cannot be read until incremented once.
		if derr := c.NVDefine(tpm.NVSpace{Index: m.CounterIndex, Size: 8, Counter: true}); derr != nil {
			return nil, fmt.Errorf("read TPM rollback counter 0x%08x: %v; defining it failed too: %w", m.CounterIndex, err, derr)
		}
		if cur, err = c.CounterIncrement(m.CounterIndex); err != nil {
			return nil, fmt.Errorf("initialise TPM rollback counter 0x%08x: %w", m.CounterIndex, err)
		}
	}
	m.Counter = cur + 1
	sig, err := Sign(m, s)
	if err != nil {
		return nil, err
	}
	got, err := c.CounterIncrement(m.CounterIndex)
	if err != nil {
		return nil, fmt.Errorf("increment TPM rollback counter 0x%08x (nothing was written; the old manifest stays valid): %w", m.CounterIndex, err)
	}
	if got != m.Counter {
		m.Counter = got
		if sig, err = Sign(m, s); err != nil {
			return nil, fmt.Errorf("sign again for counter %d: %w (the TPM counter moved; sign again)", got, err)
		}
	}
	if err := Write(bootDir, m, sig); err != nil {
		return nil, fmt.Errorf("write manifest (the TPM counter is now %d: if this cannot be fixed, sign again): %w", got, err)
	}
	if err := removeExpected(bootDir); err != nil {
		return m, fmt.Errorf("signed, but could not remove the expected-update note: %w", err)
	}
	return m, nil
}
