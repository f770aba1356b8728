package tpm

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/google/go-tpm/tpm2"
)

// TPM 2.0 side of owner.go.

// TPMA_PERMANENT bits (Part 2, 8.6).
const (
	permOwnerAuthSet   = 1 << 0
	permLockoutAuthSet = 1 << 2
)

func (d *tpm20) UseAuth(a HierarchyAuth) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.auth.Wipe()
	d.auth = a.clone()
}

// persistentSRK is the storage root key at SRKHandle, if one is there and
// it is a genuine primary key of the owner hierarchy made from the SRK
// template's kind.
type persistentSRK struct {
	handle tpm2.TPMHandle
	name   tpm2.TPM2BName
	pub    *tpm2.TPMTPublic
}

// readSRK returns the persistent SRK, ErrNotProvisioned if SRKHandle is
// empty, or an error if something else sits there.
func (d *tpm20) readSRK() (*persistentSRK, error) {
	rsp, err := tpm2.ReadPublic{ObjectHandle: tpm2.TPMHandle(SRKHandle)}.Execute(d.t)
	if err != nil {
		if code, ok := rc20(err); ok && canonical(code) == rcHandle {
			return nil, fmt.Errorf("%w: no storage key persisted at 0x%08x", ErrNotProvisioned, uint32(SRKHandle))
		}
		return nil, wrap20("TPM2_ReadPublic(SRK)", err)
	}
	pub, err := rsp.OutPublic.Contents()
	if err != nil {
		return nil, fmt.Errorf("storage key at 0x%08x: public area: %w", uint32(SRKHandle), err)
	}
	if err := checkSRK(pub, rsp.Name, rsp.QualifiedName); err != nil {
		return nil, fmt.Errorf("the key persisted at 0x%08x is not a storage root key glint can trust (%v): clear the TPM (glint's menu, TPM reset) so glint can set it up", uint32(SRKHandle), err)
	}
	return &persistentSRK{handle: tpm2.TPMHandle(SRKHandle), name: rsp.Name, pub: pub}, nil
}

// checkSRK makes sure the persisted key is a primary of the owner
// hierarchy whose private part never left the TPM: an ECC P-256 restricted
// decryption key with fixedTPM, fixedParent and sensitiveDataOrigin, whose
// qualified name is H(TPM_RH_OWNER || Name) (Part 1, "Qualified Name").
// A storage key imported with a private part someone knows would let that
// someone read everything sealed under it; an import is never a primary.
func checkSRK(pub *tpm2.TPMTPublic, name, qualifiedName tpm2.TPM2BName) error {
	a := pub.ObjectAttributes
	if pub.Type != tpm2.TPMAlgECC || pub.NameAlg != tpm2.TPMAlgSHA256 {
		return fmt.Errorf("not an ECC key with a SHA-256 name")
	}
	if !a.FixedTPM || !a.FixedParent || !a.SensitiveDataOrigin || !a.Restricted || !a.Decrypt || a.SignEncrypt {
		return fmt.Errorf("attributes are not those of a storage root key")
	}
	ecc, err := pub.Parameters.ECCDetail()
	if err != nil || ecc.CurveID != tpm2.TPMECCNistP256 {
		return fmt.Errorf("not a P-256 key")
	}
	h := sha256.New()
	h.Write(binary.BigEndian.AppendUint32(nil, uint32(tpm2.TPMRHOwner)))
	h.Write(name.Buffer)
	want := binary.BigEndian.AppendUint16(nil, uint16(tpm2.TPMAlgSHA256))
	want = h.Sum(want)
	if !bytes.Equal(qualifiedName.Buffer, want) {
		return fmt.Errorf("not a primary key of the owner hierarchy")
	}
	return nil
}

// srkForUse returns the storage key to seal and unseal under: the
// persistent SRK, or on a TPM not yet set up a transient SRK created from
// the same template (the same key: both come from the owner seed), which
// the returned release function flushes.
func (d *tpm20) srkForUse() (handle tpm2.TPMHandle, name tpm2.TPM2BName, pub *tpm2.TPMTPublic, release func(), err error) {
	p, err := d.readSRK()
	if err == nil {
		return p.handle, p.name, p.pub, func() {}, nil
	}
	if !errors.Is(err, ErrNotProvisioned) {
		return 0, tpm2.TPM2BName{}, nil, nil, err
	}
	rsp, err := d.createSRK()
	if err != nil {
		return 0, tpm2.TPM2BName{}, nil, nil, err
	}
	pub, err = rsp.OutPublic.Contents()
	if err != nil {
		d.flush(rsp.ObjectHandle)
		return 0, tpm2.TPM2BName{}, nil, nil, fmt.Errorf("storage key public area: %w", err)
	}
	return rsp.ObjectHandle, rsp.Name, pub, func() { d.flush(rsp.ObjectHandle) }, nil
}

