package sealed

import (
	"bytes"
	"testing"

	"github.com/glint-boot/glint/internal/luks"
	"github.com/glint-boot/glint/internal/tpm"
)

// A network-bound key on a real LUKS2 volume and a real swtpm: the sealed
// key alone does not open the disk, the sealed key with the server's half
// does, and another half does not.
func TestNetworkDiskKey(t *testing.T) {
	img := luksImage(t)
	bootDir, tpmDir := t.TempDir(), t.TempDir()
	s, _ := workstation(t, tpm.Version20, tpmDir, bootDir)
	half := bytes.Repeat([]byte{0x5a}, 32)
	device := bytes.Repeat([]byte{0xd1}, 32)
	rec, err := s.SealNetworkDisk(img, []byte(luksPass), "root_crypt", half, device, "https://attest.example:8443")
	if err != nil {
		t.Fatalf("seal: %v", err)
	}
	server, id, bound, err := NetworkBound(rec)
	if err != nil || !bound || server != "https://attest.example:8443" || !bytes.Equal(id, device) {
		t.Fatalf("NetworkBound = %q %x %v %v", server, id, bound, err)
	}
	s, _ = workstation(t, tpm.Version20, tpmDir, bootDir)
	sealedKey, err := s.UnsealDiskOn(img, nil)
	if err != nil {
		t.Fatalf("unseal: %v", err)
	}
	if luks.TestKey(img, sealedKey) == nil {
		t.Fatal("the TPM's half alone opens the volume")
	}
	key, err := NetworkDiskKey(sealedKey, half, device)
	if err != nil {
		t.Fatal(err)
	}
	if err := luks.TestKey(img, key); err != nil {
		t.Fatalf("the combined key does not open the volume: %v", err)
	}
	other, _ := NetworkDiskKey(sealedKey, bytes.Repeat([]byte{0x5b}, 32), device)
	if luks.TestKey(img, other) == nil {
		t.Fatal("another server half opens the volume")
	}
	otherLocal, _ := NetworkDiskKey(bytes.Repeat([]byte{0x11}, 32), half, device)
	if luks.TestKey(img, otherLocal) == nil {
		t.Fatal("the server's half with another TPM's half opens the volume")
	}
	if _, err := NetworkDiskKey(sealedKey, half[:15], device); err == nil {
		t.Fatal("a 15-byte server half was accepted")
	}
}
