package dongle_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/glint-boot/glint/internal/otp"
	"github.com/glint-boot/glint/internal/otp/dongle"
	"github.com/glint-boot/glint/internal/otp/dongle/dongletest"
)

// These tests run the real client against the simulator in dongletest.
// The simulator cannot show the LED, the OpenPGP card behind the admin
// PIN, touch, USB or firmware timing, or replug behaviour; see its package
// documentation. The client code is the same one that talks to hidraw.

var rfcSecret = []byte("12345678901234567890") // RFC 4226 Appendix D

func newClient(sim *dongletest.Sim) (*dongle.Client, *[]time.Duration) {
	var slept []time.Duration
	return &dongle.Client{Dev: sim, Sleep: func(d time.Duration) { slept = append(slept, d) }}, &slept
}

func code(t *testing.T, counter uint64) uint32 {
	t.Helper()
	c, err := otp.HOTP(otp.SHA1, rfcSecret, counter, 6)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestProgramAndVerify(t *testing.T) {
	sim := dongletest.New()
	c, slept := newClient(sim)
	if err := c.Program([]byte("12345678"), rfcSecret, 0); err != nil {
		t.Fatal(err)
	}
	// The firmware keeps 15 bytes of the name (OTP_slot.name[15]), so the
	// Nitrokey app shows "HEADS Validatio" for Heads' slot too.
	if got := sim.SlotName(); got != dongle.SlotName[:15] {
		t.Errorf("slot name %q, want %q", got, dongle.SlotName[:15])
	}
	if !bytes.Equal(sim.SlotSecret()[:20], rfcSecret) || !bytes.Equal(sim.SlotSecret()[20:], make([]byte, 20)) {
		t.Errorf("slot secret %x", sim.SlotSecret())
	}
	if n, ok := sim.SlotCounter(); !ok || n != 0 {
		t.Errorf("slot counter %d, programmed %v", n, ok)
	}
	// The busy first poll was waited out with the injected sleep.
	if len(*slept) == 0 || (*slept)[0] != 200*time.Millisecond {
		t.Errorf("sleeps %v, want a 200 ms first delay", *slept)
	}
	// RFC 4226 Appendix D codes are accepted in order, with the secret
	// zero-padded to 40 bytes as the firmware stores it.
	for counter := uint64(0); counter < 5; counter++ {
		v, err := c.Verify(code(t, counter))
		if err != nil || !v.Valid || v.Offset != 0 {
			t.Fatalf("counter %d: %+v, %v", counter, v, err)
		}
	}
	// A replayed code is refused: the counter moved past it.
	if v, err := c.Verify(code(t, 4)); err != nil || v.Valid {
		t.Errorf("replayed code: %+v, %v", v, err)
	}
	// Look-ahead: the code for counter 5+3 is accepted at offset 3 and
	// moves the counter to 9; 5+10 is outside the window.
	v, err := c.Verify(code(t, 8))
	if err != nil || !v.Valid || v.Offset != 3 {
		t.Errorf("look-ahead 3: %+v, %v", v, err)
	}
	if n, _ := sim.SlotCounter(); n != 9 {
		t.Errorf("counter after look-ahead %d, want 9", n)
	}
	if v, err := c.Verify(code(t, 9+dongle.LookAhead)); err != nil || v.Valid {
		t.Errorf("outside the window: %+v, %v", v, err)
	}
	if n, _ := sim.SlotCounter(); n != 9 {
		t.Errorf("a miss moved the counter to %d", n)
	}
	// The package-level helpers take the same path.
	if ok, err := dongle.Verify(sim, code(t, 9)); err != nil || !ok {
		t.Errorf("dongle.Verify: %v, %v", ok, err)
	}
}

func TestProgramCounterAnd8Digits(t *testing.T) {
	sim := dongletest.New()
	c, _ := newClient(sim)
	c.Digits = 8
	secret := bytes.Repeat([]byte{0xA5}, dongle.MaxSecretLen) // two SEND_OTP_DATA chunks
	if err := c.Program([]byte("12345678"), secret, 1000); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sim.SlotSecret(), secret) {
		t.Errorf("40-byte secret stored as %x", sim.SlotSecret())
	}
	want, _ := otp.HOTP(otp.SHA1, secret, 1000, 8)
	if v, err := c.Verify(want); err != nil || !v.Valid {
		t.Errorf("8-digit code at counter 1000: %+v, %v", v, err)
	}
}

