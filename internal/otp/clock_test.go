package otp

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var buildDate = time.Date(2026, 7, 20, 12, 0, 0, 0, time.UTC)

func TestCheckClock(t *testing.T) {
	err := CheckClock(time.Unix(0, 0), buildDate)
	var ce *ClockTooEarlyError
	if !errors.As(err, &ce) || !errors.Is(err, ErrClockTooEarly) {
		t.Fatalf("1970: err = %v, want *ClockTooEarlyError", err)
	}
	for _, words := range []string{"1970-01-01 00:00 UTC", "2026-07-20", "glint time set", "CMOS battery", "phone"} {
		if !strings.Contains(err.Error(), words) {
			t.Errorf("message %q lacks %q", err, words)
		}
	}
	if err := CheckClock(buildDate.Add(-time.Second), buildDate); err == nil {
		t.Error("one second before the build date accepted")
	}
	if err := CheckClock(buildDate, buildDate); err != nil {
		t.Errorf("build date itself refused: %v", err)
	}
	if err := CheckClock(buildDate.AddDate(3, 0, 0), buildDate); err != nil {
		t.Errorf("three years later refused: %v", err)
	}
}

func TestParseUTCOffset(t *testing.T) {
	good := map[string]time.Duration{
		"+02:00": 2 * time.Hour, "-05:30": -(5*time.Hour + 30*time.Minute), "+0545": 5*time.Hour + 45*time.Minute,
		"+2": 2 * time.Hour, "-11": -11 * time.Hour, "UTC": 0, "z": 0, "0": 0, "+14:00": 14 * time.Hour, "-14:00": -14 * time.Hour,
	}
	for s, want := range good {
		got, err := ParseUTCOffset(s)
		if err != nil || got != want {
			t.Errorf("ParseUTCOffset(%q) = %v, %v; want %v", s, got, err, want)
		}
		if err == nil {
			if back, err := ParseUTCOffset(FormatUTCOffset(got)); err != nil || back != got {
				t.Errorf("FormatUTCOffset(%v) = %q does not read back", got, FormatUTCOffset(got))
			}
		}
	}
	for _, s := range []string{"", "2", "+", "+15", "+14:15", "+02:10", "+02:60", "+2:30", "+02:00:00", "+0x", "-99:99", "++2"} {
		if _, err := ParseUTCOffset(s); err == nil {
			t.Errorf("ParseUTCOffset(%q) accepted", s)
		}
	}
}

func TestCorrectRTC(t *testing.T) {
	utc := time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)
	// Windows in CEST wrote 14:00 to the RTC; the kernel read it as UTC.
	rtc := time.Date(2026, 8, 1, 14, 0, 0, 0, time.UTC)
	if got := CorrectRTC(rtc, 2*time.Hour); !got.Equal(utc) {
		t.Errorf("CorrectRTC = %v, want %v", got, utc)
	}
}

func TestPossibleLocalTimeRTC(t *testing.T) {
	k := Key{Type: TypeTOTP, Account: "m", Secret: rfc4226Secret}
	trueUTC := time.Date(2026, 8, 1, 12, 0, 10, 0, time.UTC)
	phone := func(at time.Time) string {
		c, err := TOTP(SHA1, rfc4226Secret, at, DefaultPeriod, 6)
		if err != nil {
			t.Fatal(err)
		}
		return FormatCode(c, 6)
	}
	cases := []time.Duration{2 * time.Hour, -5 * time.Hour, 5*time.Hour + 30*time.Minute, 5*time.Hour + 45*time.Minute, -14 * time.Hour, 14 * time.Hour, 0}
	for _, ahead := range cases {
		rtc := trueUTC.Add(ahead)
		h, err := PossibleLocalTimeRTC(k, rtc, phone(trueUTC))
		if err != nil {
			t.Fatalf("offset %v: %v", ahead, err)
		}
		if h.RTCAheadOfUTC != ahead || h.StepsOff != 0 {
			t.Errorf("offset %v: hint %+v", ahead, h)
		}
	}
	// The phone's code from the previous period (read just as it changed).
	h, err := PossibleLocalTimeRTC(k, trueUTC.Add(3*time.Hour), phone(trueUTC.Add(-30*time.Second)))
	if err != nil || h.RTCAheadOfUTC != 3*time.Hour || h.StepsOff != -1 {
		t.Errorf("previous period: %+v, %v", h, err)
	}
	msg := RTCHint{RTCAheadOfUTC: 2 * time.Hour}.String()
	for _, words := range []string{"2 hours ahead of UTC", "Windows", "rtc_utc_offset = +02:00"} {
		if !strings.Contains(msg, words) {
			t.Errorf("hint %q lacks %q", msg, words)
		}
	}
	if msg := (RTCHint{RTCAheadOfUTC: -time.Hour}).String(); !strings.Contains(msg, "1 hour behind UTC") {
		t.Errorf("hint %q", msg)
	}

	// A code from another secret matches no offset (with overwhelming
	// probability: 339 tries at 10^-6 each; this fixed one does not).
	other, _ := TOTP(SHA1, []byte("another secret entirely"), trueUTC, DefaultPeriod, 6)
	if _, err := PossibleLocalTimeRTC(k, trueUTC, FormatCode(other, 6)); !errors.Is(err, ErrNoOffsetMatches) {
		t.Errorf("foreign code: err = %v, want ErrNoOffsetMatches", err)
	}
	if _, err := PossibleLocalTimeRTC(k, trueUTC, "12345"); err == nil {
		t.Error("5-digit code accepted")
	}
	if _, err := PossibleLocalTimeRTC(Key{Type: TypeHOTP, Account: "m", Secret: rfc4226Secret}, trueUTC, "123456"); !errors.Is(err, ErrType) {
		t.Errorf("HOTP key: err = %v", err)
	}
}
