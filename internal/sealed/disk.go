package sealed

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/glint-boot/glint/internal/blockdev"
	"github.com/glint-boot/glint/internal/luks"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/seal"
	"github.com/glint-boot/glint/internal/secret"
	"github.com/glint-boot/glint/internal/tpm"
)

// The disk key is Heads' kexec-seal-key / kexec-insert-key, in Go:
//
//	Seal:   measure header -> add 128 random bytes to a keyslot (31 on LUKS2)
//	        -> measure header again -> seal to PCRs 0-7 with PCR 6 predicted
//	        as "extended with this header" and PCR 4 at its normal-boot value
//	Unseal: measure header into PCR 6, compare with the sealed-time
//	        measurement (names what changed) -> unseal (PIN if attended)
//	        -> build the key cpio for the OS initrd (DiskKeyCpio)

// PurposeDisk names the sealed disk key record (/boot/glint/sealed/disk.json).
const PurposeDisk = "disk"

// DiskKeySize is the disk key length (Heads uses 128 random bytes).
const DiskKeySize = 128

// randomKeySlot adds the disk key with a cheap PBKDF: a key of 128 random
// bytes cannot be guessed, so argon2id's memory-hard stretching (about 2 s
// and up to 1 GiB at every unlock) would buy nothing.
var randomKeySlot = &luks.Cryptsetup{PBKDF: []string{"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"}}

// SealDisk adds a new random key to a LUKS keyslot of device (unlocking it
// with passphrase, an existing one), seals it and stores the record on
// /boot. PCR 4 is sealed at its start value, PCR 6 at "extended with this
// header", the profile's other disk PCRs at their values now. With a pin
// the TPM also asks for it. name is the device-mapper name the OS expects
// ("" = luks-<uuid>). The record keeps the header measurement, so a changed
// header can be named later.
func (s *State) SealDisk(device string, passphrase, pin []byte, name string) (*seal.Record, error) {
	return s.sealDisk(device, passphrase, pin, name, nil, nil)
}

// sealDisk is SealDisk with the LUKS keyslot's key derived from the sealed
// key by slotKey (nil: the sealed key itself; see SealNetworkDisk) and
// extra joined to the record.
func (s *State) sealDisk(device string, passphrase, pin []byte, name string, slotKey func(sealed []byte) ([]byte, error), extra map[string]string) (*seal.Record, error) {
	if s.TPM == nil {
		return nil, errors.New("no TPM")
	}
	var set []int
	for _, i := range s.Profile.Disk {
		if i != pcr.LUKS {
			set = append(set, i)
		}
	}
	values, predicted, err := s.sealValues(set)
	if err != nil {
		return nil, err
	}
	// PCR 6 before glint extends the header into it: predicted from the
	// firmware log on a running OS, else its value now.
	start, have := s.Start[pcr.LUKS]
	if !have {
		cur, err := s.TPM.ReadPCRs(s.Bank, []int{pcr.LUKS})
		if err != nil {
			return nil, err
		}
		start = cur[pcr.LUKS]
	}
	hdr, err := luks.ReadHeader(device)
	if err != nil {
		return nil, err
	}
	slot := hdr.DefaultSlot()
	key, err := newDiskKey(s.TPM)
	if err != nil {
		return nil, err
	}
	defer secret.Wipe(key)
	inSlot := key
	if slotKey != nil {
		if inSlot, err = slotKey(key); err != nil {
			return nil, err
		}
		defer secret.Wipe(inSlot)
	}
	if err := randomKeySlot.AddKey(device, passphrase, inSlot, slot); err != nil {
		return nil, fmt.Errorf("add the disk unlock key to keyslot %d of %s: %w", slot, device, err)
	}
	m, err := luks.Measure(device)
	if err != nil {
		return nil, err
	}
	if start == nil {
		start = pcr.Zero(s.Bank)
	}
	values[pcr.LUKS] = pcr.Extend(s.Bank, start, pcr.Measure(s.Bank, m.Digest[:]))
	predicted = append(predicted, pcr.LUKS)
	mj, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	recExtra := map[string]string{
		"uuid": m.Summary.UUID, "device": device, "slot": strconv.Itoa(slot),
		"name": name, "measurement": string(mj),
	}
	for k, v := range extra {
		recExtra[k] = v
	}
	rec, err := seal.Seal(s.TPM, key, seal.Request{
		Purpose: PurposeDisk, Profile: s.Profile, Bank: s.Bank, Values: values,
		Predicted: predicted, PIN: pin, Events: s.Events(), Now: s.now(), ApprovalKey: s.ApprovalKey, Epoch: s.sealEpoch(),
		Extra: recExtra,
	})
	if err != nil {
		// Do not leave an unsealed key in a slot nobody can use.
		if kerr := randomKeySlot.KillSlot(device, passphrase, slot); kerr != nil {
			err = fmt.Errorf("%w (and removing the new keyslot %d failed: %v)", err, slot, kerr)
		}
		return nil, err
	}
	if err := s.writable(func() error { return seal.Save(s.BootDir, rec) }); err != nil {
		return nil, err
	}
	return rec, nil
}

