package otp

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrClockTooEarly is what a *ClockTooEarlyError matches with errors.Is.
var ErrClockTooEarly = errors.New("the system clock is earlier than glint's build date")

// ClockTooEarlyError says the real-time clock cannot be right: it reads a
// time before the glint binary was built. The usual cause is a flat CMOS
// battery (the RTC restarts at its epoch, often 1970-01-01 or the board's
// release date). A TOTP code computed from it would not match the phone,
// and the owner would suspect tampering that is not there.
type ClockTooEarlyError struct {
	Now, BuildDate time.Time
}

func (e *ClockTooEarlyError) Error() string {
	return fmt.Sprintf("the clock says %s, which is before this glint was built (%s): TOTP codes would be wrong. "+
		"The CMOS battery may be flat. Set the clock in UTC (glint time set YYYY-MM-DDTHH:MM) "+
		"or compare the time with your phone before trusting a code",
		e.Now.UTC().Format("2006-01-02 15:04 UTC"), e.BuildDate.UTC().Format("2006-01-02"))
}

func (e *ClockTooEarlyError) Unwrap() error { return ErrClockTooEarly }

// CheckClock returns a *ClockTooEarlyError when now is before buildDate.
// buildDate should be the commit date of the source the binary was built
// from (embedded at build time, so the build stays reproducible): no
// correct clock can read earlier than the moment the code was written.
func CheckClock(now, buildDate time.Time) error {
	if now.Before(buildDate) {
		return &ClockTooEarlyError{Now: now, BuildDate: buildDate}
	}
	return nil
}

// MaxUTCOffset bounds RTC offsets: civil time zones run from UTC-12 to
// UTC+14 (Line Islands); 14 h either way covers all of them.
const MaxUTCOffset = 14 * time.Hour

// CorrectRTC turns a clock reading into UTC when the RTC keeps local time.
// Windows keeps the RTC in local time by default, so on a dual-boot
// machine Linux (and glint, reading the RTC as UTC) sees UTC plus the zone
// offset. rtcAheadOfUTC is that offset, from the owner's config: +2h for a
// machine in Central European Summer Time.
func CorrectRTC(rtcReading time.Time, rtcAheadOfUTC time.Duration) time.Time {
	return rtcReading.Add(-rtcAheadOfUTC)
}

// ParseUTCOffset reads an offset as owners write it in config: "+02:00",
// "-05:30", "+0545", "+2", "UTC", "Z" or "0". Minutes must be 00, 15, 30 or
// 45, as in every civil time zone.
func ParseUTCOffset(s string) (time.Duration, error) {
	bad := func(why string) (time.Duration, error) {
		return 0, &ParseError{Input: "UTC offset", Field: "offset", Err: fmt.Errorf("%q: %s (write it as +HH:MM or -HH:MM)", s, why)}
	}
	switch strings.ToUpper(s) {
	case "UTC", "Z", "0", "+00:00", "-00:00":
		return 0, nil
	}
	if len(s) < 2 || len(s) > 6 || (s[0] != '+' && s[0] != '-') {
		return bad("start with + or -")
	}
	sign := time.Duration(1)
	if s[0] == '-' {
		sign = -1
	}
	digits := strings.Replace(s[1:], ":", "", 1)
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return bad("only digits after the sign")
		}
	}
	var h, m int
	switch len(digits) {
	case 1, 2:
		for i := 0; i < len(digits); i++ {
			h = h*10 + int(digits[i]-'0')
		}
	case 4:
		h = int(digits[0]-'0')*10 + int(digits[1]-'0')
		m = int(digits[2]-'0')*10 + int(digits[3]-'0')
	default:
		return bad("hours, or hours and two digits of minutes")
	}
	if m%15 != 0 || m >= 60 {
		return bad("minutes must be 00, 15, 30 or 45")
	}
	d := sign * (time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
	if d > MaxUTCOffset || d < -MaxUTCOffset {
		return bad("more than 14 hours")
	}
	return d, nil
}

