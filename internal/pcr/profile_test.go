package pcr

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/tpm"
)

// Expected values computed independently (Python hashlib): H(zero || H("glint")).
func TestExtendVectors(t *testing.T) {
	for _, c := range []struct {
		bank tpm.Alg
		want string
	}{
		{tpm.SHA256, "9b028064132a324492414ebb1a50c8151fa8a85b0582b72c13af5cd33698d4a9"},
		{tpm.SHA1, "8d44d29043d6f985ddabc7a3a0821e0bb05b43fa"},
	} {
		got := hex.EncodeToString(Replay(c.bank, Measure(c.bank, []byte("glint"))))
		if got != c.want {
			t.Errorf("bank %#x: %s, want %s", c.bank, got, c.want)
		}
	}
}

func TestProfiles(t *testing.T) {
	for _, p := range []Profile{Coreboot, UEFI} {
		q, err := ByName(p.Name)
		if err != nil || q.Name != p.Name {
			t.Fatalf("ByName(%q): %v", p.Name, err)
		}
		for _, i := range p.OTP {
			if i == Modules || i == LUKS {
				t.Errorf("%s: OTP sealed to PCR %d, which changes with USB drivers or LUKS passphrases", p.Name, i)
			}
		}
	}
	if !strings.Contains(Coreboot.Describe(2), "payload") || !strings.Contains(UEFI.Describe(7), "Secure Boot") {
		t.Error("descriptions do not say what the PCRs hold")
	}
	if _, err := ByName("bios"); err == nil {
		t.Error("unknown profile accepted")
	}
}
