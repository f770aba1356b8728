package otp

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCounterFileRoundTrip(t *testing.T) {
	r := NewCounterRecord(rfc4226Secret, 42)
	raw := r.Marshal()
	if !strings.HasPrefix(string(raw), "glint-hotp-counter v1\ncounter 42\nmac ") || len(raw) > maxCounterFile {
		t.Fatalf("unexpected file:\n%s", raw)
	}
	back, err := ParseCounterFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	if back != r || !back.Verify(rfc4226Secret) {
		t.Errorf("round trip: %+v", back)
	}
	if back.Verify([]byte("another secret")) {
		t.Error("verified with the wrong secret")
	}
	max := NewCounterRecord(rfc4226Secret, ^uint64(0)).Marshal()
	if len(max) > maxCounterFile {
		t.Errorf("largest file is %d bytes, above the cap", len(max))
	}
}

func TestParseCounterFileRejects(t *testing.T) {
	good := string(NewCounterRecord(rfc4226Secret, 7).Marshal())
	mac := good[strings.Index(good, "mac "):]
	cases := map[string]string{
		"empty":            "",
		"wrong header":     strings.Replace(good, "v1", "v2", 1),
		"leading zero":     strings.Replace(good, "counter 7", "counter 07", 1),
		"negative":         strings.Replace(good, "counter 7", "counter -7", 1),
		"overflow":         strings.Replace(good, "counter 7", "counter 18446744073709551616", 1),
		"upper-case hex":   strings.Replace(good, mac, strings.ToUpper(mac[:4])+strings.ToUpper(mac[4:]), 1),
		"short mac":        good[:len(good)-3] + "\n",
		"no final newline": strings.TrimSuffix(good, "\n"),
		"trailing bytes":   good + "x",
		"CRLF":             strings.ReplaceAll(good, "\n", "\r\n"),
		"huge":             good + strings.Repeat("\n", 300),
		"plain decimal":    "42\n", // Heads' kexec_hotp_counter format
	}
	for name, raw := range cases {
		_, err := ParseCounterFile([]byte(raw))
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("%s: err = %v, want *ParseError", name, err)
		}
	}
}

func TestCounterStore(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, CounterFileName)

	if _, err := ReadCounter(path, rfc4226Secret, 0); !errors.Is(err, ErrNoCounter) || !strings.Contains(err.Error(), "glint otp seal --hotp") {
		t.Fatalf("missing file: err = %v", err)
	}
	if err := WriteCounter(path, rfc4226Secret, 5); err != nil {
		t.Fatal(err)
	}
	for want := uint64(5); want < 8; want++ {
		c, err := ReserveCounter(path, rfc4226Secret, 0)
		if err != nil || c != want {
			t.Fatalf("ReserveCounter = %d, %v; want %d", c, err, want)
		}
	}
	if c, err := ReadCounter(path, rfc4226Secret, 0); err != nil || c != 8 {
		t.Fatalf("after three reservations: %d, %v", c, err)
	}
	// No temporary files left behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the counter file", len(entries))
	}

	// Writing a lower counter under the same secret is refused.
	var rb *CounterRollbackError
	if err := WriteCounter(path, rfc4226Secret, 3); !errors.As(err, &rb) || !rb.Write {
		t.Fatalf("lowering: err = %v", err)
	}

	// A file restored from an older /boot copy verifies, but a floor from a
	// monotonic source catches it.
	old := NewCounterRecord(rfc4226Secret, 6).Marshal()
	if err := os.WriteFile(path, old, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadCounter(path, rfc4226Secret, 8)
	if !errors.As(err, &rb) || rb.Found != 6 || rb.Floor != 8 || !errors.Is(err, ErrCounterRollback) {
		t.Fatalf("rollback: err = %v", err)
	}
	if !strings.Contains(err.Error(), "older copy") {
		t.Errorf("rollback message %q does not say what happened", err)
	}

	// An edited counter (forward jump without the secret) is named.
	forged := strings.Replace(string(NewCounterRecord(rfc4226Secret, 9).Marshal()), "counter 9", "counter 900", 1)
	if err := os.WriteFile(path, []byte(forged), 0o644); err != nil {
		t.Fatal(err)
	}
	var fe *CounterForgedError
	if _, err := ReadCounter(path, rfc4226Secret, 0); !errors.As(err, &fe) || fe.Claimed != 900 || !errors.Is(err, ErrCounterForged) {
		t.Fatalf("forged: err = %v", err)
	}
	// Re-sealing with a new secret overwrites a file that does not verify.
	if err := WriteCounter(path, []byte("new secret after re-seal"), 0); err != nil {
		t.Fatalf("re-seal: %v", err)
	}
	// Heads' unsigned format is not accepted.
	if err := os.WriteFile(path, []byte("42\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var pe *ParseError
	if _, err := ReadCounter(path, rfc4226Secret, 0); !errors.As(err, &pe) {
		t.Fatalf("Heads format: err = %v", err)
	}

	// The counter cannot wrap.
	if err := WriteCounter(path, rfc4226Secret, ^uint64(0)); err != nil {
		t.Fatal(err)
	}
	if _, err := ReserveCounter(path, rfc4226Secret, 0); err == nil {
		t.Fatal("ReserveCounter wrapped past 2^64-1")
	}
}

func TestWriteCounterUnwritable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root: a read-only directory does not stop root (this test needs an unprivileged user)")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o700)
	err := WriteCounter(filepath.Join(dir, CounterFileName), rfc4226Secret, 1)
	if !errors.Is(err, fs.ErrPermission) {
		t.Errorf("read-only /boot: err = %v", err)
	}
}

func TestCheckVerifyOffset(t *testing.T) {
	if err := CheckVerifyOffset(0); err != nil {
		t.Error(err)
	}
	var se *SkippedCodesError
	if err := CheckVerifyOffset(3); !errors.As(err, &se) || se.Skipped != 3 || !strings.Contains(err.Error(), "3 HOTP code(s)") {
		t.Errorf("offset 3: %v", err)
	}
}
