package tpm

import (
	"encoding/binary"

	"fmt"
	"strings"
	"time"

	"github.com/google/go-tpm/tpm2"
)

// Dictionary-attack defaults ConfigureLockout is meant to be called with
// (TPM 2.0 Part 1, "Dictionary Attack Protection"). They protect the
// PIN-guarded disk key: 10 wrong PINs lock the TPM, one try comes back every
// 10 minutes of powered time (so a thief gets ~150 guesses a day at most).
// A wrong lockout authorisation blocks the lockout hierarchy until the next
// TPM reset (lockoutRecovery 0, Part 1: "a TPM Reset is required"): code
// after glint gets one guess per boot at a 256-bit value, and the owner,
// whom such a guess would lock out of the lockout reset for as long as the
// recovery time, gets it back at the next power-on in glint's menu.
const (
	DefaultMaxTries               = 10
	DefaultRecoverySeconds        = 600
	DefaultLockoutRecoverySeconds = 0
)

func secondsDuration(s uint32) time.Duration { return time.Duration(s) * time.Second }

// Handles and tags used by the hand-encoded commands below (Part 2, 7.4, 6.9).
const (
	rhLockout   = 0x4000000A
	rhPlatform  = 0x4000000C
	rsPW        = 0x40000009
	stSessions  = 0x8002
	ccDAReset   = 0x139
	ccDAParams  = 0x13A
	ccClear     = 0x126
	pwSessionSz = 9
)

// passwordCommand builds a command with one handle authorised by a
// password session (TPM_RS_PW; Part 1, "Password Authorizations") carrying
// auth (empty on a factory-fresh TPM), for the few commands go-tpm v0.9.8
// lacks.
func passwordCommand(cc uint32, handle uint32, auth, params []byte) []byte {
	size := headerSize + 4 + 4 + pwSessionSz + len(auth) + len(params)
	b := binary.BigEndian.AppendUint16(nil, stSessions)
	b = binary.BigEndian.AppendUint32(b, uint32(size))
	b = binary.BigEndian.AppendUint32(b, cc)
	b = binary.BigEndian.AppendUint32(b, handle)
	b = binary.BigEndian.AppendUint32(b, uint32(pwSessionSz+len(auth)))
	b = binary.BigEndian.AppendUint32(b, rsPW)
	b = binary.BigEndian.AppendUint16(b, 0) // nonce
	b = append(b, 0x01)                     // continueSession
	b = binary.BigEndian.AppendUint16(b, uint16(len(auth)))
	b = append(b, auth...)
	return append(b, params...)
}

func (d *tpm20) sendRaw(name string, cmd []byte) error {
	rsp, err := d.t.Send(cmd)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if code := binary.BigEndian.Uint32(rsp[6:10]); code != 0 {
		return wrap20(name, rcError(code))
	}
	return nil
}

// ConfigureLockout sets the dictionary-attack parameters using the lockout
// hierarchy (TPM2_DictionaryAttackParameters, Part 3, 25.3), authorised by
// the lockout authorisation this handle was given (UseAuth; empty on a
// factory-fresh TPM).
func (d *tpm20) ConfigureLockout(maxTries, recoverySeconds, lockoutRecoverySeconds uint32) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := binary.BigEndian.AppendUint32(nil, maxTries)
	p = binary.BigEndian.AppendUint32(p, recoverySeconds)
	p = binary.BigEndian.AppendUint32(p, lockoutRecoverySeconds)
	return lockoutHierarchy(d.sendRaw("TPM2_DictionaryAttackParameters", passwordCommand(ccDAParams, rhLockout, d.auth.Lockout, p)))
}

// ResetLockout forgets all failed authorisations
// (TPM2_DictionaryAttackLockReset, Part 3, 25.2), with the lockout
// authorisation this handle was given (UseAuth).
func (d *tpm20) ResetLockout() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return lockoutHierarchy(d.sendRaw("TPM2_DictionaryAttackLockReset", passwordCommand(ccDAReset, rhLockout, d.auth.Lockout, nil)))
}

// Clear runs TPM2_Clear (Part 3, 24.6): new storage seed, owner NV indices
// and owner/endorsement/lockout auths removed. It uses the platform
// hierarchy (empty auth until LockPlatform in this boot) and falls back to
// the lockout hierarchy with the lockout authorisation this handle was
// given (UseAuth). Once glint set a lockout authorisation, code that runs
// after glint locked the platform cannot clear the TPM.
func (d *tpm20) Clear() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	errPlatform := d.sendRaw("TPM2_Clear(platform)", passwordCommand(ccClear, rhPlatform, nil, nil))
	if errPlatform == nil {
		d.auth = HierarchyAuth{}
		return nil
	}
	errLockout := lockoutHierarchy(d.sendRaw("TPM2_Clear(lockout)", passwordCommand(ccClear, rhLockout, d.auth.Lockout, nil)))
	if errLockout == nil {
		d.auth = HierarchyAuth{} // TPM2_Clear empties the owner and lockout auths
		return nil
	}
	return fmt.Errorf("TPM clear refused by both hierarchies (%v; %v): reboot into glint before the platform is locked, or clear the TPM from the firmware setup", errPlatform, errLockout)
}

