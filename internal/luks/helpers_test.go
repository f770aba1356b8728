package luks

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// testPBKDF keeps keyslot operations fast in tests (cryptsetup's default
// argon2id would take seconds and a GiB of RAM per call).
var testPBKDF = []string{"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"}

var testCS = &Cryptsetup{PBKDF: testPBKDF}

const testPass = "recovery passphrase\n with newline"

func needCryptsetup(t testing.TB) string {
	t.Helper()
	c := &Cryptsetup{}
	p, err := c.binary()
	if err != nil {
		t.Skip("cryptsetup not installed (apt-get install cryptsetup-bin): ", err)
	}
	return p
}

// cryptsetupCmd runs real cryptsetup and fails the test on error.
func cryptsetupCmd(t testing.TB, stdin []byte, args ...string) string {
	t.Helper()
	bin := needCryptsetup(t)
	cmd := exec.Command(bin, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("cryptsetup %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// newImage makes a 32 MiB LUKS image of typ ("luks1" or "luks2") with
// testPass in slot 0, using the real cryptsetup.
func newImage(t testing.TB, typ string) string {
	t.Helper()
	needCryptsetup(t)
	img := filepath.Join(t.TempDir(), typ+".img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 32<<20); err != nil {
		t.Fatal(err)
	}
	args := []string{"luksFormat", "--type", typ, "-q", "--key-file=-"}
	if typ == "luks2" {
		args = append(args, testPBKDF...)
	} else {
		args = append(args, "--pbkdf-force-iterations", "1000")
	}
	cryptsetupCmd(t, []byte(testPass), append(args, img)...)
	return img
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// importToken adds a LUKS2 token with real cryptsetup.
func importToken(t testing.TB, img string, tokenJSON string) {
	t.Helper()
	cryptsetupCmd(t, []byte(tokenJSON), "token", "import", "--json-file=-", img)
}

// tpm2TokenJSON is a token as systemd-cryptenroll --tpm2-device writes it
// (systemd 255 field set), bound to PCR 7 on keyslot slot.
func tpm2TokenJSON(slot int) string {
	blob := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xa5}, 222))
	return fmt.Sprintf(`{"type":"systemd-tpm2","keyslots":["%d"],"tpm2-blob":"%s","tpm2-pcrs":[7],`+
		`"tpm2-pcr-bank":"sha256","tpm2-primary-alg":"ecc",`+
		`"tpm2-policy-hash":"4e0d5ba3a8e3e41bfb1d7e5a5b5a1f4d2b3c0c6e3b7f5a9d8c7b6a5f4e3d2c1b",`+
		`"tpm2-pin":false,"tpm2_pcrlock":false,"tpm2_srk":"gQAAAQ=="}`, slot, blob)
}

// forgeLUKS2 rewrites both header copies of a LUKS2 image (in memory) with
// edit applied to the binary header and metadata JSON, then fixes the
// checksums so the result is a well-formed header carrying the edit: the way
// an attacker with the disk would tamper.
func forgeLUKS2(t testing.TB, img []byte, edit func(bin []byte, md map[string]any)) []byte {
	t.Helper()
	out := append([]byte(nil), img...)
	hdrSize := binary.BigEndian.Uint64(out[offHdrSize:])
	// Decode once from the primary; write the same edit to both copies.
	js := out[luks2BinaryHeaderSize:hdrSize]
	if i := bytes.IndexByte(js, 0); i >= 0 {
		js = js[:i]
	}
	var md map[string]any
	if err := json.Unmarshal(js, &md); err != nil {
		t.Fatal(err)
	}
	for _, off := range []uint64{0, hdrSize} {
		bin := out[off : off+luks2BinaryHeaderSize]
		edit(bin, md)
		enc, err := json.Marshal(md)
		if err != nil {
			t.Fatal(err)
		}
		writeLUKS2Copy(t, out[off:off+hdrSize], enc)
	}
	return out
}

// writeLUKS2Copy stores jsonText in the copy's JSON area and recomputes its checksum.
func writeLUKS2Copy(t testing.TB, copyBytes []byte, jsonText []byte) {
	t.Helper()
	area := copyBytes[luks2BinaryHeaderSize:]
	if len(jsonText) >= len(area) {
		t.Fatalf("forged JSON of %d bytes does not fit %d", len(jsonText), len(area))
	}
	clear(area)
	copy(area, jsonText)
	fixChecksum(copyBytes)
}

func fixChecksum(copyBytes []byte) {
	clear(copyBytes[offChecksum : offChecksum+checksumLen])
	sum := sha256.Sum256(copyBytes)
	copy(copyBytes[offChecksum:], sum[:])
}

func writeTemp(t testing.TB, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "forged.img")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
