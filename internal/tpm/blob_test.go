package tpm

import (
	"errors"
	"testing"
)

func TestParseSealedBlobRejects(t *testing.T) {
	good := realBlob20()
	cases := map[string][]byte{
		"empty":          {},
		"bad magic":      append([]byte("XLSB"), good[4:]...),
		"truncated":      good[:len(good)-1],
		"trailing":       append(append([]byte(nil), good...), 0),
		"future version": append(append([]byte("GLSB"), 9), good[5:]...),
		"huge part":      append(append([]byte(nil), good[:10+6+1]...), 0xff, 0xff),
		"pcr order":      {'G', 'L', 'S', 'B', 1, 20, 0, 0x0b, 0, 2, 7, 3, 2, 0, 0, 0, 0},
		"pcr range":      {'G', 'L', 'S', 'B', 1, 20, 0, 0x0b, 0, 1, 24, 2, 0, 0, 0, 0},
		"family":         {'G', 'L', 'S', 'B', 1, 13, 0, 0x0b, 0, 0, 2, 0, 0, 0, 0},
	}
	for name, in := range cases {
		_, err := parseSealedBlob(in)
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("%s: err = %v, want *ParseError", name, err)
		}
	}
	b, err := parseSealedBlob(good)
	if err != nil || b.Family != Version20 || len(b.Parts) != 2 || len(b.PCRs) != 6 {
		t.Fatalf("good blob: %+v, %v", b, err)
	}
}
