// Package sealed holds glint's secrets that only a machine in the measured,
// owner-approved state may use:
//
//   - the TOTP secret: sealed to PCRs 0-4 and 7, turned into a six-digit
//     code at every boot that the owner compares with their phone
//     (totp.go); the same secret, programmed into the owner's USB dongle,
//     gives the HOTP check that lights the dongle green or red (hotp.go);
//   - the disk key: 128 random bytes in their own LUKS keyslot, sealed to
//     PCRs 0-7 with PCR 6 predicted as "extended with this LUKS header",
//     handed to the OS initrd in a cpio (disk.go).
//
// Threat: an attacker who changes the firmware, the owner's configuration,
// the kernel modules glint loads or the LUKS header, or who gets a recovery
// shell or a forced boot, gets no code the owner would accept and no disk
// key: the TPM refuses (package seal explains why in words).
//
// All three are built around one State: the TPM, the PCR bank glint uses on
// it, the platform's PCR plan, the PCR values as glint found them at its
// start, the firmware's events and glint's own measurements so far. The
// boot flow (package boot) keeps one State per power-on; the CLI verbs
// (glint otp seal/show, glint disk seal/unseal) build one for the running
// system:
//
//	s := sealed.New(t, pcr.Coreboot, "/boot")
//	if err := s.RecordStart(); err != nil { ... }
//	s.FirmwareEvents = sealed.ReadFirmwareEvents // the machine's log
//	secret, err := s.SealNewTOTP()
//	...
//	rec, err := sealed.LoadTOTP(s.BootDir) // at a later boot
//	secret, err = s.UnsealTOTP(rec)        // *seal.MismatchError names what changed
//
// The package decides nothing about the console: callers print.
package sealed

import (
	"crypto"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/tpm"
)

// State is the measured state secrets are sealed to and explained against.
type State struct {
	TPM     tpm.TPM
	Bank    tpm.Alg // tpm.ChooseBank's choice for TPM
	Profile pcr.Profile
	// BootDir is the OS's /boot, where sealed records and the HOTP counter
	// live.
	BootDir string
	// Start holds PCR values from before glint extended anything into
	// them: PCR 4 as glint found it (its value in every normal boot), and,
	// after PredictFromFirmwareLog, PCRs 4 and 6 replayed from the
	// firmware's log. Secrets are sealed to these values for those PCRs.
	Start map[int][]byte
	// FirmwareEvents returns the firmware's measurements in a bank (nil:
	// no log). It is asked once; ReadFirmwareEvents reads this machine's.
	FirmwareEvents func(bank tpm.Alg) []eventlog.EventRecord
	// Own are glint's own measurements so far (Measure appends).
	Own []eventlog.EventRecord
	// Writable runs fn while /boot is writable (nil: /boot is writable as
	// it is, as on a running OS). The boot flow remounts around it.
	Writable func(fn func() error) error
	// Logf records a line in the caller's journal (nil: none).
	Logf func(format string, a ...any)
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// ApprovalKey is the owner's approval key (approval.KeyFromOwnerFiles),
	// nil without one. On TPM 2.0 secrets sealed with it also unseal in
	// states the owner approved (a firmware update): no re-seal, no new
	// enrolment (docs/firmware-updates.md).
	ApprovalKey crypto.PublicKey

	firmware     []eventlog.EventRecord
	firmwareRead bool
}

// New returns the state for t, measuring and sealing in the bank
// tpm.ChooseBank picks.
func New(t tpm.TPM, profile pcr.Profile, bootDir string) *State {
	return &State{TPM: t, Bank: tpm.ChooseBank(t), Profile: profile, BootDir: bootDir, Start: map[int][]byte{}}
}

// RecordStart reads PCR 4 as it is now into Start. At boot this is before
// any boot-mode event, so it is the value every normal boot has. On a
// running OS it already holds glint's hand-over event: there
// PredictFromFirmwareLog corrects it.
func (s *State) RecordStart() error {
	vals, err := s.TPM.ReadPCRs(s.Bank, []int{pcr.BootMode})
	if err != nil {
		return fmt.Errorf("read PCRs: %w", err)
	}
	if s.Start == nil {
		s.Start = map[int][]byte{}
	}
	s.Start[pcr.BootMode] = vals[pcr.BootMode]
	return nil
}

// Firmware returns the firmware's measurements in the state's bank, read
// once (the log does not change after the firmware handed over, and
// reading coreboot's means mapping cbmem and parsing it again).
func (s *State) Firmware() []eventlog.EventRecord {
	if !s.firmwareRead && s.FirmwareEvents != nil {
		s.firmware, s.firmwareRead = s.FirmwareEvents(s.Bank), true
	}
	return s.firmware
}

// Events is what a sealed record keeps beside its blob and what an unseal
// is explained against: the firmware's measurements, then glint's own.
func (s *State) Events() []eventlog.EventRecord {
	return append(append([]eventlog.EventRecord(nil), s.Firmware()...), s.Own...)
}

// Measure extends m into its PCR and records it among glint's own
// measurements (EV_IPL, as a boot loader's: PFP 1.05, 10.4.1).
func (s *State) Measure(m pcr.Measurement) error {
	if s.TPM == nil {
		return errors.New("no TPM")
	}
	if err := s.TPM.Extend(m.PCR, m.Data); err != nil {
		return fmt.Errorf("measure %s into PCR %d: %w", m.Description, m.PCR, err)
	}
	s.Own = append(s.Own, eventlog.EventRecord{PCR: m.PCR, Type: eventlog.EvIPL, Description: m.Description, Alg: s.Bank, Digest: m.Digest(s.Bank)})
	if s.Logf != nil {
		s.Logf("measured %s into PCR %d", m.Description, m.PCR)
	}
	return nil
}