func TestTemporaryPasswordIsRandom(t *testing.T) {
	sim := dongletest.New()
	c, _ := newClient(sim)
	for i := 0; i < 2; i++ {
		if err := c.Program([]byte("12345678"), rfcSecret, 0); err != nil {
			t.Fatal(err)
		}
	}
	temps := sim.TemporaryPasswords()
	if len(temps) != 2 {
		t.Fatalf("%d logins", len(temps))
	}
	var zero [25]byte
	if temps[0] == zero || temps[1] == zero || temps[0] == temps[1] {
		t.Errorf("temporary passwords are not fresh random values: %x %x", temps[0], temps[1])
	}
}

func TestWrongAdminPIN(t *testing.T) {
	sim := dongletest.New()
	c, _ := newClient(sim)
	err := c.Program([]byte("87654321"), rfcSecret, 0)
	var wp *dongle.WrongPINError
	if !errors.As(err, &wp) || wp.TriesLeft != 2 || !errors.Is(err, dongle.ErrWrongPIN) {
		t.Fatalf("err = %v, want WrongPINError with 2 tries left", err)
	}
	if !strings.Contains(err.Error(), "wrong admin PIN: 2 tries left on the card") {
		t.Errorf("message %q", err)
	}
	if _, ok := sim.SlotCounter(); ok {
		t.Error("slot programmed after a wrong PIN")
	}
	c.Program([]byte("87654321"), rfcSecret, 0)
	err = c.Program([]byte("87654321"), rfcSecret, 0)
	if !errors.Is(err, dongle.ErrPINLocked) {
		t.Fatalf("third wrong PIN: err = %v, want ErrPINLocked", err)
	}
	// With 0 tries left the client does not even try (it would burn nothing,
	// but the owner needs the unblock instructions, not "wrong PIN").
	before := len(sim.Requests())
	err = c.Program([]byte("12345678"), rfcSecret, 0)
	if !errors.Is(err, dongle.ErrPINLocked) {
		t.Fatalf("locked: err = %v", err)
	}
	for _, cmd := range sim.Requests()[before:] {
		if cmd == 0x07 {
			t.Error("FIRST_AUTHENTICATE sent with 0 tries left")
		}
	}
}

func TestNotProgrammed(t *testing.T) {
	c, _ := newClient(dongletest.New())
	_, err := c.Verify(123456)
	if !errors.Is(err, dongle.ErrNotProgrammed) || !strings.Contains(err.Error(), "glint otp seal --hotp") {
		t.Errorf("err = %v", err)
	}
}

func TestInfo(t *testing.T) {
	sim := dongletest.New()
	sim.AdminRetries, sim.UserRetries = 2, 3
	sim.FwMajor, sim.FwMinor, sim.CardSerial = 0, 15, 0x11223344
	info, err := dongle.GetInfo(sim)
	if err != nil {
		t.Fatal(err)
	}
	want := dongle.Info{FirmwareMajor: 0, FirmwareMinor: 15, CardSerial: 0x11223344, AdminRetries: 2, UserRetries: 3}
	if info != want || info.Firmware() != "v0.15" {
		t.Errorf("Info = %+v (%s), want %+v", info, info.Firmware(), want)
	}
}

func TestPollingFaults(t *testing.T) {
	sim := dongletest.New()
	c, slept := newClient(sim)
	sim.BusyPolls = 5
	if _, err := c.Info(); err != nil {
		t.Fatalf("5 busy polls: %v", err)
	}
	if n := len(*slept); n < 5 {
		t.Errorf("slept %d times for 5 busy polls", n)
	}

	// A corrupted answer (bad CRC) is polled again, not believed.
	sim.BusyPolls = 0
	sim.CorruptNextAnswer = true
	if _, err := c.Info(); err != nil {
		t.Errorf("corrupted answer: %v", err)
	}
	// An answer to some other request (its echoed CRC differs) is never
	// accepted; with only that answer on offer the client gives up.
	sim.StaleNextAnswer = true
	c.Polls = 1
	if _, err := c.Info(); !errors.Is(err, dongle.ErrNoAnswer) {
		t.Errorf("stale answer: err = %v, want ErrNoAnswer", err)
	}
	// A device busy for longer than the polls allow.
	sim.BusyPolls = 100
	c.Polls = 40
	_, err := c.Verify(1)
	if !errors.Is(err, dongle.ErrNoAnswer) || !strings.Contains(err.Error(), "busy") {
		t.Errorf("endless busy: err = %v", err)
	}
	// An unplugged device.
	sim.Close()
	if _, err := c.Info(); err == nil {
		t.Error("closed device answered")
	}
}

