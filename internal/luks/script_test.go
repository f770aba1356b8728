package luks

import (
	"crypto/aes"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMakeLUKSImageScript runs testdata/make-luks-image.sh for real and
// proves the marker is inside the encrypted filesystem: the host has no
// device-mapper, so the test dumps the volume key with cryptsetup, decrypts
// the data segment itself (AES-XTS-plain64) and asks debugfs for the file.
func TestMakeLUKSImageScript(t *testing.T) {
	needCryptsetup(t)
	for _, tool := range []string{"mkfs.ext4", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			if _, err2 := os.Stat("/usr/sbin/" + tool); err2 != nil {
				t.Skipf("%s not installed (apt-get install e2fsprogs)", tool)
			}
		}
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	pass := filepath.Join(dir, "pass")
	if err := os.WriteFile(pass, []byte("e2e recovery"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "testdata/make-luks-image.sh", img, pass, "hello from inside")
	cmd.Env = append(os.Environ(), "PATH="+os.Getenv("PATH")+":/usr/sbin:/sbin")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("script: %v", err)
	}
	uuid := strings.TrimSpace(string(out))

	h, err := ReadHeader(img)
	if err != nil {
		t.Fatal(err)
	}
	if h.Version != 2 || h.UUID != uuid || len(h.Segments) != 1 || h.Segments[0].Encryption != "aes-xts-plain64" {
		t.Fatalf("header %+v (script printed %q)", h, uuid)
	}
	if err := testCS.TestKey(img, []byte("e2e recovery")); err != nil {
		t.Fatalf("recovery passphrase does not open the image: %v", err)
	}
	if _, err := Measure(img); err != nil {
		t.Fatalf("Measure: %v", err)
	}

	// Decrypt the data segment and look for the marker.
	dump := cryptsetupCmd(t, []byte("e2e recovery"), "luksDump", "--dump-volume-key", "--key-file=-", "-q", img)
	_, keyText, ok := strings.Cut(dump, "MK dump:")
	if !ok {
		t.Fatalf("no volume key in luksDump output")
	}
	key, err := hex.DecodeString(strings.Join(strings.Fields(keyText), ""))
	if err != nil || len(key) != 64 {
		t.Fatalf("volume key: %v (%d bytes)", err, len(key))
	}
	raw := readFile(t, img)
	seg := h.Segments[0]
	plain := decryptXTSPlain64(t, key, raw[seg.Offset:], seg.SectorSize)
	fs := filepath.Join(dir, "fs.img")
	if err := os.WriteFile(fs, plain, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := exec.Command("debugfs", "-R", "cat /glint-marker", fs).Output()
	if err != nil || string(got) != "hello from inside\n" {
		t.Errorf("marker = %q, %v", got, err)
	}
}

// decryptXTSPlain64 is dm-crypt's aes-xts-plain64 (IEEE 1619 XTS; the
// tweak is the little-endian sector number counted in sectorSize units
// from the segment start, iv_tweak 0). Test-only, to check the image
// without device-mapper.
func decryptXTSPlain64(t *testing.T, key, data []byte, sectorSize int) []byte {
	t.Helper()
	k1, err := aes.NewCipher(key[:len(key)/2])
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := aes.NewCipher(key[len(key)/2:])
	out := make([]byte, len(data)-len(data)%sectorSize)
	var tweak, x [16]byte
	for s := 0; s*sectorSize < len(out); s++ {
		clear(tweak[:])
		n := uint64(s) * uint64(sectorSize/512) // plain64 counts 512-byte sectors
		for i := 0; i < 8; i++ {
			tweak[i] = byte(n >> (8 * i))
		}
		k2.Encrypt(tweak[:], tweak[:])
		for off := s * sectorSize; off < (s+1)*sectorSize; off += 16 {
			for i := range x {
				x[i] = data[off+i] ^ tweak[i]
			}
			k1.Decrypt(x[:], x[:])
			for i := range x {
				out[off+i] = x[i] ^ tweak[i]
			}
			// Multiply the tweak by alpha in GF(2^128), little-endian.
			carry := tweak[15] >> 7
			for i := 15; i > 0; i-- {
				tweak[i] = tweak[i]<<1 | tweak[i-1]>>7
			}
			tweak[0] = tweak[0]<<1 ^ carry*0x87
		}
	}
	return out
}