// LockPlatform sets the platform hierarchy's authorisation to 32 random
// bytes that are then forgotten (TPM2_HierarchyChangeAuth, Part 3, 24.8), as
// Heads does in kexec_finalize. Until the next TPM reset (platformAuth
// returns to the Empty Auth at every TPM Reset and Restart, Part 1,
// "Platform Hierarchy") nobody can use the
// platform hierarchy: the booted OS cannot TPM2_Clear through it, define or
// delete platform NV, or change the PCR bank allocation. The owner
// hierarchy stays usable, so the OS can still use the TPM.
//
// Disabling the platform hierarchy (TPM2_HierarchyControl) would do the
// same but also hide platform-created NV indices (e.g. EK certificates)
// from the OS, so the auth change is the gentler lock.
//
// A platform hierarchy the firmware already locked (OVMF sets a random
// platform authorisation itself) or disabled is fine: nil, and Platform
// says which. An error wraps ErrPlatformUnlockable: glint could neither
// lock it nor find it locked (it is no wrong PIN).
func (d *tpm20) LockPlatform() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	st, err := d.platformStatus()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrPlatformUnlockable, err)
	}
	if st != PlatformOpen {
		return nil
	}
	secret, err := d.random(32)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrPlatformUnlockable, err)
	}
	defer clear(secret)
	_, err = tpm2.HierarchyChangeAuth{
		AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHPlatform, Auth: tpm2.PasswordAuth(nil)},
		NewAuth:    tpm2.TPM2BAuth{Buffer: secret},
	}.Execute(d.t)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrPlatformUnlockable, wrap20("TPM2_HierarchyChangeAuth(platform)", err))
	}
	d.platformLocked = true
	return nil
}

// Shutdown sends TPM2_Shutdown(CLEAR) (Part 3, 9.4): the TPM saves its
// state, so the following reset is orderly and a DA-protected object used
// in this boot does not count as a failure (Part 1, "Dictionary Attack Protection": an unorderly shutdown after a
// DA-protected authorisation counts as a failure).
func (d *tpm20) Shutdown() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, err := tpm2.Shutdown{ShutdownType: tpm2.TPMSUClear}.Execute(d.t)
	return wrap20("TPM2_Shutdown", err)
}

// Info is what `glint tpm info` prints and the boot menu can show.
type Info struct {
	Version      Version
	Manufacturer string // e.g. "IBM", "IFX", "STM"
	Firmware     string
	Banks        []Alg
	// Dictionary-attack state (TPM 2.0; zero on TPM 1.2).
	LockoutCounter  uint32 // failures counted now
	MaxTries        uint32
	RecoverySeconds uint32
	LockedOut       bool
	// TPM 1.2: owner installed.
	Owned bool
}

// TPMA_PERMANENT.inLockout (Part 2, 8.6: bit 9).
const inLockout = 1 << 9

func (d *tpm20) Info() (*Info, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	info := &Info{Version: Version20, Owned: true}
	m, err := d.property(tpm2.TPMPTManufacturer)
	if err != nil {
		return nil, err
	}
	info.Manufacturer = fourCC(m)
	f1, _ := d.property(tpm2.TPMPTFirmwareVersion1)
	f2, _ := d.property(tpm2.TPMPTFirmwareVersion2)
	info.Firmware = fmt.Sprintf("%d.%d.%d.%d", f1>>16, f1&0xffff, f2>>16, f2&0xffff)
	if info.Banks, err = d.banks(); err != nil {
		return nil, err
	}
	info.LockoutCounter, _ = d.property(tpm2.TPMPTLockoutCounter)
	info.MaxTries, _ = d.property(tpm2.TPMPTMaxAuthFail)
	info.RecoverySeconds, _ = d.property(tpm2.TPMPTLockoutInterval)
	perm, _ := d.property(tpm2.TPMPTPermanent)
	info.LockedOut = perm&inLockout != 0
	return info, nil
}

// fourCC turns a TPM_PT_MANUFACTURER value into its ASCII vendor ID (TCG
// Vendor ID Registry).
func fourCC(v uint32) string {
	b := []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
	return strings.TrimRight(strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return -1
		}
		return r
	}, string(b)), " ")
}