func TestProgramArgumentChecks(t *testing.T) {
	c, _ := newClient(dongletest.New())
	for name, pin := range map[string][]byte{"empty": nil, "26 bytes": bytes.Repeat([]byte("1"), 26), "NUL": []byte("1234\x005678")} {
		if err := c.Program(pin, rfcSecret, 0); err == nil {
			t.Errorf("PIN %s accepted", name)
		}
	}
	if err := c.Program([]byte("12345678"), make([]byte, 41), 0); err == nil {
		t.Error("41-byte secret accepted")
	}
	c.Digits = 7
	if err := c.Program([]byte("12345678"), rfcSecret, 0); err == nil {
		t.Error("7 digits accepted")
	}
}

func BenchmarkVerify(b *testing.B) {
	sim := dongletest.New()
	c := &dongle.Client{Dev: sim, Sleep: func(time.Duration) {}}
	if err := c.Program([]byte("12345678"), rfcSecret, 0); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := c.Verify(1); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSkippedCodesSaid: codes computed but never shown to the dongle
// (someone else used the secret) are accepted by its look-ahead; the
// verdict says how many instead of a plain VALID.
func TestSkippedCodesSaid(t *testing.T) {
	sim := dongletest.New()
	c, _ := newClient(sim)
	if err := c.Program([]byte("12345678"), rfcSecret, 0); err != nil {
		t.Fatal(err)
	}
	v, err := c.Verify(code(t, 0))
	if err != nil || v.String() != "VALID: the dongle's LED is green" {
		t.Fatalf("in step: %v, %v", v, err)
	}
	// Codes for counters 1, 2, 3 were computed elsewhere; 4 reaches the dongle.
	v, err = c.Verify(code(t, 4))
	if err != nil || !v.Valid || !v.OffsetKnown || v.Offset != 3 {
		t.Fatalf("look-ahead: %+v, %v", v, err)
	}
	if s := v.String(); !strings.Contains(s, "VALID, but 3 codes were skipped") {
		t.Fatalf("verdict %q", s)
	}
	if err := otp.CheckVerifyOffset(v.Offset); err == nil || !strings.Contains(err.Error(), "3 HOTP code(s)") {
		t.Fatalf("CheckVerifyOffset: %v", err)
	}
	if s := (dongle.Verification{Valid: true}).String(); !strings.Contains(s, "cannot tell whether codes were skipped") {
		t.Fatalf("a dongle that cannot tell the offset: %q", s)
	}
	if v, _ := c.Verify(code(t, 3)); v.Valid || v.String() != "INVALID: the dongle's LED is red" {
		t.Fatalf("old code: %v", v)
	}
}

// TestLoginBeforeProgramming: the PIN is checked before anything is
// written, so glint can check it, program the dongle, and only then commit
// a new secret; a wrong PIN leaves the slot as it was.
func TestLoginBeforeProgramming(t *testing.T) {
	sim := dongletest.New()
	c, _ := newClient(sim)
	if err := c.Program([]byte("12345678"), rfcSecret, 7); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login([]byte("wrong")); !errors.Is(err, dongle.ErrWrongPIN) {
		t.Fatalf("wrong PIN: %v", err)
	}
	if n, _ := sim.SlotCounter(); n != 7 || !bytes.Equal(sim.SlotSecret()[:20], rfcSecret) {
		t.Fatal("a wrong PIN changed the slot")
	}
	if tries, err := c.AdminTries(); err != nil || tries != 2 {
		t.Fatalf("tries after one wrong PIN: %d, %v", tries, err)
	}
	s, err := c.Login([]byte("12345678"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	other := bytes.Repeat([]byte{0x42}, 20)
	if err := s.Program(other, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sim.SlotSecret()[:20], other) {
		t.Fatal("the session did not program the slot")
	}
	if tries, _ := c.AdminTries(); tries != 3 {
		t.Fatalf("a good login should restore the tries: %d", tries)
	}
}

// TestNoTriesLeftSaidBeforeAsking: with the card's admin PIN locked,
// AdminTries says so, and nothing would burn or be asked.
func TestNoTriesLeftSaidBeforeAsking(t *testing.T) {
	sim := dongletest.New()
	sim.AdminRetries = 0
	c, _ := newClient(sim)
	if _, err := c.AdminTries(); !errors.Is(err, dongle.ErrPINLocked) || !strings.Contains(err.Error(), "0 tries left") {
		t.Fatalf("AdminTries: %v", err)
	}
	if _, err := c.Login([]byte("12345678")); !errors.Is(err, dongle.ErrPINLocked) {
		t.Fatalf("Login: %v", err)
	}
	for _, cmd := range sim.Requests() {
		if cmd == 0x07 {
			t.Fatal("FIRST_AUTHENTICATE sent with no tries left")
		}
	}
}