// PredictFromFirmwareLog replaces the start values of the PCRs glint
// extends later in a boot (boot mode, LUKS) by a replay of the firmware's
// own events for them. On a running OS those PCRs already hold glint's
// hand-over event, so their value now is not what the next normal boot will
// have; the firmware log (securityfs or coreboot's cbmem) says what it
// will. It reports whether there was a log; without one the values stay.
func (s *State) PredictFromFirmwareLog() bool {
	evs := s.Firmware()
	if len(evs) == 0 {
		return false
	}
	if s.Start == nil {
		s.Start = map[int][]byte{}
	}
	for _, idx := range []int{pcr.BootMode, pcr.LUKS} {
		v := pcr.Zero(s.Bank)
		for _, e := range evs {
			if e.PCR == idx {
				v = pcr.Extend(s.Bank, v, e.Digest)
			}
		}
		s.Start[idx] = v
	}
	return true
}

// ErrUnpredictable: sealing from a running OS needs the values PCRs 4 and 6
// will have at the next boot, and neither a firmware log nor the profile
// tells them here.
var ErrUnpredictable = errors.New("cannot predict the boot-mode PCR for the next boot")

// PredictForNextBoot makes Start hold the values PCRs 4 and 6 will have at
// the next boot before glint extends them, so a secret sealed from a
// running OS does not unseal to "anyone in the OS" (PCR 4 there already
// holds glint's hand-over event; sealing to it would release the secret to
// the OS every boot). From the firmware's log when there is one; on the
// coreboot profile, whose firmware extends neither PCR, from the profile
// (both start at zero); otherwise ErrUnpredictable, and the caller refuses
// to seal.
func (s *State) PredictForNextBoot() error {
	if s.PredictFromFirmwareLog() {
		return nil
	}
	if s.Profile.Name != pcr.Coreboot.Name {
		return fmt.Errorf("%w: no firmware event log is readable and the %s profile's firmware measures into PCR 4, so the value it will have cannot be told; seal from glint's menu at boot (r) instead", ErrUnpredictable, s.Profile.Name)
	}
	if s.Start == nil {
		s.Start = map[int][]byte{}
	}
	s.Start[pcr.BootMode] = pcr.Zero(s.Bank)
	s.Start[pcr.LUKS] = pcr.Zero(s.Bank)
	return nil
}

// sealValues returns the PCR values to seal to for set: the PCRs as they
// are now, except the boot-mode PCR, which is sealed at its start value (a
// normal boot has extended nothing into it yet), so the secret never
// unseals after a recovery shell or forced boot in any boot. The second
// result lists the predicted PCRs.
func (s *State) sealValues(set []int) (map[int][]byte, []int, error) {
	vals, err := s.TPM.ReadPCRs(s.Bank, set)
	if err != nil {
		return nil, nil, fmt.Errorf("read PCRs: %w", err)
	}
	var predicted []int
	if start, ok := s.Start[pcr.BootMode]; ok {
		if _, want := vals[pcr.BootMode]; want {
			vals[pcr.BootMode] = start
			predicted = append(predicted, pcr.BootMode)
		}
	}
	return vals, predicted, nil
}

func (s *State) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// writable runs fn through s.Writable.
func (s *State) writable(fn func() error) error {
	if s.Writable == nil {
		return fn()
	}
	return s.Writable(fn)
}

// ReadFirmwareEvents reads this machine's firmware measurement log (the TCG
// log in securityfs, else coreboot's in cbmem) as records in bank; nil if
// there is none. Events without a description are named by their type, as
// sealed records have kept them since milestone 1.
func ReadFirmwareEvents(bank tpm.Alg) []eventlog.EventRecord {
	l, err := eventlog.ReadFirmwareLog()
	if err != nil {
		return nil
	}
	recs := l.Records(bank)
	for i := range recs {
		if recs[i].Description == "" {
			recs[i].Description = recs[i].Type.String()
		}
	}
	return recs
}

// DescribeTPMError adds the owner's next step to the TPM states that have
// one (lockout, a cleared TPM).
func DescribeTPMError(err error) string {
	switch {
	case errors.Is(err, tpm.ErrLockout):
		return err.Error() + "\n  The TPM is in dictionary-attack lockout after wrong PINs; wait for it to recover, or reset it with the lockout authorisation."
	case errors.Is(err, tpm.ErrCleared):
		return err.Error() + "\n  The TPM was cleared or replaced since the secret was sealed: every sealed secret is gone. If you did not clear it, treat this machine as tampered. Otherwise set up again (menu: r, s)."
	}
	return err.Error()
}

// InitrdMeasured reports whether a UEFI firmware log shows the kernel's
// EFI stub measuring the initrd into PCR 9 (the "Linux initrd" tagged
// event), i.e. whether PCR 9 covers glint's initramfs.
func InitrdMeasured(events []eventlog.EventRecord) bool {
	for _, e := range events {
		if e.PCR == 9 && strings.Contains(e.Description, "Linux initrd") {
			return true
		}
	}
	return false
}
