// Package diskkey is the TPM-sealed LUKS disk unlock key: a random key in its
// own keyslot, sealed to the measured boot (PCRs 0-7, with the boot-mode PCR
// and the LUKS-header PCR at their predicted values), optionally also to a
// PIN, and handed to the OS initrd in an appended cpio at kexec time.
//
// Threat: an attacker who changes the firmware, glint's configuration, the
// kernel modules glint loads, or swaps/modifies the LUKS header gets nothing
// from the TPM; the OS then asks for the disk passphrase as it always did.
//
// Flow (Heads' kexec-seal-key / kexec-insert-key, in Go):
//
//	Seal:   measure header -> add 128 random bytes to a keyslot (31 on LUKS2)
//	        -> measure header again -> seal to PCRs with PCR 6 predicted as
//	        "extended with this header" and PCR 4 at its normal-boot value
//	Unseal: measure header, compare with the sealed-time measurement (names
//	        what changed) -> extend PCR 6 -> unseal (PIN if attended)
//	        -> build the key cpio for the OS initrd
package diskkey

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/luks"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/seal"
	"github.com/glint-boot/glint/internal/tpm"
)

// Purpose names the sealed record.
const Purpose = "disk"

// KeySize is the disk unlock key length (Heads uses 128 random bytes).
const KeySize = 128

// randomKeySlot adds the disk key with a cheap PBKDF: a key of 128 random
// bytes cannot be guessed, so argon2id's memory-hard stretching (about 2 s
// and up to 1 GiB at every unlock) would buy nothing.
var randomKeySlot = &luks.Cryptsetup{PBKDF: []string{"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"}}

// SealRequest says what to seal.
type SealRequest struct {
	Device     string // the LUKS block device (or image file)
	Passphrase []byte // an existing passphrase, to add the new key
	PIN        []byte // optional TPM auth value (attended unlock)
	Name       string // mapper name the OS expects ("" = luks-<uuid>)
	Profile    pcr.Profile
	Bank       tpm.Alg
	// Current PCR values to seal to, for PCRs other than 6; values for the
	// boot-mode PCR should already be the predicted normal-boot value.
	Values    map[int][]byte
	Predicted []int
	// PCR6Start is PCR 6 before the header is extended (zero at power-on).
	PCR6Start []byte
	Events    []eventlog.EventRecord
	Now       time.Time
	Slot      int // -1: the header's default slot (31 on LUKS2, 7 on LUKS1)
}

// Seal adds a new random key to the LUKS volume and seals it. The record
// (to store with seal.Save) keeps the header measurement for explanations.
func Seal(t tpm.TPM, req SealRequest) (*seal.Record, error) {
	hdr, err := luks.ReadHeader(req.Device)
	if err != nil {
		return nil, err
	}
	slot := req.Slot
	if slot < 0 {
		slot = hdr.DefaultSlot()
	}
	key, err := newKey(t)
	if err != nil {
		return nil, err
	}
	defer luks.Wipe(key)
	if err := randomKeySlot.AddKey(req.Device, req.Passphrase, key, slot); err != nil {
		return nil, fmt.Errorf("add the disk unlock key to keyslot %d of %s: %w", slot, req.Device, err)
	}
	m, err := luks.Measure(req.Device)
	if err != nil {
		return nil, err
	}
	values := map[int][]byte{}
	for k, v := range req.Values {
		values[k] = v
	}
	start := req.PCR6Start
	if start == nil {
		start = pcr.Zero(req.Bank)
	}
	values[pcr.LUKS] = pcr.Extend(req.Bank, start, pcr.Measure(req.Bank, m.Digest[:]))
	predicted := append(append([]int(nil), req.Predicted...), pcr.LUKS)
	mj, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	rec, err := seal.Seal(t, key, seal.Request{
		Purpose: Purpose, Profile: req.Profile, Bank: req.Bank, Values: values,
		Predicted: predicted, PIN: req.PIN, Events: req.Events, Now: req.Now,
		Extra: map[string]string{
			"uuid": m.Summary.UUID, "device": req.Device, "slot": strconv.Itoa(slot),
			"name": req.Name, "measurement": string(mj),
		},
	})
	if err != nil {
		// Do not leave an unsealed key in a slot nobody can use.
		if kerr := randomKeySlot.KillSlot(req.Device, req.Passphrase, slot); kerr != nil {
			err = fmt.Errorf("%w (and removing the new keyslot %d failed: %v)", err, slot, kerr)
		}
		return nil, err
	}
	return rec, nil
}

func newKey(t tpm.TPM) ([]byte, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	for off := 0; off < KeySize; off += 32 {
		r, err := t.Random(32)
		if err != nil {
			return nil, fmt.Errorf("TPM random: %w", err)
		}
		for i := 0; i < 32 && off+i < KeySize; i++ {
			key[off+i] ^= r[i]
		}
	}
	return key, nil
}

// SealedMeasurement returns the header measurement stored in a record.
func SealedMeasurement(rec *seal.Record) (luks.Measurement, error) {
	var m luks.Measurement
	raw := rec.Extra["measurement"]
	if raw == "" {
		return m, errors.New("the sealed disk key record has no LUKS header measurement")
	}
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return m, fmt.Errorf("sealed disk key record: %w", err)
	}
	return m, nil
}

// MeasureHeader measures the LUKS header of device, extends it into PCR 6
// through measure (exactly once per boot: the sealed value expects one
// extension), and compares it with the header the key was sealed with,
// returning a *luks.ChangedError that names what changed. Only after it
// succeeds should the caller ask the TPM (seal.Unseal) for the key.
func MeasureHeader(rec *seal.Record, device string, measure func(index int, description string, data []byte) error) error {
	sealed, err := SealedMeasurement(rec)
	if err != nil {
		return err
	}
	cur, err := luks.Measure(device)
	if err != nil {
		return err
	}
	if err := measure(pcr.LUKS, cur.Description(), cur.Digest[:]); err != nil {
		return err
	}
	return luks.Compare(sealed, cur)
}
