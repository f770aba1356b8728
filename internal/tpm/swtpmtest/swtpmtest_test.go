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

// Manufacture makes a factory-fresh TPM over an old one: the old NV
// counter is gone, and a TPM 1.2 is owned with the well-known secrets.
func TestManufactureReplacesState(t *testing.T) {
	for _, v := range []tpm.Version{tpm.Version20, tpm.Version12} {
		t.Run(v.String(), func(t *testing.T) {
			dir := t.TempDir()
			if err := swtpmtest.Manufacture(v, dir); err != nil {
				t.Fatal(err)
			}
			dev, err := tpm.Open(swtpmtest.StartDir(t, v, dir))
			if err != nil {
				t.Fatal(err)
			}
			const index = 0x0180474c
			if err := dev.NVDefine(tpm.NVSpace{Index: index, Size: 8, Counter: true}); err != nil {
				t.Fatal(err)
			}
			if _, err := dev.CounterIncrement(index); err != nil {
				t.Fatal(err)
			}
			info, err := dev.Info()
			dev.Close()
			if err != nil || (v == tpm.Version12 && !info.Owned) {
				t.Fatalf("info %+v, %v", info, err)
			}
			swtpmtest.Stop(dir)
			if err := swtpmtest.Manufacture(v, dir); err != nil {
				t.Fatal(err)
			}
			dev, err = tpm.Open(swtpmtest.StartDir(t, v, dir))
			if err != nil {
				t.Fatal(err)
			}
			defer dev.Close()
			if v, err := dev.CounterRead(index); err == nil {
				t.Fatalf("counter survived re-manufacturing (value %d)", v)
			}
		})
	}
}
