package tpm_test

import (
	"crypto/sha256"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/tpm"
	"github.com/glint-boot/glint/internal/tpm/swtpmtest"
)

func TestAlgNamesRoundTrip(t *testing.T) {
	for _, c := range []struct {
		alg  tpm.Alg
		name string
		size int
	}{
		{tpm.SHA1, "sha1", 20}, {tpm.SHA256, "sha256", 32}, {tpm.SHA384, "sha384", 48},
		{tpm.SHA512, "sha512", 64}, {tpm.SM3_256, "sm3_256", 32},
	} {
		if got := c.alg.String(); got != c.name {
			t.Errorf("%#04x prints %q, want %q", uint16(c.alg), got, c.name)
		}
		for _, in := range []string{c.name, strings.ToUpper(c.name)} {
			if a, err := tpm.ParseAlg(in); err != nil || a != c.alg {
				t.Errorf("ParseAlg(%q) = %v, %v; want %v", in, a, err, c.alg)
			}
		}
		if c.alg.Size() != c.size {
			t.Errorf("%s size %d, want %d", c.alg, c.alg.Size(), c.size)
		}
	}
	if a, err := tpm.ParseAlg("SHA-256"); err != nil || a != tpm.SHA256 {
		t.Errorf("ParseAlg(SHA-256) = %v, %v", a, err)
	}
	if _, err := tpm.ParseAlg("md5"); err == nil || !strings.Contains(err.Error(), "md5") {
		t.Errorf("ParseAlg(md5) = %v, want an error naming it", err)
	}
	unknown := tpm.Alg(0x42)
	if unknown.String() != "alg-0x0042" || unknown.Size() != 0 {
		t.Errorf("unknown algorithm prints %q, size %d", unknown, unknown.Size())
	}
	if _, err := unknown.Hash(); !errors.Is(err, tpm.ErrUnsupported) {
		t.Errorf("Hash of an unknown algorithm: %v, want ErrUnsupported", err)
	}
	if _, err := tpm.SM3_256.Hash(); !errors.Is(err, tpm.ErrUnsupported) {
		t.Errorf("Hash of SM3: %v, want ErrUnsupported (no SM3 in Go)", err)
	}
	h, err := tpm.SHA256.Hash()
	if err != nil {
		t.Fatal(err)
	}
	hh := h.New()
	hh.Write([]byte("glint"))
	if want := sha256.Sum256([]byte("glint")); string(hh.Sum(nil)) != string(want[:]) {
		t.Error("SHA256.Hash does not compute SHA-256")
	}
}

func TestChooseBank(t *testing.T) {
	if b := tpm.ChooseBank(start20(t)); b != tpm.SHA256 {
		t.Errorf("TPM 2.0 with sha1 and sha256: chose %s, want sha256", b)
	}
	if b := tpm.ChooseBank(open(t, swtpmtest.Start(t, tpm.Version12))); b != tpm.SHA1 {
		t.Errorf("TPM 1.2: chose %s, want sha1", b)
	}
}

// Some firmware allocates only the SHA-1 bank on a TPM 2.0. Here a real
// TPM2_PCR_Allocate (tpm2-tools) and a TPM reset make swtpm so, and glint
// must then choose SHA-1 in the flow and the CLI alike.
func TestChooseBankSHA1OnlyTPM20(t *testing.T) {
	for _, tool := range []string{"tpm2_pcrallocate", "swtpm_ioctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (make deps installs tpm2-tools and swtpm-tools)", tool)
		}
	}
	spec := swtpmtest.StartTCP(t, tpm.Version20)
	host, portStr, _ := strings.Cut(strings.TrimPrefix(spec, "swtpm:tcp:"), ":")
	port, err := strconv.Atoi(portStr)
	if err != nil {
		t.Fatalf("spec %q: %v", spec, err)
	}
	alloc := exec.Command("tpm2_pcrallocate", "sha1:all+sha256:none")
	alloc.Env = append(os.Environ(), "TPM2TOOLS_TCTI=swtpm:host="+host+",port="+portStr)
	if out, err := alloc.CombinedOutput(); err != nil {
		t.Fatalf("tpm2_pcrallocate: %v\n%s", err, out)
	}
	// The allocation takes effect at the next TPM reset (Part 3, 22.5).
	if out, err := exec.Command("swtpm_ioctl", "--tcp", host+":"+strconv.Itoa(port+1), "-i").CombinedOutput(); err != nil {
		t.Fatalf("swtpm_ioctl -i: %v\n%s", err, out)
	}
	dev := open(t, spec)
	banks, err := dev.Banks()
	if err != nil || len(banks) != 1 || banks[0] != tpm.SHA1 {
		t.Fatalf("after allocating sha1 only: banks %v, %v", banks, err)
	}
	if b := tpm.ChooseBank(dev); b != tpm.SHA1 {
		t.Errorf("SHA-1-only TPM 2.0: chose %s, want sha1", b)
	}
}
