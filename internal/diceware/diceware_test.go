package diceware

import (
	"bytes"
	"testing"
)

func TestListIsEFFLarge(t *testing.T) {
	l := list()
	if len(l) != ListSize {
		t.Fatalf("%d words", len(l))
	}
	seen := map[string]bool{}
	for _, w := range l {
		if seen[string(w)] {
			t.Fatalf("duplicate %q", w)
		}
		seen[string(w)] = true
	}
	// the first and last entries of the EFF list (dice 11111 and 66666)
	if string(l[0]) != "abacus" || string(l[len(l)-1]) != "zoom" {
		t.Fatalf("first %q last %q", l[0], l[len(l)-1])
	}
}

func TestWords(t *testing.T) {
	a, err := Words(nil, 3)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(a, []byte("-")); n < 2 {
		t.Fatalf("%q: want three words", a)
	}
	b, _ := Words(nil, 3)
	if bytes.Equal(a, b) {
		t.Fatalf("two draws gave %q", a)
	}
	if _, err := Words(nil, 0); err == nil {
		t.Fatal("zero words accepted")
	}
	d, err := Digits(nil, 8)
	if err != nil || len(d) != 8 || len(bytes.Trim(d, "0123456789")) != 0 {
		t.Fatalf("%q %v", d, err)
	}
}
