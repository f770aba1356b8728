package isoverify

import (
	"crypto"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestParseRealChecksumFormats(t *testing.T) {
	sums, err := os.ReadFile("testdata/SHA256SUMS")
	if err != nil {
		t.Fatal(err)
	}
	cf, err := ParseChecksums("SHA256SUMS", sums)
	if err != nil {
		t.Fatal(err)
	}
	// coreutils escapes a backslash in a name and marks the line with '\'.
	for _, name := range []string{"Qubes-R4.0.2-x86_64.iso", `we ird\name.iso`, `other\name.iso`} {
		if got, listed := cf.Lookup(name); !listed || len(got) != 1 || got[0].Hash != crypto.SHA256 {
			t.Errorf("%q: %+v", name, got)
		}
	}
	// Fedora: comments, BSD tags.
	fc, err := ParseChecksums("Fedora-Workstation-40-1.14-x86_64-CHECKSUM", []byte(
		"# Fedora-Workstation-Live-x86_64-40-1.14.iso: 2295853056 bytes\r\nSHA256 (Fedora-Workstation-Live-x86_64-40-1.14.iso) = dd1faca950d1a8c3d169adf2df4c3644ebb62f8aac04c401f2393e521395d613\r\n"))
	if err != nil || len(fc.Entries) != 1 || fc.Entries[0].Line != 2 {
		t.Fatalf("fedora: %+v %v", fc, err)
	}
	// Qubes DIGESTS: the algorithm from the digest length; MD5/SHA-1 are
	// listed but not accepted.
	q := strings.Repeat("a", 32) + "  q.iso\n" + strings.Repeat("b", 40) + "  q.iso\n" + strings.Repeat("c", 64) + "  q.iso\n" + strings.Repeat("d", 128) + "  q.iso\n"
	qc, err := ParseChecksums("q.iso.DIGESTS", []byte(q))
	if err != nil {
		t.Fatal(err)
	}
	acc, listed := qc.Lookup("q.iso")
	if !listed || len(acc) != 2 || acc[0].Hash != crypto.SHA256 || acc[1].Hash != crypto.SHA512 {
		t.Fatalf("digests: %+v", acc)
	}
	weakOnly, _ := ParseChecksums("MD5SUMS", []byte(strings.Repeat("a", 32)+"  w.iso\n"))
	if acc, listed := weakOnly.Lookup("w.iso"); !listed || len(acc) != 0 {
		t.Fatal("MD5 accepted as evidence")
	}
}

func TestChecksumErrorsNameTheLine(t *testing.T) {
	h := strings.Repeat("a", 64)
	for name, in := range map[string]string{
		"garbage":              "# ok\n" + h + "  ok.iso\nnot a checksum line\n",
		"SHA256 length":        "\n\nSHA256 (x.iso) = abcd\n",
		"conflicting digests":  h + "  x.iso\n\n" + strings.Repeat("b", 64) + "  x.iso\n",
		"unknown algorithm":    "\n\nWHIRLPOOL (x.iso) = " + h + "\n",
		"length vs file name":  "\n\n" + strings.Repeat("a", 128) + "  x.iso\n",
		"bad escape":           "\n\n\\" + h + "  a\\qb.iso\n",
		"odd GNU digest":       "\n\n" + strings.Repeat("a", 63) + "  x.iso\n",
		"separator single sp.": "\n\n" + h + " x.iso\n",
	} {
		_, err := ParseChecksums("SHA256SUMS", []byte(in))
		var ce *ChecksumError
		if !errors.As(err, &ce) || ce.Line != 3 {
			t.Errorf("%s: got %v, want an error on line 3", name, err)
		}
	}
	if _, err := ParseChecksums("SHA256SUMS", make([]byte, MaxChecksumFileSize+1)); !errors.Is(err, ErrChecksumTooLarge) {
		t.Errorf("oversized file: %v", err)
	}
	if _, err := ParseChecksums("SHA256SUMS", []byte(strings.Repeat("x", MaxChecksumLine+1))); !errors.Is(err, ErrChecksumTooLarge) {
		t.Errorf("overlong line: %v", err)
	}
}
