package flash

import (
	"os"
	"path/filepath"
	"testing"
)

// The samples in testdata/flashrom are real output of Debian 12's flashrom
// 1.3 with the dummy programmer (emulate=W25Q128FV over a file; emulate=
// MX25L6436 for the ambiguous probe, the same family as the X230's chip;
// spi_ignorelist=02 for a write whose page programs are lost; hwwp=yes,
// spi_status=0x9c for a chip whose block protection is locked by its WP#
// pin).
func sample(t *testing.T, name string) *Report {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "flashrom", name))
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseOutput(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return r
}

func TestParseOutputSamples(t *testing.T) {
	r := sample(t, "probe.txt")
	if len(r.Chips) != 1 || r.Chips[0].Name != "W25Q128.V" || r.Chips[0].Vendor != "Winbond" || r.Chips[0].Size != 16<<20 || r.Chips[0].Bus != "SPI" || r.Chips[0].On != "dummy" {
		t.Errorf("probe: %+v", r.Chips)
	}
	r = sample(t, "probe-ambiguous.txt")
	if len(r.Ambiguous) != 4 || r.Ambiguous[1] != "MX25L6405D" || len(r.Chips) != 4 {
		t.Errorf("ambiguous: %q, chips %+v", r.Ambiguous, r.Chips)
	}
	if r = sample(t, "probe-nochip.txt"); !r.NoChip || len(r.Chips) != 0 {
		t.Errorf("no chip: %+v", r)
	}
	if r = sample(t, "read.txt"); len(r.Failed) != 0 || len(r.Chips) != 1 {
		t.Errorf("read: %+v", r)
	}
	if r = sample(t, "verify-ok.txt"); !r.Verified || r.VerifyFailed || len(r.Failed) != 0 {
		t.Errorf("verify ok: %+v", r)
	}
	if r = sample(t, "verify-failed.txt"); !r.VerifyFailed || r.Verified || r.FailedAt != 0x4bff {
		t.Errorf("verify failed: %+v", r)
	}
	if r = sample(t, "write-ok.txt"); !r.Verified || len(r.Failed) != 0 {
		t.Errorf("write ok: %+v", r)
	}
	if r = sample(t, "write-identical.txt"); !r.Identical {
		t.Errorf("write identical: %+v", r)
	}
	if r = sample(t, "write-failed.txt"); !r.VerifyFailed || !r.UnknownState || r.FailedAt != 0x4000 || len(r.Failed) == 0 {
		t.Errorf("write failed: %+v", r)
	}
	if r = sample(t, "write-protected.txt"); !r.WriteProtected || len(r.Failed) == 0 {
		t.Errorf("write protected: %+v", r)
	}
	if r = sample(t, "write-wrong-size.txt"); !r.SizeMismatch || r.ImageSize != 8<<20 || r.ExpectedSize != 16<<20 {
		t.Errorf("wrong size: %+v", r)
	}
}

func TestParseOutputHostile(t *testing.T) {
	for name, in := range map[string]string{
		"escape in chip name": "Found Evil flash chip \"\x1b[2J\" (16384 kB, SPI) on dummy.\n",
		"huge size":           "Found Evil flash chip \"X\" (99999999999 kB, SPI) on dummy.\n",
		"huge offset":         "Verifying flash... FAILED at 0xffffffffffffffff!\n",
	} {
		r, err := ParseOutput([]byte(in))
		switch name {
		case "escape in chip name":
			if err != nil || len(r.Chips) != 1 || r.Chips[0].Name != "?[2J" {
				t.Errorf("%s: %+v %v", name, r, err)
			}
		default:
			if err == nil {
				t.Errorf("%s: accepted: %+v", name, r)
			}
		}
	}
	if _, err := ParseOutput(make([]byte, MaxOutput+1)); err == nil {
		t.Error("output over the cap accepted")
	}
}