// PrepareOwnership persists the SRK at SRKHandle (TPM2_EvictControl, Part
// 3, 28.5, owner authorisation as given by UseAuth, empty on a fresh TPM).
// Done already: nothing happens.
func (d *tpm20) PrepareOwnership() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, err := d.readSRK()
	if err == nil {
		return nil
	}
	if !errors.Is(err, ErrNotProvisioned) {
		return err
	}
	srk, err := d.createSRK()
	if err != nil {
		return err
	}
	defer d.flush(srk.ObjectHandle)
	_, err = tpm2.EvictControl{
		Auth:             tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(d.auth.Owner)},
		ObjectHandle:     &tpm2.NamedHandle{Handle: srk.ObjectHandle, Name: srk.Name},
		PersistentHandle: SRKHandle,
	}.Execute(d.t)
	return hierarchyAuth("owner", wrap20("TPM2_EvictControl(SRK)", err))
}

// Identity is SHA-256 of the persistent SRK's Name.
func (d *tpm20) Identity() (*Identity, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, err := d.readSRK()
	if err != nil {
		return nil, err
	}
	return &Identity{Kind: IdentitySRKName, Digest: sha256.Sum256(p.name.Buffer)}, nil
}

// SetHierarchyAuth changes the owner and lockout authorisations
// (TPM2_HierarchyChangeAuth, Part 3, 24.8) from the ones this handle holds
// (UseAuth; empty on a fresh TPM) to next, and keeps next for later
// commands. Safe to repeat: a hierarchy that already has next is left as it
// is, so an interrupted call (power cut between the two changes) is
// finished by the next one. The lockout authorisation is never guessed: a
// wrong one blocks the lockout hierarchy for TPM_PT_LOCKOUT_RECOVERY.
func (d *tpm20) SetHierarchyAuth(next HierarchyAuth) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(next.Owner) == 0 || len(next.Lockout) == 0 {
		return fmt.Errorf("set TPM authorisations: refusing empty values (that would give the TPM back to anyone)")
	}
	perm, err := d.property(tpm2.TPMPTPermanent)
	if err != nil {
		return err
	}
	change := func(name string, h tpm2.TPMHandle, isSet bool, cur, nxt []byte) error {
		if !isSet {
			cur = nil // empty on the TPM, whatever this handle was told
		}
		if isSet && bytes.Equal(cur, nxt) {
			return nil
		}
		if isSet && len(cur) == 0 {
			// Set, and this handle knows no value: either ours already
			// (an interrupted earlier call) or someone else's. The owner
			// hierarchy is not DA-protected, so trying the new value costs
			// nothing; for lockout, trying would risk blocking it.
			if h == tpm2.TPMRHLockout {
				return &HierarchyAuthError{Hierarchy: name, Err: fmt.Errorf("the lockout authorisation is already set and this handle does not know it")}
			}
			cur = nxt
		}
		_, err := tpm2.HierarchyChangeAuth{
			AuthHandle: tpm2.AuthHandle{Handle: h, Auth: tpm2.PasswordAuth(cur)},
			NewAuth:    tpm2.TPM2BAuth{Buffer: nxt},
		}.Execute(d.t)
		return hierarchyAuth(name, wrap20(fmt.Sprintf("TPM2_HierarchyChangeAuth(%s)", name), err))
	}
	if err := change("owner", tpm2.TPMRHOwner, perm&permOwnerAuthSet != 0, d.auth.Owner, next.Owner); err != nil {
		return err
	}
	d.auth.Owner = append([]byte(nil), next.Owner...)
	if err := change("lockout", tpm2.TPMRHLockout, perm&permLockoutAuthSet != 0, d.auth.Lockout, next.Lockout); err != nil {
		return err
	}
	d.auth.Lockout = append([]byte(nil), next.Lockout...)
	return nil
}

// LockoutStatus reads the dictionary-attack state (Part 2, 6.13: the
// TPM_PT_LOCKOUT_* properties and TPMA_PERMANENT.inLockout).
func (d *tpm20) LockoutStatus() (*LockoutStatus, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := &LockoutStatus{Family: Version20}
	var err error
	if s.Failures, err = d.property(tpm2.TPMPTLockoutCounter); err != nil {
		return nil, err
	}
	if s.MaxTries, err = d.property(tpm2.TPMPTMaxAuthFail); err != nil {
		return nil, err
	}
	interval, err := d.property(tpm2.TPMPTLockoutInterval)
	if err != nil {
		return nil, err
	}
	recovery, err := d.property(tpm2.TPMPTLockoutRecovery)
	if err != nil {
		return nil, err
	}
	perm, err := d.property(tpm2.TPMPTPermanent)
	if err != nil {
		return nil, err
	}
	s.Recovery, s.LockoutRecovery = secondsDuration(interval), secondsDuration(recovery)
	s.InLockout = perm&inLockout != 0
	if s.InLockout {
		s.TimeLeft = s.Recovery
	}
	return s, nil
}

// ReadClock runs TPM2_ReadClock (Part 3, 29.1).
func (d *tpm20) ReadClock() (*ClockInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	rsp, err := tpm2.ReadClock{}.Execute(d.t)
	if err != nil {
		return nil, wrap20("TPM2_ReadClock", err)
	}
	t := rsp.CurrentTime
	return &ClockInfo{
		Family:       Version20,
		Clock:        time.Duration(t.ClockInfo.Clock) * time.Millisecond,
		ResetCount:   t.ClockInfo.ResetCount,
		RestartCount: t.ClockInfo.RestartCount,
		Safe:         bool(t.ClockInfo.Safe),
		SinceReset:   time.Duration(t.Time) * time.Millisecond,
	}, nil
}
