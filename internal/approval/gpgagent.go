package approval

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	pgpecdsa "github.com/ProtonMail/go-crypto/openpgp/ecdsa"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/glint-boot/glint/internal/manifest"
	"github.com/glint-boot/glint/internal/tpm"
)

// GPGAgent signs approvals with a key gpg manages: in the keyring, or on an
// OpenPGP card (Nitrokey, YubiKey, Librem Key) through scdaemon. It asks
// gpg-agent to sign the raw digest (Assuan SIGKEY / SETHASH / PKSIGN): an
// RSA key signs PKCS#1 v1.5 over a SHA-256 DigestInfo, an ECDSA key the
// bare hash, which are the two forms the TPM verifies. gpg-agent asks for
// the passphrase or card PIN through its pinentry, as for any signature.
type GPGAgent struct {
	Home string // GNUPGHOME; empty: gpg's default
	// KeyID selects the approval key: the fingerprint or key ID of a
	// signing (sub)key, or of a primary key whose signing-capable RSA or
	// P-256 (sub)key is then used.
	KeyID string
	// Timeout bounds one gpg call (a card waiting for a touch): 0 = 2 min.
	Timeout time.Duration

	key  *packet.PublicKey
	grip string
}

func (g *GPGAgent) String() string { return "gpg key " + g.KeyID }

func (g *GPGAgent) run(stdin []byte, prog string, args ...string) ([]byte, error) {
	timeout := g.Timeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if g.Home != "" {
		args = append([]string{"--homedir", g.Home}, args...)
	}
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %s", prog, err, strings.TrimSpace(stderr.String()))
	}
	if len(out) > 1<<20 {
		return nil, fmt.Errorf("%s: %d bytes of output", prog, len(out))
	}
	return out, nil
}

// stdKey converts an OpenPGP public key into the crypto key the TPM loads.
func stdKey(k *packet.PublicKey) (crypto.PublicKey, error) {
	switch pk := k.PublicKey.(type) {
	case *rsa.PublicKey:
		if _, err := tpm.ApprovalKeyName(pk); err != nil {
			return nil, err
		}
		return pk, nil
	case *pgpecdsa.PublicKey:
		if pk.GetCurve().GetCurveName() != "P-256" {
			return nil, fmt.Errorf("ECDSA on %s; the TPM verifies NIST P-256", pk.GetCurve().GetCurveName())
		}
		return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pk.MarshalPoint())
	}
	return nil, fmt.Errorf("a %s key; the TPM verifies RSA and NIST P-256 (for an Ed25519 owner key, add a P-256 signing subkey: gpg --quick-add-key FPR nistp256 sign)", algName(k.PubKeyAlgo))
}

func algName(a packet.PublicKeyAlgorithm) string {
	switch a {
	case packet.PubKeyAlgoEdDSA, packet.PubKeyAlgoEd25519:
		return "Ed25519"
	case packet.PubKeyAlgoEd448:
		return "Ed448"
	case packet.PubKeyAlgoDSA:
		return "DSA"
	}
	return fmt.Sprintf("algorithm-%d", a)
}

// resolve finds the approval (sub)key and its keygrip.
func (g *GPGAgent) resolve() error {
	if g.key != nil {
		return nil
	}
	if g.KeyID == "" {
		return errors.New("no approval key named (--approval-key FINGERPRINT)")
	}
	armored, err := g.run(nil, "gpg", "--batch", "--armor", "--export", g.KeyID)
	if err != nil {
		return err
	}
	el, err := manifest.ReadKeyring(armored)
	if err != nil {
		return fmt.Errorf("gpg key %s: %w", g.KeyID, err)
	}
	want := strings.ToUpper(strings.TrimPrefix(strings.TrimPrefix(g.KeyID, "0x"), "0X"))
	var chosen *packet.PublicKey
	var why []string
	consider := func(k *packet.PublicKey, canSign bool, selected bool) {
		if chosen != nil || !canSign {
			return
		}
		if _, err := stdKey(k); err != nil {
			if selected {
				why = append(why, fmt.Sprintf("%X: %v", k.Fingerprint, err))
			}
			return
		}
		chosen = k
	}
	matches := func(k *packet.PublicKey) bool {
		f := strings.ToUpper(hex.EncodeToString(k.Fingerprint))
		return f == want || strings.HasSuffix(f, want) && len(want) >= 16
	}
	for _, e := range el {
		// A (sub)key named directly.
		for _, sk := range e.Subkeys {
			if matches(sk.PublicKey) {
				consider(sk.PublicKey, sk.Sig != nil && sk.Sig.FlagSign, true)
			}
		}
		if matches(e.PrimaryKey) {
			id := e.PrimaryIdentity()
			consider(e.PrimaryKey, id == nil || id.SelfSignature == nil || id.SelfSignature.FlagSign, true)
			for _, sk := range e.Subkeys {
				consider(sk.PublicKey, sk.Sig != nil && sk.Sig.FlagSign && !sk.Sig.SigExpired(time.Now()), false)
			}
		}
	}
	if chosen == nil {
		return fmt.Errorf("gpg key %s has no signing key the TPM can verify (RSA-2048 or NIST P-256) %s", g.KeyID, strings.Join(why, "; "))
	}
	out, err := g.run(nil, "gpg", "--batch", "--with-colons", "--with-keygrip", "--list-keys", g.KeyID)
	if err != nil {
		return err
	}
	grip, err := keygripFor(out, chosen.Fingerprint)
	if err != nil {
		return err
	}
	g.key, g.grip = chosen, grip
	return nil
}

