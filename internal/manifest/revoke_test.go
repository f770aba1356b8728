package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Revocations are made by real gpg, the way an owner would after losing a
// key, and the revoked public key is what the firmware keyring then holds.

// gpgScripted runs an interactive gpg command answering its prompts from
// answers (one line each), as `--command-fd 0` reads them.
func gpgScripted(t *testing.T, home string, answers []string, args ...string) []byte {
	t.Helper()
	base := []string{"--yes", "--pinentry-mode", "loopback", "--passphrase", "", "--command-fd", "0", "--status-fd", "2"}
	return gpg(t, home, []byte(strings.Join(answers, "\n")+"\n"), append(base, args...)...)
}

// gpgReasonMenu is the number gpg's revocation menu gives an RFC 9580
// reason code (gpg lists "compromised" first).
func gpgReasonMenu(rfc packet.ReasonForRevocation) string {
	switch rfc {
	case packet.KeyCompromised:
		return "1"
	case packet.KeySuperseded:
		return "2"
	}
	return fmt.Sprint(uint8(rfc)) // 0 no reason, 3 no longer used
}

// revokePrimary makes a revocation certificate with reason and text
// (gpg --gen-revoke) and imports it: the owner key is revoked from now on.
func revokePrimary(t *testing.T, k *testKey, reason packet.ReasonForRevocation, text string) {
	t.Helper()
	cert := gpgScripted(t, k.home, append(append([]string{"y", gpgReasonMenu(reason)}, reasonLines(text)...), "y"), "--armor", "--gen-revoke", k.id)
	gpg(t, k.home, cert, "--batch", "--import")
	k.public = gpg(t, k.home, nil, "--armor", "--export", k.id)
}

// reasonLines answers gpg's "optional description" prompt, which an empty
// line ends.
func reasonLines(text string) []string {
	if text == "" {
		return []string{""}
	}
	return []string{text, ""}
}

// signingSubkey adds an ed25519 signing subkey to k and returns its key ID.
func signingSubkey(t *testing.T, k *testKey) string {
	t.Helper()
	fpr := ""
	for _, l := range strings.Split(string(gpg(t, k.home, nil, "--with-colons", "--list-keys", k.id)), "\n") {
		if f := strings.Split(l, ":"); f[0] == "fpr" && len(f) > 9 {
			fpr = f[9]
			break
		}
	}
	gpg(t, k.home, nil, "--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--quick-add-key", fpr, "ed25519", "sign", "never")
	var sub string
	for _, l := range strings.Split(string(gpg(t, k.home, nil, "--with-colons", "--list-keys", k.id)), "\n") {
		if f := strings.Split(l, ":"); f[0] == "sub" && len(f) > 11 && strings.Contains(f[11], "s") {
			sub = f[4]
		}
	}
	if sub == "" {
		t.Fatal("no signing subkey listed after --quick-add-key")
	}
	k.public = gpg(t, k.home, nil, "--armor", "--export", k.id)
	return sub
}

// revokeSubkey revokes the first subkey with gpg --edit-key (key 1, revkey).
func revokeSubkey(t *testing.T, k *testKey, reason packet.ReasonForRevocation, text string) {
	t.Helper()
	gpgScripted(t, k.home, append(append([]string{"key 1", "revkey", "y", gpgReasonMenu(reason)}, reasonLines(text)...), "y", "save"), "--edit-key", k.id)
	k.public = gpg(t, k.home, nil, "--armor", "--export", k.id)
}

func revokedOf(t *testing.T, err error) *RevokedKeyError {
	t.Helper()
	te := tamperOf(t, err)
	if te.Revoked == nil {
		t.Fatalf("want a revoked-key refusal, got %v", te)
	}
	var r *RevokedKeyError
	if !errors.As(te.Revoked, &r) {
		t.Fatal("Revoked is not a *RevokedKeyError")
	}
	return r
}

