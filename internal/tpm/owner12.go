package tpm

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// TPM 1.2 side of owner.go (TPM Main Specification 1.2 rev 116).

const (
	ordChangeAuthOwner = 0x10
	ordGetPubKey       = 0x21
	ordSetCapability   = 0x3F
	ordGetTicks        = 0xF1

	capDALogic      = 0x19 // TPM_CAP_DA_LOGIC
	setPermFlags    = 0x01 // TPM_SET_PERM_FLAGS
	pfReadSRKPub    = 0x11 // TPM_PF_READSRKPUB (Main Part 2, 7.1: bit 17)
	pidADCP         = 0x0004
	tagDAInfo       = 0x0037
	tagDAInfoLtd    = 0x0038
	daActionTimeout = 0x01 // TPM_DA_ACTION_TIMEOUT
	tagCurrentTicks = 0x0014

	// maxPubKey12 bounds a TPM_PUBKEY: parameters plus a 2048-bit modulus
	// are about 300 bytes; 4096-bit SRKs do not exist on PC Client parts.
	maxPubKey12 = 1024
)

func (d *tpm12) UseAuth(a HierarchyAuth) {
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(d.owner)
	d.owner = nil
	if len(a.Owner) >= 20 {
		d.owner = append([]byte(nil), a.Owner[:20]...)
	}
}

// PrepareOwnership takes ownership if nobody has (well-known owner and SRK
// secrets, as TakeOwnership) and lets anyone read the SRK's public key
// (TPM_SetCapability(TPM_SET_PERM_FLAGS, TPM_PF_READSRKPUB, TRUE), Main
// Part 3, 7.4, owner authorised), which Identity reads at every boot.
func (d *tpm12) PrepareOwnership() error {
	if err := d.TakeOwnership(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	// Done already (the flag needs the owner secret to set, which is no
	// longer the well-known one after SetHierarchyAuth): nothing to do.
	if b, err := d.getCapability(capFlag, capFlagPerm); err == nil && len(b) >= 2+17 && b[2+16] != 0 {
		return nil
	}
	s, err := d.oiap(d.ownerSecret())
	if err != nil {
		return err
	}
	params := u32(setPermFlags)
	params = append(params, u32(4)...)
	params = append(params, u32(pfReadSRKPub)...)
	params = append(params, u32(1)...)
	params = append(params, 1)
	_, err = d.authCommand1("TPM_SetCapability(READSRKPUB)", ordSetCapability, nil, params, s)
	return ownerAuth12(err)
}

// ownerAuth12 turns TPM_AUTHFAIL on an owner-authorised command into a
// *HierarchyAuthError.
func ownerAuth12(err error) error {
	return hierarchyAuth("owner", err)
}

// Identity is SHA-256 of the SRK's TPM_PUBKEY (TPM_GetPubKey, Main Part 3,
// 10.6, SRK handle with the well-known SRK secret). It needs the
// READSRKPUB flag PrepareOwnership sets.
func (d *tpm12) Identity() (*Identity, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s, err := d.oiap(wellKnownSecret)
	if err != nil {
		return nil, err
	}
	out, err := d.authCommand1("TPM_GetPubKey(SRK)", ordGetPubKey, u32(khSRK), nil, s)
	if err != nil {
		var re *ResponseError
		// TPM_INVALID_KEYHANDLE: the owner has not allowed reading the SRK.
		if errors.As(err, &re) && (re.Code == 0x0C || re.Code == rc12AuthFail) {
			return nil, fmt.Errorf("%w: the SRK public key is not readable (%v)", ErrNotProvisioned, err)
		}
		return nil, err
	}
	if len(out) == 0 || len(out) > maxPubKey12 {
		return nil, fmt.Errorf("TPM_GetPubKey(SRK): %d bytes, want 1..%d", len(out), maxPubKey12)
	}
	return &Identity{Kind: IdentitySRKPub, Digest: sha256.Sum256(out)}, nil
}

// SetHierarchyAuth changes the owner secret with TPM_ChangeAuthOwner
// (Main Part 3, 17.2; ADIP, OSAP on the owner with the current secret) from
// the one this handle holds (well-known unless UseAuth) to next.Owner's
// first 20 bytes. next.Lockout is not used: TPM 1.2 has no lockout
// hierarchy. Repeating it with the same value is harmless.
func (d *tpm12) SetHierarchyAuth(next HierarchyAuth) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(next.Owner) < 20 {
		return errors.New("set TPM owner secret: want at least 20 bytes")
	}
	nxt := append([]byte(nil), next.Owner[:20]...)
	// A TPM 1.2 does not say whether its owner secret is still the
	// well-known one, so try what it can be: the secret this handle was
	// given, the well-known one (a TPM glint has not set up), the new one
	// (an earlier call already changed it, and a power cut hid that).
	var tried [][]byte
	var err error
	for _, cur := range [][]byte{d.owner, wellKnownSecret, nxt} {
		if len(cur) == 0 || containsSecret(tried, cur) {
			continue
		}
		tried = append(tried, cur)
		if err = d.changeAuthOwner(cur, nxt); err == nil || !errors.Is(err, ErrAuthFail) {
			break
		}
	}
	if err != nil {
		clear(nxt)
		return ownerAuth12(err)
	}
	clear(d.owner)
	d.owner = nxt
	return nil
}

