package pcr

import (
	"bytes"
	"testing"

	"github.com/glint-boot/glint/internal/tpm"
	"github.com/glint-boot/glint/internal/tpm/swtpmtest"
)

func TestOwnerFilesOrder(t *testing.T) {
	ms := OwnerFiles(map[string][]byte{"owner.asc": []byte("KEY"), "config": []byte("countdown = 0\n")})
	want := []Measurement{
		{Config, "owner file name config", []byte("config")},
		{Config, "owner file config", []byte("countdown = 0\n")},
		{Config, "owner file name owner.asc", []byte("owner.asc")},
		{Config, "owner file owner.asc", []byte("KEY")},
	}
	if len(ms) != len(want) {
		t.Fatalf("%d measurements, want %d", len(ms), len(want))
	}
	for i := range want {
		if ms[i].PCR != want[i].PCR || ms[i].Description != want[i].Description || !bytes.Equal(ms[i].Data, want[i].Data) {
			t.Errorf("measurement %d: %+v, want %+v", i, ms[i], want[i])
		}
	}
	if len(OwnerFiles(nil)) != 0 {
		t.Error("no owner files, yet measurements")
	}
}

// The prediction equals what a real TPM holds after the same extensions, in
// both banks of a TPM 2.0.
func TestOwnerFilesReplayMatchesTPM(t *testing.T) {
	dev, err := tpm.Open(swtpmtest.Start(t, tpm.Version20))
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	ms := OwnerFiles(map[string][]byte{"owner.asc": []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----"), "config": nil})
	for _, m := range ms {
		if err := dev.Extend(m.PCR, m.Data); err != nil {
			t.Fatal(err)
		}
	}
	for _, bank := range []tpm.Alg{tpm.SHA1, tpm.SHA256} {
		got, err := dev.ReadPCRs(bank, []int{Config})
		if err != nil {
			t.Fatal(err)
		}
		if want := ReplayOnto(bank, Config, nil, ms); !bytes.Equal(got[Config], want) {
			t.Errorf("%s PCR 7: TPM %x, predicted %x", bank, got[Config], want)
		}
	}
}
