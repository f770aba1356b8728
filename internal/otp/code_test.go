package otp

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// RFC 4226 Appendix D: secret "12345678901234567890", 6 digits.
var rfc4226Secret = []byte("12345678901234567890")

func TestHOTPRFC4226AppendixD(t *testing.T) {
	want := []uint32{755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489}
	for count, w := range want {
		got, err := HOTP(SHA1, rfc4226Secret, uint64(count), 6)
		if err != nil {
			t.Fatal(err)
		}
		if got != w {
			t.Errorf("HOTP(count=%d) = %06d, want %06d", count, got, w)
		}
	}
}

// RFC 6238 Appendix B: 8 digits, X = 30, T0 = 0, one seed per hash.
func TestTOTPRFC6238AppendixB(t *testing.T) {
	seeds := map[Algorithm][]byte{
		SHA1:   []byte("12345678901234567890"),
		SHA256: []byte("12345678901234567890123456789012"),
		SHA512: []byte("1234567890123456789012345678901234567890123456789012345678901234"),
	}
	vectors := []struct {
		unix int64
		alg  Algorithm
		code string
	}{
		{59, SHA1, "94287082"}, {59, SHA256, "46119246"}, {59, SHA512, "90693936"},
		{1111111109, SHA1, "07081804"}, {1111111109, SHA256, "68084774"}, {1111111109, SHA512, "25091201"},
		{1111111111, SHA1, "14050471"}, {1111111111, SHA256, "67062674"}, {1111111111, SHA512, "99943326"},
		{1234567890, SHA1, "89005924"}, {1234567890, SHA256, "91819424"}, {1234567890, SHA512, "93441116"},
		{2000000000, SHA1, "69279037"}, {2000000000, SHA256, "90698825"}, {2000000000, SHA512, "38618901"},
		{20000000000, SHA1, "65353130"}, {20000000000, SHA256, "77737706"}, {20000000000, SHA512, "47863826"},
	}
	for _, v := range vectors {
		got, err := TOTP(v.alg, seeds[v.alg], time.Unix(v.unix, 0), DefaultPeriod, 8)
		if err != nil {
			t.Fatal(err)
		}
		if s := FormatCode(got, 8); s != v.code {
			t.Errorf("TOTP(%v, %d) = %s, want %s", v.alg, v.unix, s, v.code)
		}
	}
}

func TestCodeArgumentErrors(t *testing.T) {
	if _, err := HOTP(SHA1, rfc4226Secret, 0, 5); !errors.Is(err, ErrDigits) {
		t.Errorf("5 digits: err = %v, want ErrDigits", err)
	}
	if _, err := HOTP(SHA1, rfc4226Secret, 0, 9); !errors.Is(err, ErrDigits) {
		t.Errorf("9 digits: err = %v, want ErrDigits", err)
	}
	if _, err := HOTP(SHA1, nil, 0, 6); !errors.Is(err, ErrSecret) {
		t.Errorf("empty secret: err = %v, want ErrSecret", err)
	}
	if _, err := HOTP(Algorithm(9), rfc4226Secret, 0, 6); !errors.Is(err, ErrAlgorithm) {
		t.Errorf("bad algorithm: err = %v, want ErrAlgorithm", err)
	}
	if _, err := TOTP(SHA1, rfc4226Secret, time.Unix(-1, 0), DefaultPeriod, 6); !errors.Is(err, ErrBeforeEpoch) {
		t.Errorf("1969: err = %v, want ErrBeforeEpoch", err)
	}
	if _, err := TOTP(SHA1, rfc4226Secret, time.Unix(100, 0), 1500*time.Millisecond, 6); !errors.Is(err, ErrPeriod) {
		t.Errorf("1.5 s period: err = %v, want ErrPeriod", err)
	}
}

func TestFormatAndParseCode(t *testing.T) {
	if s := FormatCode(42, 6); s != "000042" {
		t.Errorf("FormatCode(42, 6) = %q", s)
	}
	if c, err := ParseCode("000042", 6); err != nil || c != 42 {
		t.Errorf("ParseCode(000042) = %d, %v", c, err)
	}
	for _, bad := range []string{"12345", "1234567", "12a456", " 23456", "-12345"} {
		if _, err := ParseCode(bad, 6); err == nil {
			t.Errorf("ParseCode(%q) accepted", bad)
		}
	}
	if _, err := ParseCode("12345678901234567890", 20); err == nil {
		t.Error("ParseCode accepted 20 digits")
	}
}

// TestAgainstOathtool compares 50 random secrets, times, counters, digit
// counts and hashes with the OATH Toolkit's oathtool, an independent
// implementation.
func TestAgainstOathtool(t *testing.T) {
	if _, err := exec.LookPath("oathtool"); err != nil {
		t.Skip("oathtool not installed (apt-get install oathtool); cannot cross-check codes")
	}
	algs := []Algorithm{SHA1, SHA256, SHA512}
	for i := 0; i < 50; i++ {
		var rnd [8 + 8 + 2]byte
		if _, err := rand.Read(rnd[:]); err != nil {
			t.Fatal(err)
		}
		secret := make([]byte, 10+int(rnd[16])%55)
		if _, err := rand.Read(secret); err != nil {
			t.Fatal(err)
		}
		digits := 6 + int(rnd[17])%3
		alg := algs[i%3]
		// Times up to year ~2100, counters up to 2^40.
		unix := int64(binary.LittleEndian.Uint64(rnd[0:8]) % 4102444800)
		counter := binary.LittleEndian.Uint64(rnd[8:16]) % (1 << 40)

		b32 := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secret)
		mode := strings.ToLower(alg.String())
		out, err := exec.Command("oathtool", "--totp="+mode, "-d", fmt.Sprint(digits), "-b", b32,
			"--now", fmt.Sprintf("@%d", unix)).CombinedOutput()
		if err != nil {
			t.Fatalf("oathtool --totp: %v: %s", err, out)
		}
		got, err := TOTP(alg, secret, time.Unix(unix, 0), DefaultPeriod, digits)
		if err != nil {
			t.Fatal(err)
		}
		if want := strings.TrimSpace(string(out)); FormatCode(got, digits) != want {
			t.Errorf("TOTP %v %d digits secret %s at %d: glint %s, oathtool %s",
				alg, digits, b32, unix, FormatCode(got, digits), want)
		}

		// oathtool's HOTP is SHA-1 only (RFC 4226).
		out, err = exec.Command("oathtool", "--hotp", "-d", fmt.Sprint(digits), "-c", fmt.Sprint(counter),
			hex.EncodeToString(secret)).CombinedOutput()
		if err != nil {
			t.Fatalf("oathtool --hotp: %v: %s", err, out)
		}
		got, err = HOTP(SHA1, secret, counter, digits)
		if err != nil {
			t.Fatal(err)
		}
		if want := strings.TrimSpace(string(out)); FormatCode(got, digits) != want {
			t.Errorf("HOTP %d digits secret %x counter %d: glint %s, oathtool %s",
				digits, secret, counter, FormatCode(got, digits), want)
		}
	}
}

func BenchmarkTOTP(b *testing.B) {
	now := time.Unix(1700000000, 0)
	for b.Loop() {
		if _, err := TOTP(SHA1, rfc4226Secret, now, DefaultPeriod, 6); err != nil {
			b.Fatal(err)
		}
	}
}