func containsSecret(list [][]byte, s []byte) bool {
	for _, l := range list {
		if bytes.Equal(l, s) {
			return true
		}
	}
	return false
}

func (d *tpm12) changeAuthOwner(cur, nxt []byte) error {
	s, err := d.osap(etOwner, khOwner, cur)
	if err != nil {
		return err
	}
	params := u16(pidADCP)
	params = append(params, s.encAuth(nxt)...)
	params = append(params, u16(etOwner)...)
	_, err = d.authCommand1("TPM_ChangeAuthOwner", ordChangeAuthOwner, nil, params, s)
	return err
}

// LockoutStatus reads TPM_DA_INFO (TPM_GetCapability(TPM_CAP_DA_LOGIC),
// Main Part 2, 21.7 and 21.8). A TPM that hides the counts (the
// TPM_DA_INFO_LIMITED form) still says whether it is locked.
func (d *tpm12) LockoutStatus() (*LockoutStatus, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	// The sub-capability is a TPM_ENTITY_TYPE (2 bytes): the owner's
	// dictionary-attack logic, which on PC Client parts is the one all
	// authorisations share.
	body := append(u32(capDALogic), u32(2)...)
	body = append(body, u16(etOwner)...)
	rsp, err := d.send12("TPM_GetCapability(DA_LOGIC)", tagRquCommand, ordGetCapability, body)
	if err != nil {
		return nil, err
	}
	if len(rsp) < 4 || int(binary.BigEndian.Uint32(rsp)) != len(rsp)-4 {
		return nil, errors.New("TPM_GetCapability(DA_LOGIC): response size does not match")
	}
	return parseDAInfo(rsp[4:])
}

// parseDAInfo decodes TPM_DA_INFO or TPM_DA_INFO_LIMITED.
func parseDAInfo(b []byte) (*LockoutStatus, error) {
	s := &LockoutStatus{Family: Version12, Exact: true}
	if len(b) < 3 {
		return nil, errors.New("TPM_DA_INFO: short answer")
	}
	switch binary.BigEndian.Uint16(b) {
	case tagDAInfo:
		// tag(2) state(1) currentCount(2) thresholdCount(2)
		// actionAtThreshold{tag(2) actions(4)} actionDependValue(4) ...
		if len(b) < 17 {
			return nil, errors.New("TPM_DA_INFO: short answer")
		}
		s.InLockout = b[2] != 0
		s.Failures = uint32(binary.BigEndian.Uint16(b[3:]))
		s.MaxTries = uint32(binary.BigEndian.Uint16(b[5:]))
		if binary.BigEndian.Uint32(b[9:])&daActionTimeout != 0 && s.InLockout {
			s.TimeLeft = time.Duration(binary.BigEndian.Uint32(b[13:])) * time.Second
		}
	case tagDAInfoLtd:
		s.InLockout = b[2] != 0
		s.Exact = false
	default:
		return nil, fmt.Errorf("TPM_DA_INFO: unknown tag 0x%04x", binary.BigEndian.Uint16(b))
	}
	return s, nil
}

// ReadClock runs TPM_GetTicks (Main Part 3, 23.2): ticks since this
// power-on and the nonce that names this count. TPM 1.2 has no clock that
// survives power-off, so Clock stays zero.
func (d *tpm12) ReadClock() (*ClockInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	rsp, err := d.send12("TPM_GetTicks", tagRquCommand, ordGetTicks, nil)
	if err != nil {
		return nil, err
	}
	// TPM_CURRENT_TICKS: tag(2) currentTicks(8) tickRate(2) tickNonce(20).
	if len(rsp) != 32 || binary.BigEndian.Uint16(rsp) != tagCurrentTicks {
		return nil, errors.New("TPM_GetTicks: malformed answer")
	}
	ticks := binary.BigEndian.Uint64(rsp[2:])
	rate := uint64(binary.BigEndian.Uint16(rsp[10:])) // microseconds per tick
	since := time.Duration(ticks*rate) * time.Microsecond
	if rate != 0 && ticks > uint64(1<<63-1)/(rate*1000) {
		since = 0 // nonsense from a broken TPM rather than an overflow
	}
	return &ClockInfo{Family: Version12, SinceReset: since, TickNonce: append([]byte(nil), rsp[12:32]...)}, nil
}
