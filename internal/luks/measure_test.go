package luks

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The digest is byte for byte sha256sum of `cryptsetup luksHeaderBackup`,
// so an owner can check it from any Linux with stock tools.
func TestMeasureEqualsHeaderBackup(t *testing.T) {
	for _, typ := range []string{"luks1", "luks2"} {
		t.Run(typ, func(t *testing.T) {
			img := newImage(t, typ)
			// A second keyslot so LUKS1's area is not just slot 0.
			if err := testCS.AddKey(img, []byte(testPass), []byte("k2"), 3); err != nil {
				t.Fatal(err)
			}
			backup := filepath.Join(t.TempDir(), "hdr.bak")
			cryptsetupCmd(t, nil, "luksHeaderBackup", img, "--header-backup-file", backup)
			want := sha256.Sum256(readFile(t, backup))
			m, err := Measure(img)
			if err != nil {
				t.Fatal(err)
			}
			if m.Digest != Sum(want) {
				t.Errorf("digest %s, sha256 of luksHeaderBackup %x", m.Digest, want)
			}
			if m.Device != img || m.Summary.UUID == "" || len(m.Summary.Keyslots) != 2 {
				t.Errorf("measurement %+v", m)
			}
			if !strings.Contains(m.Description(), m.Summary.UUID) {
				t.Errorf("description %q", m.Description())
			}
		})
	}
}

// Each real change an owner (or attacker) can make with cryptsetup gives a
// digest mismatch whose explanation names the change.
func TestCompareNamesRealChanges(t *testing.T) {
	img := newImage(t, "luks2")
	if err := testCS.AddKey(img, []byte(testPass), []byte("second"), 1); err != nil {
		t.Fatal(err)
	}
	base, err := Measure(img)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Measure(img)
	if err := Compare(base, again); err != nil {
		t.Fatalf("unchanged header: %v", err)
	}

	steps := []struct {
		name   string
		change func()
		want   string
	}{
		{"keyslot added", func() {
			if err := testCS.AddKey(img, []byte(testPass), []byte("glint disk key"), -1); err != nil {
				t.Fatal(err)
			}
		}, "keyslot 31 (pbkdf2, aes-xts-plain64) added"},
		{"keyslot removed", func() {
			if err := testCS.KillSlot(img, []byte(testPass), 31); err != nil {
				t.Fatal(err)
			}
		}, "keyslot 31 (pbkdf2, aes-xts-plain64) removed"},
		{"passphrase changed", func() {
			nk := filepath.Join(t.TempDir(), "new") // a test passphrase, not a secret
			if err := os.WriteFile(nk, []byte("third"), 0o600); err != nil {
				t.Fatal(err)
			}
			cryptsetupCmd(t, []byte("second"), append([]string{"luksChangeKey", "--key-file=-", "--key-slot", "1"}, append(testPBKDF, img, nk)...)...)
		}, "keyslot 1"},
		{"token enrolled", func() { importToken(t, img, tpm2TokenJSON(0)) }, "systemd-cryptenroll TPM2 token 0 on keyslot 0, bound to sha256 PCRs 7 added"},
		{"UUID changed", func() {
			cryptsetupCmd(t, nil, "luksUUID", "-q", "--uuid", "11111111-2222-3333-4444-555555555555", img)
		}, "UUID changed from"},
		{"label set", func() { cryptsetupCmd(t, nil, "config", "--label", "evil", img) }, `label changed from "" to "evil"`},
	}
	prev := base
	for _, s := range steps {
		s.change()
		cur, err := Measure(img)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		err = Compare(prev, cur)
		var ce *ChangedError
		if !errors.As(err, &ce) || !errors.Is(err, ErrHeaderChanged) {
			t.Fatalf("%s: Compare = %v, want *ChangedError", s.name, err)
		}
		if !slices.ContainsFunc(ce.Changes, func(c string) bool { return strings.Contains(c, s.want) }) {
			t.Errorf("%s: changes %q do not mention %q", s.name, ce.Changes, s.want)
		}
		if !strings.Contains(err.Error(), "reseal") {
			t.Errorf("%s: error does not say what to do: %v", s.name, err)
		}
		prev = cur
	}
}

