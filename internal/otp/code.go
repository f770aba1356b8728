package otp

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"time"
)

// Algorithm is the HMAC hash of an OTP key. RFC 4226 defines HOTP with
// HMAC-SHA-1 only; RFC 6238 section 1.2 allows SHA-256 and SHA-512 for TOTP.
type Algorithm int

const (
	SHA1 Algorithm = iota + 1
	SHA256
	SHA512
)

// String gives the name used in otpauth:// URIs ("SHA1", "SHA256", "SHA512").
func (a Algorithm) String() string {
	switch a {
	case SHA1:
		return "SHA1"
	case SHA256:
		return "SHA256"
	case SHA512:
		return "SHA512"
	}
	return fmt.Sprintf("Algorithm(%d)", int(a))
}

func (a Algorithm) newHash() (func() hash.Hash, error) {
	switch a {
	case SHA1:
		return sha1.New, nil
	case SHA256:
		return sha256.New, nil
	case SHA512:
		return sha512.New, nil
	}
	return nil, fmt.Errorf("%w: %v (use SHA1, SHA256 or SHA512)", ErrAlgorithm, a)
}

const (
	// MinDigits and MaxDigits bound the code length. RFC 4226 section 5.3
	// requires at least 6 digits; 8 is the most a 31-bit truncated value
	// carries with a near-uniform distribution (section 5.4 discusses 6-8).
	MinDigits = 6
	MaxDigits = 8

	// DefaultPeriod is the RFC 6238 section 4.1 time step X.
	DefaultPeriod = 30 * time.Second

	// MaxSecretLen caps secrets we accept from anywhere (URIs, callers). RFC
	// 4226 section 4 R6 asks for at least 128 bits and recommends 160; 128
	// bytes is far above any real key and keeps parsers' allocations small.
	MaxSecretLen = 128

	// SecretLen is the length of secrets glint generates: 160 bits, the
	// RFC 4226 recommendation, and what Heads seals and sends to the
	// dongle's HOTP slot.
	SecretLen = 20
)

var (
	// ErrAlgorithm reports an unknown hash algorithm.
	ErrAlgorithm = errors.New("unsupported OTP hash algorithm")
	// ErrDigits reports a code length outside MinDigits..MaxDigits.
	ErrDigits = errors.New("OTP codes have 6 to 8 digits")
	// ErrSecret reports an empty or oversized secret.
	ErrSecret = errors.New("OTP secret must be 1 to 128 bytes")
	// ErrPeriod reports a TOTP period that is not a whole number of seconds >= 1.
	ErrPeriod = errors.New("TOTP period must be a whole number of seconds, at least 1")
	// ErrBeforeEpoch reports a time before the TOTP epoch T0 = 1970-01-01.
	ErrBeforeEpoch = errors.New("time is before 1970-01-01, the TOTP epoch (RFC 6238 section 4.2)")
)

var pow10 = [...]uint32{1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000}

// HOTP computes the RFC 4226 section 5.3 one-time password for counter.
func HOTP(alg Algorithm, secret []byte, counter uint64, digits int) (uint32, error) {
	if digits < MinDigits || digits > MaxDigits {
		return 0, fmt.Errorf("%w (got %d)", ErrDigits, digits)
	}
	if len(secret) == 0 || len(secret) > MaxSecretLen {
		return 0, fmt.Errorf("%w (got %d bytes)", ErrSecret, len(secret))
	}
	h, err := alg.newHash()
	if err != nil {
		return 0, err
	}
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	mac := hmac.New(h, secret)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	// Dynamic truncation, RFC 4226 section 5.3: the low nibble of the last
	// byte picks 4 bytes; the top bit is masked so the value is the same on
	// signed and unsigned implementations.
	off := int(sum[len(sum)-1] & 0x0f)
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return bin % pow10[digits], nil
}

// TimeStep is T from RFC 6238 section 4.2: the number of whole periods
// between the Unix epoch and t.
func TimeStep(t time.Time, period time.Duration) (uint64, error) {
	if period < time.Second || period%time.Second != 0 {
		return 0, fmt.Errorf("%w (got %v)", ErrPeriod, period)
	}
	unix := t.Unix()
	if unix < 0 {
		return 0, fmt.Errorf("%w: %s", ErrBeforeEpoch, t.UTC().Format(time.RFC3339))
	}
	return uint64(unix) / uint64(period/time.Second), nil
}

// TOTP computes the RFC 6238 code valid at t: HOTP with the counter set to
// the time step (section 4.2).
func TOTP(alg Algorithm, secret []byte, t time.Time, period time.Duration, digits int) (uint32, error) {
	step, err := TimeStep(t, period)
	if err != nil {
		return 0, err
	}
	return HOTP(alg, secret, step, digits)
}

// FormatCode writes code with leading zeros, as a phone app shows it:
// FormatCode(42, 6) == "000042". Codes must be shown as text, never as
// integers, or a code starting with 0 reads as a mismatch.
func FormatCode(code uint32, digits int) string {
	if digits < 1 || digits > 9 {
		digits = MinDigits
	}
	return fmt.Sprintf("%0*d", digits, code)
}

// ParseCode reads a code typed by a person (digits only, exactly digits long).
func ParseCode(s string, digits int) (uint32, error) {
	if digits < MinDigits || digits > MaxDigits {
		return 0, fmt.Errorf("%w (got %d)", ErrDigits, digits)
	}
	if len(s) != digits {
		return 0, fmt.Errorf("code %q: want %d digits", s, digits)
	}
	var v uint32
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("code %q: only digits 0-9 are allowed", s)
		}
		v = v*10 + uint32(c-'0')
	}
	return v, nil
}
