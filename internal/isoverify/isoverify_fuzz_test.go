package isoverify

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"testing/fstest"
)

// Seeds: real coreutils output (sha256sum, --binary, an escaped name), the
// Fedora 40 CHECKSUM lines as published, Qubes' DIGESTS layout.
func checksumSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, name := range []string{"testdata/SHA256SUMS", "testdata/Fedora-Workstation-40-1.14-x86_64-CHECKSUM"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	seeds = append(seeds, []byte("d41d8cd98f00b204e9800998ecf8427e  Qubes-R4.0.2-x86_64.iso\nda39a3ee5e6b4b0d3255bfef95601890afd80709  Qubes-R4.0.2-x86_64.iso\r\n"+
		strings.Repeat("ab", 64)+"  Qubes-R4.0.2-x86_64.iso\n"))
	return seeds
}

func FuzzParseChecksums(f *testing.F) {
	for _, s := range checksumSeeds(f) {
		f.Add("SHA256SUMS", s)
		f.Add("Fedora-40-x86_64-CHECKSUM", s)
	}
	f.Fuzz(func(t *testing.T, name string, b []byte) {
		cf, err := ParseChecksums(name, b)
		if err != nil {
			var ce *ChecksumError
			if !errors.As(err, &ce) {
				t.Fatalf("not a ChecksumError: %v", err)
			}
			return
		}
		if len(cf.Entries) > MaxChecksumEntries {
			t.Fatalf("%d entries", len(cf.Entries))
		}
		// Round trip: every accepted entry written back in BSD form parses
		// to the same name and digest.
		var out bytes.Buffer
		for _, c := range cf.Entries {
			if c.Hash == 0 || strings.ContainsAny(c.Name, "\n\r") || strings.Contains(c.Name, ") = ") {
				continue
			}
			if len(c.Sum) != c.Hash.Size() {
				t.Fatalf("%s digest of %d bytes accepted", c.Algo, len(c.Sum))
			}
			out.WriteString(c.Algo + " (" + c.Name + ") = " + hex.EncodeToString(c.Sum) + "\n")
		}
		again, err := ParseChecksums("x", out.Bytes())
		if err != nil {
			t.Fatalf("re-parse of %q: %v", out.String(), err)
		}
		for _, c := range again.Entries {
			got, _ := cf.Lookup(c.Name)
			found := false
			for _, g := range got {
				if g.Algo == c.Algo && bytes.Equal(g.Sum, c.Sum) {
					found = true
				}
			}
			if !found {
				t.Fatalf("%q %s lost in the round trip", c.Name, c.Algo)
			}
		}
	})
}

// FuzzChecksumSidecar feeds crafted clearsigned files and detached
// signatures (armor, packets) through what Verify reads from a USB stick
// before it touches the image.
func FuzzChecksumSidecar(f *testing.F) {
	key, err := os.ReadFile("testdata/seed-key.asc")
	if err != nil {
		f.Fatal(err)
	}
	dk, err := ParseDistributionKeys(key, "seed")
	if err != nil {
		f.Fatal(err)
	}
	kr := NewKeyring(nil, dk)
	fedora, _ := os.ReadFile("testdata/Fedora-Workstation-40-1.14-x86_64-CHECKSUM")
	sums, _ := os.ReadFile("testdata/SHA256SUMS")
	sign, _ := os.ReadFile("testdata/SHA256SUMS.sign")
	f.Add(fedora, []byte{})
	f.Add(sums, sign)
	f.Fuzz(func(t *testing.T, file, sig []byte) {
		fsys := fstest.MapFS{
			"Fedora-Workstation-40-1.14-x86_64-CHECKSUM": {Data: file},
			"SHA256SUMS":      {Data: file},
			"SHA256SUMS.sign": {Data: sig},
		}
		for _, name := range []string{"Fedora-Workstation-40-1.14-x86_64-CHECKSUM", "SHA256SUMS"} {
			claims, _, _ := readChecksumClaims(fsys, name, "Fedora-Workstation-Live-x86_64-40-1.14.iso", kr)
			for _, c := range claims {
				if c.key == nil || len(c.sum.Sum) != c.sum.Hash.Size() {
					t.Fatalf("claim without key or with a bad digest: %+v", c)
				}
			}
		}
		readDetached("x.sig", sig, kr)
	})
}

// The seeds themselves verify: the real clearsigned and detached files.
func TestSeedSidecarsVerify(t *testing.T) {
	key, _ := os.ReadFile("testdata/seed-key.asc")
	dk, err := ParseDistributionKeys(key, "seed")
	if err != nil {
		t.Fatal(err)
	}
	kr := NewKeyring(nil, dk)
	claims, verdict, findings := readChecksumClaims(os.DirFS("testdata"), "Fedora-Workstation-40-1.14-x86_64-CHECKSUM", "Fedora-Workstation-Live-x86_64-40-1.14.iso", kr)
	if len(claims) != 1 || verdict != sidecarNote || hex.EncodeToString(claims[0].sum.Sum) != "dd1faca950d1a8c3d169adf2df4c3644ebb62f8aac04c401f2393e521395d613" {
		t.Fatalf("fedora: %+v %v %v", claims, verdict, findings)
	}
	claims, _, findings = readChecksumClaims(os.DirFS("testdata"), "SHA256SUMS", "Qubes-R4.0.2-x86_64.iso", kr)
	if len(claims) != 1 || claims[0].file != "SHA256SUMS (SHA256SUMS.sign)" {
		t.Fatalf("SHA256SUMS: %+v %v", claims, findings)
	}
}