// TestSoftRevokedOwnerKeyRefused: the owner retires the key ("superseded",
// a soft revocation per RFC 9580). A /boot signed with that key before the
// revocation, which go-crypto alone still accepts, is refused, and the
// message names the key, the reason and the owner's text.
func TestSoftRevokedOwnerKeyRefused(t *testing.T) {
	for _, reason := range []struct {
		code packet.ReasonForRevocation
		name string
	}{{packet.KeySuperseded, "key superseded"}, {packet.KeyRetired, "key retired"}, {packet.NoReason, "no reason given"}, {packet.KeyCompromised, "key compromised"}} {
		t.Run(reason.name, func(t *testing.T) {
			k := newGPGKey(t, "Owner", "ed25519")
			dir := makeBoot(t)
			signNoTPM(t, dir, k.signer(), 4)
			if _, err := Verify(dir, k.keyring(t), nil); err != nil {
				t.Fatalf("before the revocation: %v", err)
			}
			time.Sleep(1100 * time.Millisecond) // the revocation is dated after the signature
			revokePrimary(t, k, reason.code, "moved to a smartcard")
			_, err := Verify(dir, k.keyring(t), nil)
			r := revokedOf(t, err)
			if r.Subkey || r.Reason != reason.code || !r.RevokedAt.After(r.SignedAt) {
				t.Fatalf("revocation %+v", r)
			}
			msg := err.Error()
			for _, want := range []string{strings.ToUpper(k.id), "revoked", reason.name, `"moved to a smartcard"`, "every revocation of an owner key as hard"} {
				if !strings.Contains(msg, want) {
					t.Errorf("message lacks %q: %s", want, msg)
				}
			}
		})
	}
}

// TestBackdatedSignatureByRevokedKeyRefused: whoever holds a copy of the
// retired key (without the revocation, which only the owner's keyring and
// the firmware carry) signs a tampered /boot and dates the signature a year
// back, before the revocation. go-crypto alone accepts that signature; glint
// does not.
func TestBackdatedSignatureByRevokedKeyRefused(t *testing.T) {
	created := time.Now().AddDate(-2, 0, 0).Unix()
	k := newGPGKeyArgs(t, "Owner", "ed25519", "--faked-system-time", fmt.Sprintf("%d!", created))
	dir := makeBoot(t)
	m, err := Build(dir, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m.CounterIndex, m.Counter = DefaultCounterIndex, 9
	text := m.Marshal()
	backdated := time.Now().AddDate(-1, 0, 0).Unix()
	sig := gpg(t, k.home, text, "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
		"--faked-system-time", fmt.Sprintf("%d!", backdated), "--armor", "--detach-sign", "--local-user", k.id)
	if err := Write(dir, m, sig); err != nil {
		t.Fatal(err)
	}
	revokePrimary(t, k, packet.KeySuperseded, "")
	kr := k.keyring(t)

	// The hole: judged at the claimed date, the soft revocation is not yet
	// in force.
	sigPkt, err := readSignaturePacket(sig)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &packet.Config{Time: func() time.Time { return sigPkt.CreationTime }}
	if _, err := openpgp.CheckArmoredDetachedSignature(kr, bytes.NewReader(text), bytes.NewReader(sig), cfg); err != nil {
		t.Fatalf("go-crypto alone already refuses the backdated signature (%v): the test does not show the hole", err)
	}

	_, err = Verify(dir, kr, nil)
	r := revokedOf(t, err)
	if !r.SignedAt.Before(r.RevokedAt) || r.Reason != packet.KeySuperseded {
		t.Fatalf("the signature claims %v, the revocation %v (%v)", r.SignedAt, r.RevokedAt, r.Reason)
	}
}

// TestRevokedSigningSubkeyRefused: the owner's primary key stays, its
// signing subkey (e.g. one on a lost smartcard) is revoked.
func TestRevokedSigningSubkeyRefused(t *testing.T) {
	needGPG(t)
	k := newGPGKey(t, "Owner", "ed25519")
	sub := signingSubkey(t, k)
	dir := makeBoot(t)
	signNoTPM(t, dir, &GPG{Home: k.home, KeyID: sub + "!"}, 2)
	res, err := Verify(dir, k.keyring(t), nil)
	if err != nil {
		t.Fatalf("signed by the subkey, before revoking it: %v", err)
	}
	if res.Signer.PrimaryKey.KeyId != k.keyring(t)[0].PrimaryKey.KeyId {
		t.Fatal("signer is not the owner key")
	}
	time.Sleep(1100 * time.Millisecond)
	revokeSubkey(t, k, packet.KeySuperseded, "card lost")
	_, err = Verify(dir, k.keyring(t), nil)
	r := revokedOf(t, err)
	if !r.Subkey || fmt.Sprintf("%016X", r.KeyID) != strings.ToUpper(sub) {
		t.Fatalf("revocation %+v, want subkey %s", r, sub)
	}
	if msg := err.Error(); !strings.Contains(msg, "signing subkey "+strings.ToUpper(sub)) || !strings.Contains(msg, `"card lost"`) {
		t.Fatalf("message does not name the subkey and the reason: %s", msg)
	}
	// The owner's primary key, not revoked, still signs.
	signNoTPM(t, dir, &GPG{Home: k.home, KeyID: k.id + "!"}, 3)
	if _, err := Verify(dir, k.keyring(t), nil); err != nil {
		t.Fatalf("the unrevoked primary key's signature: %v", err)
	}
}
