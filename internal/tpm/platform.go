package tpm

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
)

// PlatformStatus says who can still use the platform hierarchy (TPM 2.0)
// or assert physical presence by command (TPM 1.2): with it, anyone can
// clear the TPM or change the PCR banks. glint locks it before hand-over
// (LockPlatform); firmware may have locked it already (OVMF sets a random
// platform authorisation before it starts any boot loader).
type PlatformStatus int

const (
	// PlatformOpen: usable by anyone now (glint must lock it before
	// anything else runs).
	PlatformOpen PlatformStatus = iota + 1
	// PlatformLockedByGlint: this handle locked it in this boot.
	PlatformLockedByGlint
	// PlatformLockedBefore: locked before glint ran (by the firmware,
	// which is measured): nobody after glint can use it either.
	PlatformLockedBefore
	// PlatformDisabled: the platform hierarchy is switched off for this
	// boot (TPMA_STARTUP_CLEAR.phEnable clear).
	PlatformDisabled
)

func (s PlatformStatus) String() string {
	switch s {
	case PlatformOpen:
		return "open (anyone can clear the TPM until glint locks it)"
	case PlatformLockedByGlint:
		return "locked by glint for this boot"
	case PlatformLockedBefore:
		return "locked by the firmware before glint ran"
	case PlatformDisabled:
		return "disabled by the firmware for this boot"
	}
	return "unknown"
}

// Locked: nobody after glint can use the platform hierarchy in this boot.
func (s PlatformStatus) Locked() bool { return s != PlatformOpen }

// ErrPlatformUnlockable: glint could neither lock the platform hierarchy
// nor find it locked; the boot flow releases no secret in that boot.
var ErrPlatformUnlockable = errors.New("the TPM platform hierarchy can be neither locked nor found locked")

// TPMA_STARTUP_CLEAR.phEnable (Part 2, 8.7).
const startupPHEnable = 1 << 0

// platformStatus20 finds out without changing anything: a platform
// HierarchyChangeAuth from the empty value to the empty value succeeds
// only if the platform authorisation is empty (Part 3, 24.8). The platform
// hierarchy is not DA-protected, so the probe costs nothing.
func (d *tpm20) platformStatus() (PlatformStatus, error) {
	if d.platformLocked {
		return PlatformLockedByGlint, nil
	}
	sc, err := d.property(tpm2.TPMPTStartupClear)
	if err != nil {
		return 0, err
	}
	if sc&startupPHEnable == 0 {
		return PlatformDisabled, nil
	}
	_, err = tpm2.HierarchyChangeAuth{
		AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHPlatform, Auth: tpm2.PasswordAuth(nil)},
		NewAuth:    tpm2.TPM2BAuth{},
	}.Execute(d.t)
	if err == nil {
		return PlatformOpen, nil
	}
	if errors.Is(wrap20("", err), ErrAuthFail) {
		return PlatformLockedBefore, nil
	}
	return 0, wrap20("TPM2_HierarchyChangeAuth(platform probe)", err)
}

func (d *tpm20) Platform() (PlatformStatus, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.platformStatus()
}

// TPM 1.2: TPM_STCLEAR_FLAGS (Main Part 2, 7.2) through
// TPM_GetCapability(TPM_CAP_FLAG, TPM_CAP_FLAG_VOLATILE): tag, then
// deactivated, disableForceClear, physicalPresence, physicalPresenceLock.
const (
	capFlag         = 0x04
	capFlagVolatile = 0x109
	capFlagPerm     = 0x108
)

func (d *tpm12) stclearFlags() ([]byte, error) {
	b, err := d.getCapability(capFlag, capFlagVolatile)
	if err != nil {
		return nil, err
	}
	if len(b) < 6 || binary.BigEndian.Uint16(b) != 0x0020 { // TPM_TAG_STCLEAR_FLAGS (Main Part 2, 3.1)
		return nil, fmt.Errorf("TPM_GetCapability(STCLEAR flags): malformed answer %x", b)
	}
	return b, nil
}

func (d *tpm12) platformStatus() (PlatformStatus, error) {
	if d.platformLocked {
		return PlatformLockedByGlint, nil
	}
	f, err := d.stclearFlags()
	if err != nil {
		return 0, err
	}
	if f[5] != 0 { // physicalPresenceLock
		return PlatformLockedBefore, nil
	}
	return PlatformOpen, nil
}

func (d *tpm12) Platform() (PlatformStatus, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.platformStatus()
}

// SetupMarks are the signs, kept in the TPM where nobody with the disk can
// remove them, that glint set this machine up. If /boot holds no glint
// state but the TPM has these, glint's state was deleted: that is
// tampering, not a new machine.
type SetupMarks struct {
	// Counter: the rollback counter's NV index (or TPM 1.2 counter) exists.
	Counter bool
	// SRK: TPM 2.0: a storage key is persisted at SRKHandle; TPM 1.2: the
	// SRK public key is readable (TPM_PF_READSRKPUB, which glint sets).
	SRK bool
	// OwnerAuth, LockoutAuth: the TPM 2.0 hierarchies have
	// authorisations (TPMA_PERMANENT ownerAuthSet, lockoutAuthSet). TPM
	// 1.2 cannot tell a well-known owner secret from another without
	// trying it, so OwnerAuth stays false there.
	OwnerAuth, LockoutAuth bool
}

// Any reports whether any mark is present.
func (m *SetupMarks) Any() bool { return m.Counter || m.SRK || m.OwnerAuth || m.LockoutAuth }

// String lists the marks in words.
func (m *SetupMarks) String() string {
	var out []string
	if m.Counter {
		out = append(out, "glint's rollback counter")
	}
	if m.SRK {
		out = append(out, "glint's storage key")
	}
	if m.OwnerAuth || m.LockoutAuth {
		out = append(out, "an owner authorisation")
	}
	if len(out) == 0 {
		return "none"
	}
	return joinWords(out)
}

func joinWords(w []string) string {
	switch len(w) {
	case 1:
		return w[0]
	case 2:
		return w[0] + " and " + w[1]
	}
	return fmt.Sprintf("%s, %s", joinWords(w[:len(w)-1]), w[len(w)-1])
}

func (d *tpm20) SetupMarks(counterIndex uint32) (*SetupMarks, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := &SetupMarks{}
	perm, err := d.property(tpm2.TPMPTPermanent)
	if err != nil {
		return nil, err
	}
	m.OwnerAuth, m.LockoutAuth = perm&permOwnerAuthSet != 0, perm&permLockoutAuthSet != 0
	if _, err := d.readSRK(); err == nil {
		m.SRK = true
	} else if !errors.Is(err, ErrNotProvisioned) {
		m.SRK = true // something sits at the SRK handle
	}
	if _, err := d.nvPublic(counterIndex); err == nil {
		m.Counter = true
	} else if !errors.Is(err, ErrNotDefined) {
		return nil, err
	}
	return m, nil
}

func (d *tpm12) SetupMarks(counterIndex uint32) (*SetupMarks, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := &SetupMarks{}
	b, err := d.getCapability(capFlag, capFlagPerm)
	if err != nil {
		return nil, err
	}
	// TPM_PERMANENT_FLAGS: tag, then 20 booleans; readSRKPub is the 17th.
	if len(b) < 2+17 || binary.BigEndian.Uint16(b) != 0x001F { // TPM_TAG_PERMANENT_FLAGS
		return nil, errors.New("TPM_GetCapability(permanent flags): malformed answer")
	}
	m.SRK = b[2+16] != 0
	if _, err := d.findCounter(counterIndex); err == nil {
		m.Counter = true
	}
	return m, nil
}
