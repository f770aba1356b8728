package swtpmtest_test

import (
	"bytes"
	"testing"

	"github.com/glint-boot/glint/internal/tpm"
	"github.com/glint-boot/glint/internal/tpm/swtpmtest"
)

func pcr16(t *testing.T, spec string) []byte {
	t.Helper()
	dev, err := tpm.Open(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	bank := tpm.SHA256
	if dev.Version() == tpm.Version12 {
		bank = tpm.SHA1
	}
	v, err := dev.ReadPCRs(bank, []int{16})
	if err != nil {
		t.Fatal(err)
	}
	return v[16]
}

func TestInstancesAreIndependentAndRestartResetsPCRs(t *testing.T) {
	for _, v := range []tpm.Version{tpm.Version20, tpm.Version12} {
		dir := t.TempDir()
		a := swtpmtest.StartDir(t, v, dir)
		b := swtpmtest.Start(t, v)
		dev, err := tpm.Open(a)
		if err != nil {
			t.Fatal(err)
		}
		if err := dev.Extend(16, []byte("only in a")); err != nil {
			t.Fatal(err)
		}
		dev.Close()
		zero := pcr16(t, b)
		if bytes.Equal(pcr16(t, a), zero) {
			t.Fatalf("%v: extend in one swtpm not visible", v)
		}
		a = swtpmtest.StartDir(t, v, dir) // power cycle
		if !bytes.Equal(pcr16(t, a), zero) {
			t.Fatalf("%v: PCR 16 survived a restart", v)
		}
		swtpmtest.Stop(dir)
		if _, err := tpm.Open(a); err == nil {
			t.Fatalf("%v: swtpm still answers after Stop", v)
		}
	}
}