// keygripFor reads gpg --with-colons --with-keygrip output: a "fpr" line
// names a key's fingerprint, the "grp" line after it its keygrip.
func keygripFor(colons []byte, fpr []byte) (string, error) {
	want := strings.ToUpper(hex.EncodeToString(fpr))
	lines := strings.Split(string(colons), "\n")
	for i, l := range lines {
		f := strings.Split(l, ":")
		if len(f) > 9 && f[0] == "fpr" && strings.ToUpper(f[9]) == want {
			for _, m := range lines[i+1:] {
				g := strings.Split(m, ":")
				if len(g) > 9 && g[0] == "grp" {
					if len(g[9]) != 40 || strings.Trim(g[9], "0123456789ABCDEFabcdef") != "" {
						return "", fmt.Errorf("gpg printed a malformed keygrip %q", g[9])
					}
					return g[9], nil
				}
				if len(g) > 0 && (g[0] == "sub" || g[0] == "pub" || g[0] == "fpr") {
					break
				}
			}
		}
	}
	return "", fmt.Errorf("gpg lists no keygrip for %s", want)
}

func (g *GPGAgent) Public() (crypto.PublicKey, error) {
	if err := g.resolve(); err != nil {
		return nil, err
	}
	return stdKey(g.key)
}

// SignDigest has gpg-agent sign digest with the approval key.
func (g *GPGAgent) SignDigest(digest []byte) (tpm.SigScheme, []byte, error) {
	if err := g.resolve(); err != nil {
		return 0, nil, err
	}
	if len(digest) != 32 {
		return 0, nil, fmt.Errorf("digest of %d bytes, want SHA-256", len(digest))
	}
	script := fmt.Sprintf("SIGKEY %s\nSETHASH --hash=sha256 %X\nPKSIGN\n/bye\n", g.grip, digest)
	out, err := g.run([]byte(script), "gpg-connect-agent")
	if err != nil {
		return 0, nil, err
	}
	data, err := assuanData(out)
	if err != nil {
		return 0, nil, err
	}
	keyBytes := 0
	if rk, ok := g.key.PublicKey.(*rsa.PublicKey); ok {
		keyBytes = (rk.N.BitLen() + 7) / 8
	}
	return parseSigVal(data, keyBytes)
}

// assuanData collects the D lines of an Assuan conversation (percent-
// escaped: %25, %0A, %0D) and fails on an ERR line.
func assuanData(out []byte) ([]byte, error) {
	var data []byte
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(l, "D "):
			d, err := unescapeAssuan(l[2:])
			if err != nil {
				return nil, err
			}
			data = append(data, d...)
			if len(data) > maxSexp {
				return nil, fmt.Errorf("%w: more than %d bytes", errSexp, maxSexp)
			}
		case strings.HasPrefix(l, "ERR "):
			return nil, fmt.Errorf("gpg-agent refused to sign: %s", printable([]byte(l[4:])))
		}
	}
	if len(data) == 0 {
		return nil, errors.New("gpg-agent returned no signature")
	}
	return data, nil
}

func unescapeAssuan(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			out = append(out, s[i])
			continue
		}
		if i+2 >= len(s) {
			return nil, errors.New("gpg-agent: truncated %-escape")
		}
		b, err := hex.DecodeString(s[i+1 : i+3])
		if err != nil {
			return nil, fmt.Errorf("gpg-agent: bad %%-escape %q", s[i:i+3])
		}
		out = append(out, b[0])
		i += 2
	}
	return out, nil
}

// PublicKeyFromOpenPGP picks the approval key out of an OpenPGP keyring
// (e.g. the owner's glint/owner.asc from the firmware): the (sub)key with
// fingerprint fpr, which must be signing-capable RSA or NIST P-256.
func PublicKeyFromOpenPGP(el openpgp.EntityList, fpr string) (crypto.PublicKey, error) {
	want := strings.ToUpper(strings.TrimPrefix(fpr, "0x"))
	for _, e := range el {
		keys := []*packet.PublicKey{e.PrimaryKey}
		for _, sk := range e.Subkeys {
			keys = append(keys, sk.PublicKey)
		}
		for _, k := range keys {
			if strings.ToUpper(hex.EncodeToString(k.Fingerprint)) == want {
				return stdKey(k)
			}
		}
	}
	return nil, fmt.Errorf("no key with fingerprint %s", want)
}
