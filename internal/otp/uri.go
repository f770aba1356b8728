package otp

import (
	"bytes"
	"encoding/base32"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Type says whether a key is time-based (RFC 6238) or counter-based (RFC 4226).
type Type int

const (
	TypeTOTP Type = iota + 1
	TypeHOTP
)

func (t Type) String() string {
	switch t {
	case TypeTOTP:
		return "totp"
	case TypeHOTP:
		return "hotp"
	}
	return fmt.Sprintf("Type(%d)", int(t))
}

// Key is everything an authenticator app needs: the secret and how to turn
// it into codes, plus the issuer and account that label it on the phone.
// Zero values mean the Key Uri Format defaults: SHA1, 6 digits, 30 s.
type Key struct {
	Type      Type
	Issuer    string // who issued it: "glint"
	Account   string // which machine: see MachineAccount
	Secret    []byte
	Algorithm Algorithm
	Digits    int
	Period    time.Duration // TOTP only
	Counter   uint64        // HOTP only: the next counter value
}

const (
	// MaxURILen caps the URIs ParseURI reads. A version 40 QR code holds
	// at most 2953 bytes, so no scannable URI is longer.
	MaxURILen = 4096
	// MaxLabelLen caps issuer and account, after percent-decoding.
	MaxLabelLen = 256
	// maxPeriod is one day; longer "one-time" codes make no sense.
	maxPeriod   = 24 * time.Hour
	maxParams   = 32
	uriScheme   = "otpauth://"
	defaultAlgo = SHA1
)

var (
	// ErrLabel reports an issuer or account that cannot be put in a label.
	ErrLabel = errors.New("issuer and account must be 1-256 bytes of printable UTF-8 without ':' or spaces at either end")
	// ErrType reports a Key.Type that is neither TOTP nor HOTP.
	ErrType = errors.New("OTP type must be totp or hotp")
)

// withDefaults fills in the Key Uri Format defaults.
func (k Key) withDefaults() Key {
	if k.Algorithm == 0 {
		k.Algorithm = defaultAlgo
	}
	if k.Digits == 0 {
		k.Digits = MinDigits
	}
	if k.Type == TypeTOTP && k.Period == 0 {
		k.Period = DefaultPeriod
	}
	if k.Type == TypeHOTP {
		k.Period = 0
	}
	if k.Type == TypeTOTP {
		k.Counter = 0
	}
	return k
}

// Validate reports the first thing that would make the key unusable or its
// URI ambiguous.
func (k Key) Validate() error {
	k = k.withDefaults()
	if k.Type != TypeTOTP && k.Type != TypeHOTP {
		return fmt.Errorf("%w (got %v)", ErrType, k.Type)
	}
	if _, err := k.Algorithm.newHash(); err != nil {
		return err
	}
	if k.Type == TypeHOTP && k.Algorithm != SHA1 {
		// RFC 4226 is HMAC-SHA-1 only, and so are the dongles' HOTP slots.
		return fmt.Errorf("%w: HOTP keys use SHA1 (RFC 4226 section 5.2)", ErrAlgorithm)
	}
	if k.Digits < MinDigits || k.Digits > MaxDigits {
		return fmt.Errorf("%w (got %d)", ErrDigits, k.Digits)
	}
	if len(k.Secret) == 0 || len(k.Secret) > MaxSecretLen {
		return fmt.Errorf("%w (got %d bytes)", ErrSecret, len(k.Secret))
	}
	if k.Type == TypeTOTP && (k.Period < time.Second || k.Period > maxPeriod || k.Period%time.Second != 0) {
		return fmt.Errorf("%w, at most one day (got %v)", ErrPeriod, k.Period)
	}
	if k.Issuer != "" && !validLabelPart(k.Issuer) {
		return fmt.Errorf("issuer %q: %w", k.Issuer, ErrLabel)
	}
	if !validLabelPart(k.Account) {
		return fmt.Errorf("account %q: %w", k.Account, ErrLabel)
	}
	return nil
}

// validLabelPart rejects what the Key Uri Format forbids (a colon, which
// splits issuer from account) and what would confuse a person reading the
// label on a phone or a console (control characters, invalid UTF-8).
func validLabelPart(s string) bool {
	if len(s) == 0 || len(s) > MaxLabelLen || !utf8.ValidString(s) ||
		s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	for _, r := range s {
		if r == ':' || r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// URI builds the otpauth:// enrollment URI (Google Authenticator Key Uri
// Format): otpauth://TYPE/ISSUER:ACCOUNT?secret=BASE32&issuer=ISSUER...
// The secret is base32 without padding (RFC 4648 section 6, as the format
// asks). Parameters equal to the defaults (SHA1, 6 digits, 30 s) are left
// out to keep the QR code small enough for an 80x25 console; every app
// applies the same defaults. Everything outside RFC 3986 "unreserved" is
// percent-encoded, spaces as %20, never "+", which some apps show literally.
func (k Key) URI() (string, error) {
	if err := k.Validate(); err != nil {
		return "", err
	}
	k = k.withDefaults()
	var b strings.Builder
	b.WriteString(uriScheme)
	b.WriteString(k.Type.String())
	b.WriteByte('/')
	if k.Issuer != "" {
		b.WriteString(escape(k.Issuer))
		b.WriteByte(':')
	}
	b.WriteString(escape(k.Account))
	b.WriteString("?secret=")
	b.WriteString(b32.EncodeToString(k.Secret))
	if k.Issuer != "" {
		b.WriteString("&issuer=")
		b.WriteString(escape(k.Issuer))
	}
	if k.Algorithm != defaultAlgo {
		b.WriteString("&algorithm=")
		b.WriteString(k.Algorithm.String())
	}
	if k.Digits != MinDigits {
		b.WriteString("&digits=")
		b.WriteString(strconv.Itoa(k.Digits))
	}
	switch k.Type {
	case TypeTOTP:
		if k.Period != DefaultPeriod {
			b.WriteString("&period=")
			b.WriteString(strconv.FormatInt(int64(k.Period/time.Second), 10))
		}
	case TypeHOTP:
		b.WriteString("&counter=")
		b.WriteString(strconv.FormatUint(k.Counter, 10))
	}
	return b.String(), nil
}

func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

func escape(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// unescape percent-decodes s, which starts at byte off of the URI. In the
// query, "+" means a space (HTML form encoding, which many generators use).
func unescape(s string, off int, field string, plusIsSpace bool) (string, error) {
	if strings.IndexByte(s, '%') < 0 && (!plusIsSpace || strings.IndexByte(s, '+') < 0) {
		return s, nil
	}
	var b bytes.Buffer
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '%':
			if i+2 >= len(s) {
				return "", uriErrorf(off+i, field, "%% at the end without two hex digits")
			}
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return "", uriErrorf(off+i, field, "bad percent-escape %q", s[i:i+3])
			}
			b.WriteByte(hi<<4 | lo)
			i += 2
		case c == '+' && plusIsSpace:
			b.WriteByte(' ')
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// ParseURI reads an otpauth:// URI (Key Uri Format). It is strict where
// laxness could hide a mistake (duplicate parameters, an issuer in the label
// that differs from the issuer parameter, a secret that is not base32) and
// ignores parameters it does not know (image=, for example).
func ParseURI(untrustedURI string) (Key, error) {
	s := untrustedURI
	if len(s) > MaxURILen {
		return Key{}, uriErrorf(MaxURILen, "length", "URI is %d bytes, more than the %d a QR code can hold", len(s), MaxURILen)
	}
	if len(s) < len(uriScheme) || !strings.EqualFold(s[:len(uriScheme)], uriScheme) {
		return Key{}, uriErrorf(0, "scheme", "does not start with %q", uriScheme)
	}
	pos := len(uriScheme)
	rest := s[pos:]

	slash := strings.IndexByte(rest, '/')
	if slash < 0 {
		return Key{}, uriErrorf(pos, "type", "no '/' after the type")
	}
	var k Key
	switch strings.ToLower(rest[:slash]) {
	case "totp":
		k.Type = TypeTOTP
	case "hotp":
		k.Type = TypeHOTP
	default:
		return Key{}, uriErrorf(pos, "type", "%q is neither totp nor hotp", rest[:slash])
	}
	pos += slash + 1
	rest = rest[slash+1:]

	rawLabel, rawQuery, hasQuery := strings.Cut(rest, "?")
	if !hasQuery {
		return Key{}, uriErrorf(pos+len(rest), "query", "no '?': the secret parameter is missing")
	}
	if i := strings.IndexByte(rawQuery, '#'); i >= 0 {
		rawQuery = rawQuery[:i] // a fragment is not part of the key
	}
	label, err := unescape(rawLabel, pos, "label", false)
	if err != nil {
		return Key{}, err
	}
	labelIssuer, account, hasIssuer := strings.Cut(label, ":")
	if !hasIssuer {
		account, labelIssuer = labelIssuer, ""
	}
	// The format allows optional spaces after the colon.
	account = strings.TrimLeft(account, " ")
	if !validLabelPart(account) {
		return Key{}, uriErrorf(pos, "label", "account %q: %w", account, ErrLabel)
	}
	if hasIssuer && !validLabelPart(labelIssuer) {
		return Key{}, uriErrorf(pos, "label", "issuer %q: %w", labelIssuer, ErrLabel)
	}
	k.Account, k.Issuer = account, labelIssuer
	pos += len(rawLabel) + 1

	seen := map[string]bool{}
	var haveSecret, haveCounter bool
	for i, param := range strings.Split(rawQuery, "&") {
		poff := pos
		pos += len(param) + 1
		if param == "" {
			continue
		}
		if i >= maxParams {
			return Key{}, uriErrorf(poff, "query", "more than %d parameters", maxParams)
		}
		rawName, rawValue, _ := strings.Cut(param, "=")
		name, err := unescape(rawName, poff, "parameter name", true)
		if err != nil {
			return Key{}, err
		}
		name = strings.ToLower(name)
		voff := poff + len(rawName) + 1
		value, err := unescape(rawValue, voff, name, true)
		if err != nil {
			return Key{}, err
		}
		switch name {
		case "secret", "issuer", "algorithm", "digits", "period", "counter":
			if seen[name] {
				return Key{}, uriErrorf(poff, name, "appears twice")
			}
			seen[name] = true
		default:
			continue
		}
		switch name {
		case "secret":
			k.Secret, err = decodeSecret(value, voff)
			if err != nil {
				return Key{}, err
			}
			haveSecret = true
		case "issuer":
			if !validLabelPart(value) {
				return Key{}, uriErrorf(voff, name, "%q: %w", value, ErrLabel)
			}
			if hasIssuer && value != labelIssuer {
				return Key{}, uriErrorf(voff, name, "%q differs from the label's issuer %q", value, labelIssuer)
			}
			k.Issuer = value
		case "algorithm":
			switch strings.ToUpper(value) {
			case "SHA1":
				k.Algorithm = SHA1
			case "SHA256":
				k.Algorithm = SHA256
			case "SHA512":
				k.Algorithm = SHA512
			default:
				return Key{}, uriErrorf(voff, name, "%w: %q", ErrAlgorithm, value)
			}
		case "digits":
			d, err := strconv.Atoi(value)
			if err != nil || d < MinDigits || d > MaxDigits {
				return Key{}, uriErrorf(voff, name, "%w (got %q)", ErrDigits, value)
			}
			k.Digits = d
		case "period":
			p, err := strconv.ParseUint(value, 10, 32)
			if err != nil || p == 0 || time.Duration(p)*time.Second > maxPeriod {
				return Key{}, uriErrorf(voff, name, "%w, at most 86400 (got %q)", ErrPeriod, value)
			}
			k.Period = time.Duration(p) * time.Second
		case "counter":
			c, err := strconv.ParseUint(value, 10, 64)
			if err != nil {
				return Key{}, uriErrorf(voff, name, "not a decimal number below 2^64: %q", value)
			}
			k.Counter = c
			haveCounter = true
		}
	}
	if !haveSecret {
		return Key{}, uriErrorf(len(s), "secret", "the secret parameter is missing")
	}
	if k.Type == TypeHOTP && !haveCounter {
		return Key{}, uriErrorf(len(s), "counter", "an hotp URI needs a counter parameter")
	}
	k = k.withDefaults()
	if err := k.Validate(); err != nil {
		return Key{}, uriErrorf(0, "key", "%w", err)
	}
	return k, nil
}

// decodeSecret reads base32 as people and apps write it: any case, with or
// without "=" padding.
func decodeSecret(value string, off int) ([]byte, error) {
	v := strings.TrimRight(value, "=")
	if v == "" {
		return nil, uriErrorf(off, "secret", "%w (got an empty secret)", ErrSecret)
	}
	if len(v) > b32.EncodedLen(MaxSecretLen) {
		return nil, uriErrorf(off, "secret", "%w (got %d base32 characters)", ErrSecret, len(v))
	}
	secret, err := b32.DecodeString(strings.ToUpper(v))
	if err != nil {
		return nil, uriErrorf(off, "secret", "not base32 (RFC 4648 section 6): %v", err)
	}
	return secret, nil
}