// newDiskKey draws the key from the kernel's RNG mixed with the TPM's.
func newDiskKey(t tpm.TPM) ([]byte, error) {
	key := make([]byte, DiskKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	for off := 0; off < DiskKeySize; off += 32 {
		r, err := t.Random(32)
		if err != nil {
			secret.Wipe(key)
			return nil, fmt.Errorf("TPM random: %w", err)
		}
		for i := 0; i < 32 && off+i < DiskKeySize; i++ {
			key[off+i] ^= r[i]
		}
		secret.Wipe(r)
	}
	return key, nil
}

// LoadDisk reads the sealed disk key record from /boot; seal.ErrNotSealed
// (wrapped) if the owner set none up.
func LoadDisk(bootDir string) (*seal.Record, error) {
	return seal.Load(bootDir, PurposeDisk)
}

// FindLUKS finds the device the OS will open for rec's volume: by its LUKS
// UUID, as crypttab's UUID= and udev's /dev/disk/by-uuid do, among every
// block device and partition of the machine (luks.FindByUUID). The device
// path in the record is unsigned (anyone with the disk can point it at a
// copy of the good header on another disk) and is not used; a UUID on more
// than one device is refused (*luks.AmbiguousUUIDError), because which one
// the OS opens is then up to enumeration order.
func FindLUKS(rec *seal.Record) (string, error) {
	return FindLUKSAmong(rec, blockdev.List())
}

// FindLUKSAmong is FindLUKS among the given devices.
func FindLUKSAmong(rec *seal.Record, devices []string) (string, error) {
	uuid := rec.Extra["uuid"]
	if uuid == "" {
		return "", errors.New("the sealed disk key record names no LUKS UUID: seal the disk key again (glint disk seal)")
	}
	v, err := luks.FindByUUID(devices, uuid)
	if err != nil {
		return "", err
	}
	return v.Device, nil
}

// sealedMeasurement returns the header measurement stored in a record.
func sealedMeasurement(rec *seal.Record) (luks.Measurement, error) {
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

// MeasureDiskHeader measures the LUKS header of device into PCR 6 (exactly
// once per boot: the sealed value expects one extension) and compares it
// with the header the key was sealed with: a *luks.ChangedError names what
// changed. Only after it succeeds should UnsealDisk ask the TPM.
func (s *State) MeasureDiskHeader(rec *seal.Record, device string) error {
	sealed, err := sealedMeasurement(rec)
	if err != nil {
		return err
	}
	cur, err := luks.Measure(device)
	if err != nil {
		return err
	}
	if err := s.Measure(pcr.Measurement{PCR: pcr.LUKS, Description: cur.Description(), Data: cur.Digest[:]}); err != nil {
		return err
	}
	return luks.Compare(sealed, cur)
}

// UnsealDisk asks the TPM for the disk key (pin: the owner's PIN if the
// record wants one). tpm.ErrAuthFail means a wrong PIN; a
// *seal.MismatchError names what changed. The caller wipes the key.
func (s *State) UnsealDisk(rec *seal.Record, pin []byte) ([]byte, error) {
	if tpm.IsAuthorizedBlob(rec.Blob) {
		return s.unsealApproved(rec, pin)
	}
	return seal.Unseal(s.TPM, rec, pin, s.Profile, s.Events())
}

// UnsealDiskOn does the boot's steps for the disk key on device ("": find
// it): load the record, measure and check the header, unseal. For the
// CLI's recovery and tests; the boot flow takes the steps one by one.
func (s *State) UnsealDiskOn(device string, pin []byte) ([]byte, error) {
	rec, err := LoadDisk(s.BootDir)
	if err != nil {
		return nil, err
	}
	if device == "" {
		if device, err = FindLUKS(rec); err != nil {
			return nil, err
		}
	}
	if err := s.MeasureDiskHeader(rec, device); err != nil {
		return nil, err
	}
	return s.UnsealDisk(rec, pin)
}

// DiskKeyCpio is the cpio archive appended to the OS initrd at kexec: the
// key and a crypttab pointing the sealed volume at it, in the dialect of
// osInitrd (initramfs-tools or dracut; luks.KeyCrypttab), so the OS unlocks
// its root without asking.
func DiskKeyCpio(key []byte, osInitrd io.Reader, rec *seal.Record) ([]byte, error) {
	tab, style := luks.KeyCrypttab(osInitrd, rec.Extra["uuid"], rec.Extra["name"])
	return luks.BuildKeyCpio(key, tab, style)
}
