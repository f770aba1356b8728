package sealed

import (
	"bytes"
	"fmt"

	"github.com/glint-boot/glint/internal/approval"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/tpm"
)

// ApproveImage is the TPM 2.0 half of a firmware update without lock-out,
// shared by `glint flash` and the boot menu's update item: it signs, with
// the owner's approval key s, the PCR values image (the exact image about
// to be written, owner files carried) will produce for the TOTP secret,
// and for the disk key when one is sealed with an approval key (its PCR 6,
// the LUKS header, taken from its record), and keeps the approvals in dir
// where the boot flow finds them (BOOT/glint/approvals).
//
// A secret bound to the approval epoch counter is approved at the epoch
// after the counter's (NextEpoch), which needs this machine's TPM:
// openTPM is called only then, and its release func after use. logf gets
// one line per approval.
func ApproveImage(bootDir, dir string, image []byte, s approval.Signer, openTPM func() (tpm.TPM, func(), error), logf func(string, ...any)) error {
	type job struct {
		purpose  string
		bank     tpm.Alg
		override map[int][]byte
		bound    *tpm.Epoch // the record's approval epoch (nil: none)
	}
	// The bank the secrets were sealed in (SHA-256 unless the TPM has
	// only SHA-1 active).
	jobs := []job{{purpose: approval.PurposeTOTP, bank: tpm.SHA256}}
	if rec, err := LoadTOTP(bootDir); err == nil {
		jobs[0].bank = rec.Bank
		jobs[0].bound, _ = tpm.AuthorizedBlobEpoch(rec.Blob)
	}
	if rec, err := LoadDisk(bootDir); err == nil && tpm.IsAuthorizedBlob(rec.Blob) {
		bound, _ := tpm.AuthorizedBlobEpoch(rec.Blob)
		jobs = append(jobs, job{approval.PurposeDisk, rec.Bank, map[int][]byte{pcr.LUKS: rec.PCRs[pcr.LUKS]}, bound})
	}
	var next *tpm.Epoch // the epoch the update is approved at, read once
	for _, j := range jobs {
		pol, pred, err := approval.Predicted(image, j.purpose, j.bank, j.override)
		if err != nil {
			return fmt.Errorf("approve the new image's PCR values: %w", err)
		}
		if j.bound != nil {
			if next == nil {
				t, release, err := openTPM()
				if err != nil {
					return fmt.Errorf("the sealed secrets are bound to the TPM's approval epoch counter 0x%08x, so approving needs this machine's TPM (run glint on the machine, or --tpm): %w", j.bound.Index, err)
				}
				next, err = NextEpoch(t, j.bound, dir)
				release()
				if err != nil {
					return err
				}
			}
			pol.Epoch = next
		}
		if j.purpose == approval.PurposeTOTP {
			for _, n := range pred.Notes {
				logf("   note: %s", n)
			}
		}
		a, err := approval.Approve(pol, j.purpose, s)
		if err != nil {
			return err
		}
		path, err := approval.Save(dir, a)
		if err != nil {
			return err
		}
		logf("   approved with %s: %s\n   kept in %s", s, approval.Describe(a), path)
	}
	return nil
}

// NextEpoch is the approval epoch an update of this machine is approved
// at: one past the TPM's approval epoch counter (docs/firmware-updates.md,
// "Approval epochs"), and past every approval already kept in dir, so that
// when the owner approves one update and then another before booting
// either, the first boot of the later one retires the earlier one too. The
// secrets are bound to the counter, so the approval must be made where the
// TPM is.
func NextEpoch(t tpm.TPM, bound *tpm.Epoch, dir string) (*tpm.Epoch, error) {
	now, err := approval.ReadEpoch(t)
	if err != nil {
		return nil, fmt.Errorf("read the approval epoch counter: %w", err)
	}
	if now.Index != bound.Index || !bytes.Equal(now.Name, bound.Name) {
		return nil, fmt.Errorf("the approval epoch counter 0x%08x of this TPM is not the one the secrets were sealed to (another machine's TPM, or the counter was deleted and defined again): approving for it would not open them", now.Index)
	}
	next := approval.Next(now)
	for _, purpose := range []string{approval.PurposeTOTP, approval.PurposeDisk} {
		list, _ := approval.Load(dir, purpose)
		for _, a := range list {
			if ep := a.Policy.Epoch; ep != nil && ep.Index == now.Index && bytes.Equal(ep.Name, now.Name) && ep.Value >= next.Value {
				next.Value = ep.Value + 1
			}
		}
	}
	if next.Value > now.Value+approval.MaxCommitSteps {
		return nil, fmt.Errorf("%d approved updates are waiting for their first boot (approval epochs %d..%d, the counter reads %d): boot one of them, or remove the approvals of updates you will not install from %s, before approving another", next.Value-now.Value-1, now.Value+1, next.Value-1, now.Value, dir)
	}
	return next, nil
}
