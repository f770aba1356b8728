package attest

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/glint-boot/glint/internal/attest/wire"
)

// Tokens issues and checks the server's challenges without keeping state:
// a token is
//
//	version u8 (1) | purpose u8 | issued (Unix ns) u64 | random [16] | mac [32]
//
// with mac = HMAC-SHA256(key, "glint attest token v1" | purpose | subject |
// issued | random), where subject is what the token is for (a device ID, or
// the hash of an enrolment's keys). A server replica that never saw the
// token can check it (the key is shared through the database), nothing is
// written when one is issued, and so an unauthenticated flood of challenge
// requests costs an HMAC each and changes nothing.
//
// Freshness is the token's age; replay of one good report is stopped by the
// store, which accepts a report only if its token was issued after the
// device's last accepted one (a conditional UPDATE, atomic across replicas).
type Tokens struct {
	key []byte
	now func() time.Time
}

// TokenSize is the size of every token.
const TokenSize = 1 + 1 + 8 + 16 + 32

const tokenVersion = 1

// NewTokens uses key (at least 32 random bytes) and the clock now.
func NewTokens(key []byte, now func() time.Time) (*Tokens, error) {
	if len(key) < 32 {
		return nil, errors.New("token key must be at least 32 bytes")
	}
	if now == nil {
		now = time.Now
	}
	return &Tokens{key: key, now: now}, nil
}

// ErrToken is every reason a token is refused; the message says which.
var ErrToken = errors.New("challenge token refused")

func (t *Tokens) mac(purpose wire.Purpose, subject []byte, body []byte) []byte {
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte("glint attest token v1"))
	m.Write([]byte{byte(purpose)})
	m.Write(subject)
	m.Write(body)
	return m.Sum(nil)
}

// Issue returns a new token for purpose and subject.
func (t *Tokens) Issue(purpose wire.Purpose, subject []byte) []byte {
	tok := make([]byte, 0, TokenSize)
	tok = append(tok, tokenVersion, byte(purpose))
	tok = binary.BigEndian.AppendUint64(tok, uint64(t.now().UnixNano()))
	var r [16]byte
	rand.Read(r[:]) // crypto/rand.Read never fails (Go 1.24+)
	tok = append(tok, r[:]...)
	return append(tok, t.mac(purpose, subject, tok[2:26])...)
}

// Check verifies token for purpose and subject and returns when it was
// issued. A token older than maxAge, from the future, or for anything else
// is refused with ErrToken.
func (t *Tokens) Check(token []byte, purpose wire.Purpose, subject []byte, maxAge time.Duration) (time.Time, error) {
	if len(token) != TokenSize || token[0] != tokenVersion {
		return time.Time{}, fmt.Errorf("%w: not a token of this server", ErrToken)
	}
	if wire.Purpose(token[1]) != purpose {
		return time.Time{}, fmt.Errorf("%w: the token was issued for %s, not %s", ErrToken, wire.Purpose(token[1]), purpose)
	}
	if !hmac.Equal(token[26:], t.mac(purpose, subject, token[2:26])) {
		return time.Time{}, fmt.Errorf("%w: the token was not issued by this server for this device", ErrToken)
	}
	issued := time.Unix(0, int64(binary.BigEndian.Uint64(token[2:10])))
	now := t.now()
	// A small allowance for replicas whose clocks differ.
	if issued.After(now.Add(5 * time.Second)) {
		return time.Time{}, fmt.Errorf("%w: issued in the future (server clocks disagree?)", ErrToken)
	}
	if now.Sub(issued) > maxAge {
		return time.Time{}, fmt.Errorf("%w: expired (issued %s ago, valid for %s); ask for a new challenge", ErrToken, now.Sub(issued).Round(time.Second), maxAge)
	}
	return issued, nil
}

// ActivationSecret is the secret an enrolment token's credential carries:
// derived from the token, so the server need not store it between the two
// enrolment requests.
func (t *Tokens) ActivationSecret(token []byte) []byte {
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte("glint attest activation secret v1"))
	m.Write(token)
	return m.Sum(nil)
}
