package luks

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFindByUUID: real LUKS2 images made by cryptsetup. The good volume,
// an unrelated LUKS volume and a plain file are found or skipped; a copy
// of the good header on a second "disk" (the attack: the sealed key's
// unsigned record pointed at it) makes the UUID ambiguous and is refused.
func TestFindByUUID(t *testing.T) {
	good := newImage(t, "luks2")
	other := newImage(t, "luks2")
	plain := filepath.Join(t.TempDir(), "plain.img")
	if err := os.WriteFile(plain, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := ReadHeader(good)
	if err != nil {
		t.Fatal(err)
	}
	v, err := FindByUUID([]string{plain, other, good, "/nonexistent"}, strings.ToUpper(h.UUID))
	if err != nil || v.Device != good || v.Header.UUID != h.UUID {
		t.Fatalf("FindByUUID: %+v, %v", v, err)
	}
	if _, err := FindByUUID([]string{plain, other}, h.UUID); !errors.Is(err, ErrNoVolume) {
		t.Fatalf("missing volume: %v", err)
	}
	// The attacker's disk: the good header copied onto another device,
	// with whatever behind it.
	copyDisk := filepath.Join(t.TempDir(), "copy.img")
	hdr := readFile(t, good)[:16<<20]
	if err := os.WriteFile(copyDisk, hdr, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = FindByUUID([]string{good, copyDisk, other}, h.UUID)
	var ae *AmbiguousUUIDError
	if !errors.As(err, &ae) || len(ae.Devices) != 2 || !strings.Contains(err.Error(), copyDisk) || !strings.Contains(err.Error(), "releases no disk key") {
		t.Fatalf("copied header: %v", err)
	}
	// A UUID cryptsetup itself assigned to a second volume is the same case.
	cryptsetupCmd(t, []byte(testPass), "luksUUID", "-q", "--uuid", h.UUID, other)
	if _, err := FindByUUID([]string{good, other}, h.UUID); !errors.As(err, &ae) {
		t.Fatalf("two volumes with one UUID: %v", err)
	}
}
