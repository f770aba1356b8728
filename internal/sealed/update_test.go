package sealed

import (
	"bytes"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/rom"
	"github.com/glint-boot/glint/internal/rom/romtest"
	"github.com/glint-boot/glint/internal/tpm"
)

// measureImage measures an image's owner files into PCR 7 as glint does
// at boot (the rest of a coreboot boot cannot be replayed into swtpm).
func measureImage(t *testing.T, s *State, image []byte) {
	t.Helper()
	img, err := rom.FromBytes(image)
	must(t, err)
	files, err := rom.OwnerFiles(img)
	must(t, err)
	for _, m := range pcr.OwnerFiles(files) {
		must(t, s.Measure(m))
	}
}

// A firmware update without approvals, from the images (TPM 1.2 and 2.0
// without an approval key; cbfstool images and swtpm): before writing, the
// TOTP secret is sealed again to the values the new image is predicted to
// produce; the new image's first boot shows the same code, the old image
// no longer does. The new image here carries another owner file (PCR 7,
// which a workstation's swtpm can be brought to as glint measures it);
// for a new payload, the record takes the predicted PCR 2.
func TestResealForImage(t *testing.T) {
	for _, v := range []tpm.Version{tpm.Version12, tpm.Version20} {
		t.Run(v.String(), func(t *testing.T) {
			family := int(v)
			owner := map[string][]byte{"owner.asc": []byte("owner key\n")}
			cur := romtest.Make(t, romtest.Spec{TPM: family, PayloadSeed: 1, Owner: owner})
			next := romtest.Make(t, romtest.Spec{TPM: family, PayloadSeed: 1, Owner: map[string][]byte{
				"owner.asc": []byte("owner key\n"), "publisher.asc": []byte("the publisher's new key\n")}})
			bootDir, tpmDir := t.TempDir(), t.TempDir()
			s, _ := workstation(t, v, tpmDir, bootDir)
			measureImage(t, s, cur)
			sec, err := s.SealNewTOTP()
			must(t, err)

			// The update from glint's menu: unseal, seal for the new image, write.
			s, _ = workstation(t, v, tpmDir, bootDir)
			measureImage(t, s, cur)
			rec, err := LoadTOTP(bootDir)
			must(t, err)
			got, err := s.UnsealTOTP(rec)
			must(t, err)
			nrec, err := s.ResealForImage(rec, got, nil, cur, next)
			must(t, err)
			img, _ := rom.FromBytes(next)
			pn, err := rom.Predict(img, rom.PredictOptions{})
			must(t, err)
			p7, _ := pn.PCR(7)
			if !bytes.Equal(nrec.PCRs[7], p7.Values[rec.Bank]) || bytes.Equal(nrec.PCRs[7], rec.PCRs[7]) || !bytes.Equal(nrec.PCRs[2], rec.PCRs[2]) {
				t.Fatalf("sealed to PCR 7 %x (predicted %x, before %x), PCR 2 %x (before %x)", nrec.PCRs[7], p7.Values[rec.Bank], rec.PCRs[7], nrec.PCRs[2], rec.PCRs[2])
			}

			// The old image (the write failed): refused; TPM 1.2 cannot keep
			// both states open.
			s, _ = workstation(t, v, tpmDir, bootDir)
			measureImage(t, s, cur)
			if _, err := s.unsealTOTP(t); err == nil {
				t.Fatal("the old image still unseals the secret sealed for the new one")
			}
			// The new image: the same secret, no re-enrolment.
			s, _ = workstation(t, v, tpmDir, bootDir)
			measureImage(t, s, next)
			if got, err := s.unsealTOTP(t); err != nil || !bytes.Equal(got, sec) {
				t.Fatalf("the new image: %v", err)
			}

			// Another payload: the record takes the predicted PCR 2.
			rec, err = LoadTOTP(bootDir)
			must(t, err)
			payload := romtest.Make(t, romtest.Spec{TPM: family, PayloadSeed: 2, Owner: map[string][]byte{
				"owner.asc": []byte("owner key\n"), "publisher.asc": []byte("the publisher's new key\n")}})
			prec, err := s.ResealForImage(rec, sec, nil, next, payload)
			must(t, err)
			img, _ = rom.FromBytes(payload)
			pp, err := rom.Predict(img, rom.PredictOptions{})
			must(t, err)
			p2, _ := pp.PCR(2)
			if !bytes.Equal(prec.PCRs[2], p2.Values[rec.Bank]) || !bytes.Equal(prec.PCRs[7], rec.PCRs[7]) {
				t.Fatalf("a new payload: sealed to PCR 2 %x (predicted %x), PCR 7 %x (before %x)", prec.PCRs[2], p2.Values[rec.Bank], prec.PCRs[7], rec.PCRs[7])
			}

			// An image for the other TPM family is refused, nothing sealed.
			other := 12
			if family == 12 {
				other = 20
			}
			wrong := romtest.Make(t, romtest.Spec{TPM: other, PayloadSeed: 1, Owner: owner})
			if _, err := s.ResealForImage(prec, sec, nil, payload, wrong); err == nil || !strings.Contains(err.Error(), "built for a TPM") {
				t.Fatalf("an image for the other TPM family: %v", err)
			}
		})
	}
}