// FormatUTCOffset writes d as ParseUTCOffset reads it: "+02:00".
func FormatUTCOffset(d time.Duration) string {
	sign := '+'
	if d < 0 {
		sign, d = '-', -d
	}
	return fmt.Sprintf("%c%02d:%02d", sign, int(d/time.Hour), int(d%time.Hour/time.Minute))
}

// RTCHint is what PossibleLocalTimeRTC found: the offset by which the clock
// runs ahead of UTC that makes glint's code equal the phone's.
type RTCHint struct {
	// RTCAheadOfUTC is positive when the clock is ahead (east of UTC),
	// negative when it is behind, zero when the clock is right.
	RTCAheadOfUTC time.Duration
	// StepsOff is the remaining difference in TOTP periods (-1, 0 or +1):
	// a code read out just as it changed, or a few seconds of drift.
	StepsOff int
	// Candidates counts the offsets that matched. More than one means a
	// coincidence is possible (chance about 1 in 10^digits per offset);
	// ask for a second code before changing the config.
	Candidates int
}

func (h RTCHint) String() string {
	if h.RTCAheadOfUTC == 0 {
		return "the clock agrees with your phone"
	}
	dir, off := "ahead of", h.RTCAheadOfUTC
	if off < 0 {
		dir, off = "behind", -off
	}
	amount := fmt.Sprintf("%g hours", off.Hours())
	if off == time.Hour {
		amount = "1 hour"
	}
	return fmt.Sprintf("your clock seems to run %s %s UTC: the RTC is probably kept in local time "+
		"(a dual-boot with Windows does that). Set rtc_utc_offset = %s in the owner config, "+
		"or make Windows keep UTC (RealTimeIsUniversal), or set the clock with glint time set",
		amount, dir, FormatUTCOffset(h.RTCAheadOfUTC))
}

// ErrNoOffsetMatches means no time-zone offset explains the owner's code.
var ErrNoOffsetMatches = errors.New("no time-zone offset between -14:00 and +14:00 makes glint's TOTP code match the phone's: " +
	"either the clock is wrong by something other than a time zone (set it with glint time set and compare with the phone), " +
	"or the phone holds a different secret (re-enroll with glint otp seal)")

// offsetStep is 15 minutes: whole and half hours cover almost every zone,
// quarter hours add Nepal (+05:45) and the Chatham Islands (+12:45).
const offsetStep = 15 * time.Minute

// PossibleLocalTimeRTC helps an owner whose phone shows a different TOTP
// code: given the code on the phone, it searches the offsets from -14 h to
// +14 h (in quarter hours, and one period either side for a code read as it
// changed) for the one where glint's code at now-offset equals it, nearest
// offset first. An offset of 0 means the clock is fine and the difference
// lies elsewhere.
func PossibleLocalTimeRTC(k Key, now time.Time, phoneCode string) (RTCHint, error) {
	k = k.withDefaults()
	if k.Type != TypeTOTP {
		return RTCHint{}, fmt.Errorf("%w: the clock only matters for totp keys", ErrType)
	}
	if err := k.Validate(); err != nil {
		return RTCHint{}, err
	}
	want, err := ParseCode(strings.TrimSpace(phoneCode), k.Digits)
	if err != nil {
		return RTCHint{}, err
	}
	var best RTCHint
	found := 0
	// Nearest first: 0, +15m, -15m, +30m, -30m, ...
	for i := 0; i <= int(MaxUTCOffset/offsetStep); i++ {
		for _, sign := range []time.Duration{1, -1} {
			off := sign * time.Duration(i) * offsetStep
			if i == 0 && sign < 0 {
				continue
			}
			for _, steps := range []int{0, -1, 1} {
				t := CorrectRTC(now, off).Add(time.Duration(steps) * k.Period)
				code, err := TOTP(k.Algorithm, k.Secret, t, k.Period, k.Digits)
				if err != nil {
					continue // before 1970 at this offset
				}
				if code == want {
					if found == 0 {
						best = RTCHint{RTCAheadOfUTC: off, StepsOff: steps}
					}
					found++
					break
				}
			}
		}
	}
	if found == 0 {
		return RTCHint{}, ErrNoOffsetMatches
	}
	best.Candidates = found
	return best, nil
}