// Tampering cryptsetup would not do for you: forged, checksum-valid
// headers that swap the cipher or point the data elsewhere.
func TestCompareNamesForgedChanges(t *testing.T) {
	orig := readFile(t, newImage(t, "luks2"))
	m0, err := MeasureReader(bytesReader(orig), int64(len(orig)))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		edit func(md map[string]any)
		want []string
	}{
		{"segment cipher_null", func(md map[string]any) {
			md["segments"].(map[string]any)["0"].(map[string]any)["encryption"] = "cipher_null-ecb"
		}, []string{"data cipher changed from aes-xts-plain64 to cipher_null-ecb", "segment 0 cipher changed", "new: the data cipher is cipher_null"}},
		{"keyslot cipher_null", func(md map[string]any) {
			md["keyslots"].(map[string]any)["0"].(map[string]any)["area"].(map[string]any)["encryption"] = "cipher_null-ecb"
		}, []string{"keyslot 0 encryption changed from aes-xts-plain64 to cipher_null-ecb", "new: keyslot 0 uses cipher_null: any passphrase opens it"}},
		{"data moved", func(md map[string]any) {
			md["segments"].(map[string]any)["0"].(map[string]any)["offset"] = "20971520"
		}, []string{"encrypted data now starts at byte 20971520 (was 16777216)", "segment 0 moved"}},
		{"reencryption requirement", func(md map[string]any) {
			md["config"].(map[string]any)["requirements"] = map[string]any{"mandatory": []string{"online-reencrypt-v2"}}
		}, []string{"mandatory requirements changed"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			done := false
			img := forgeLUKS2(t, orig, func(_ []byte, md map[string]any) {
				if !done {
					c.edit(md)
					done = true
				}
			})
			m, err := MeasureReader(bytesReader(img), int64(len(img)))
			if err != nil {
				t.Fatal(err)
			}
			var ce *ChangedError
			if err := Compare(m0, m); !errors.As(err, &ce) {
				t.Fatalf("Compare = %v", err)
			}
			for _, w := range c.want {
				if !slices.ContainsFunc(ce.Changes, func(s string) bool { return strings.Contains(s, w) }) {
					t.Errorf("changes %q do not mention %q", ce.Changes, w)
				}
			}
		})
	}

	// Key material overwritten with the metadata untouched: still a
	// mismatch, and the explanation says which kind of bytes.
	img := append([]byte(nil), orig...)
	img[40000] ^= 1 // inside keyslot 0's area (32768..290816)
	m, err := MeasureReader(bytesReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	var ce *ChangedError
	if err := Compare(m0, m); !errors.As(err, &ce) || len(ce.Changes) != 1 || !strings.Contains(ce.Changes[0], "key material") {
		t.Errorf("key material change: %v", err)
	}
	// Bytes after the header area (the encrypted data) are not measured.
	img = append([]byte(nil), orig...)
	img[17<<20] ^= 1
	m, _ = MeasureReader(bytesReader(img), int64(len(img)))
	if err := Compare(m0, m); err != nil {
		t.Errorf("data change detected as header change: %v", err)
	}
}

func TestMeasureTruncatedDevice(t *testing.T) {
	orig := readFile(t, newImage(t, "luks2"))
	small := orig[:1<<20] // headers intact, keyslot area cut off
	_, err := MeasureReader(bytesReader(small), int64(len(small)))
	if !errors.Is(err, ErrTruncated) {
		t.Errorf("got %v, want ErrTruncated", err)
	}
}

// The stored measurement survives a JSON round trip (it lives on /boot).
func TestMeasurementJSON(t *testing.T) {
	img := newImage(t, "luks2")
	importToken(t, img, tpm2TokenJSON(0))
	m, err := Measure(img)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var back Measurement
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Digest != m.Digest || len(back.Summary.Tokens) != 1 || back.Summary.Tokens[0].TPM2 == nil {
		t.Errorf("round trip: %+v", back)
	}
	if err := Compare(back, m); err != nil {
		t.Errorf("round-tripped measurement differs: %v", err)
	}
	if d := Diff(back.Summary, m.Summary); len(d) != 1 || !strings.Contains(d[0], "bytes outside") {
		t.Errorf("Diff of equal summaries = %q", d)
	}
	var s Sum
	if err := s.UnmarshalText([]byte("abcd")); err == nil {
		t.Errorf("short digest accepted")
	}
	_ = os.Remove(img)
}
