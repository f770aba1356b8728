package tpm

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// # The TPM belongs to the owner
//
// A factory-fresh TPM 2.0 has empty owner and lockout authorisations, and a
// TPM 1.2 set up as Heads and tpmtotp do has the well-known owner secret.
// Then any code that runs after glint (a forced boot, the OS, a root shell
// in the OS initramfs) can undefine glint's rollback counter, reset the PIN
// lockout (and so guess PINs without limit) or clear the TPM. At set-up glint
// therefore takes the TPM for the owner:
//
//  1. PrepareOwnership: TPM 2.0 persists the storage root key (SRK, the TCG
//     standard ECC P-256 template) at SRKHandle, so sealing and unsealing
//     need no owner authorisation ever again; TPM 1.2 takes ownership if
//     nobody has (well-known owner and SRK secrets) and allows reading the
//     SRK's public key (TPM_PF_READSRKPUB), which Identity needs.
//  2. Identity: a TPM-unique value anyone can read without secrets (the
//     persistent SRK's Name; the TPM 1.2 SRK public key).
//  3. DeriveHierarchyAuth(ownerSecret, identity): the owner and lockout
//     authorisations.
//  4. SetHierarchyAuth: TPM2_HierarchyChangeAuth on the owner and lockout
//     hierarchies; TPM_ChangeAuthOwner on TPM 1.2 (from the well-known
//     secret). The SRK secret stays well-known on TPM 1.2 (sealing needs it,
//     and a sealed object's release is gated by its PCRs and PIN, not by
//     the SRK secret).
//
// Where the values live: nowhere. They are derived, each time they are
// needed, from a secret only the owner has (the owner's OpenPGP private key,
// unlocked with its passphrase in glint's menu; manifest.KeySigner gives the
// secret) and the TPM's identity, with HKDF-SHA256 (RFC 5869). Sealing them
// to the boot state instead was rejected: after a firmware update the PCRs
// change, the sealed copy no longer opens and the TPM could only be
// administered again after a clear, which loses the rollback counter. The
// identity in the derivation makes every machine's values different though
// one owner key signs many machines (an organisation): on TPM 2.0 the
// owner authorisation crosses the bus in clear in a password session, and
// a sniffed value then opens one machine, not all of them.
//
// What keeps working without them: seal and unseal (persistent SRK; TPM 1.2
// well-known SRK secret), extending and reading PCRs, reading and
// incrementing the rollback counter (its index authorisation is empty:
// the OS can only push it ahead, which glint reports as a rollback alarm,
// never hide one), reading NV, quotes with an enrolled key. What needs them:
// defining or deleting NV indices and counters, the dictionary-attack
// parameters and lockout reset (lockout authorisation on 2.0, owner secret
// on 1.2), clearing the TPM through the owner/lockout hierarchies. The
// platform hierarchy (TPM 2.0) and physical presence (TPM 1.2) stay glint's
// until LockPlatform before hand-over, as before: a forced boot is still
// possible, and cannot undo any of this.

// SRKHandle is where PrepareOwnership persists the storage root key: the
// SRK's handle in the TCG TPM v2.0 Provisioning Guidance (7.5.1).
const SRKHandle = 0x81000001

// HierarchyAuth is the pair of authorisations glint sets at set-up.
type HierarchyAuth struct {
	// Owner: TPM 2.0 owner hierarchy authorisation (32 bytes); TPM 1.2 owner
	// secret (the first 20 bytes are used). Empty: factory state (2.0) or
	// the well-known secret (1.2).
	Owner []byte
	// Lockout: TPM 2.0 lockout hierarchy authorisation. TPM 1.2 has no
	// lockout hierarchy; its owner secret resets the lockout.
	Lockout []byte
}

// Wipe overwrites both values.
func (a *HierarchyAuth) Wipe() {
	clear(a.Owner)
	clear(a.Lockout)
}

func (a HierarchyAuth) clone() HierarchyAuth {
	return HierarchyAuth{Owner: append([]byte(nil), a.Owner...), Lockout: append([]byte(nil), a.Lockout...)}
}

// hierarchyAuthSize is SHA-256's size, which TPM_PT_MAX_AUTH allows on every
// TPM 2.0 with a SHA-256 bank; TPM 1.2 secrets are 20 bytes.
const hierarchyAuthSize = 32

// DeriveHierarchyAuth derives the owner and lockout authorisations for the
// TPM with identity id from the owner's secret (HKDF-SHA256, RFC 5869; the
// identity is the salt, the purpose the info). The same inputs always give
// the same values, so nothing needs storing.
func DeriveHierarchyAuth(ownerSecret []byte, id *Identity) (HierarchyAuth, error) {
	if len(ownerSecret) < 16 {
		return HierarchyAuth{}, errors.New("derive TPM authorisations: the owner secret is missing or too short")
	}
	if id == nil {
		return HierarchyAuth{}, errors.New("derive TPM authorisations: no TPM identity")
	}
	owner, err := hkdf.Key(sha256.New, ownerSecret, id.Digest[:], "glint TPM owner authorization v1", hierarchyAuthSize)
	if err != nil {
		return HierarchyAuth{}, err
	}
	lockout, err := hkdf.Key(sha256.New, ownerSecret, id.Digest[:], "glint TPM lockout authorization v1", hierarchyAuthSize)
	if err != nil {
		clear(owner)
		return HierarchyAuth{}, err
	}
	return HierarchyAuth{Owner: owner, Lockout: lockout}, nil
}

// Identity is a TPM-unique value glint can read at every boot without any
// secret, to bind what it signs to this machine's TPM (the manifest records
// it). It changes when the TPM is cleared (a new SRK) or replaced.
type Identity struct {
	// Kind says what was hashed: IdentitySRKName (TPM 2.0: the Name of the
	// persistent SRK, which commits to its public area) or IdentitySRKPub
	// (TPM 1.2: the SRK's RSA public modulus).
	Kind string
	// Digest is SHA-256 of those bytes.
	Digest [32]byte
}

const (
	IdentitySRKName = "tpm2-srk-name"
	IdentitySRKPub  = "tpm12-srk-pub"
)

// String is the form the manifest and messages use: "KIND:HEX".
func (id Identity) String() string { return id.Kind + ":" + hex.EncodeToString(id.Digest[:]) }

// Short is the first 8 bytes of the digest in hex, for messages.
func (id Identity) Short() string { return hex.EncodeToString(id.Digest[:8]) }

// ParseIdentity reads the String form (untrusted: from a manifest).
func ParseIdentity(untrusted string) (*Identity, error) {
	kind, h, ok := strings.Cut(untrusted, ":")
	if !ok || (kind != IdentitySRKName && kind != IdentitySRKPub) {
		return nil, fmt.Errorf("TPM identity %q: want %s:HEX or %s:HEX", untrusted, IdentitySRKName, IdentitySRKPub)
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != sha256.Size || h != strings.ToLower(h) {
		return nil, fmt.Errorf("TPM identity %q: want 64 lowercase hex digits", untrusted)
	}
	id := &Identity{Kind: kind}
	copy(id.Digest[:], b)
	return id, nil
}

// LockoutStatus is the TPM's dictionary-attack state, for telling the owner
// in words what is going on (Heads owners lose hours to unexplained
// lockouts after power cuts).
type LockoutStatus struct {
	Family    Version
	InLockout bool
	// Failures counted now, and how many lock the TPM.
	Failures, MaxTries uint32
	// Recovery is how much powered time forgets one failure (TPM 2.0
	// TPM_PT_LOCKOUT_INTERVAL); zero: only a reset ends a lockout.
	Recovery time.Duration
	// TimeLeft until a PIN may be tried again. TPM 1.2 says it exactly
	// (TPM_DA_INFO.actionDependValue); TPM 2.0 does not report how long ago
	// it last forgot a failure, so TimeLeft is the upper bound (Recovery)
	// and Exact is false.
	TimeLeft time.Duration
	Exact    bool
	// LockoutRecovery: after a wrong lockout authorisation, the lockout
	// hierarchy itself stays blocked this long (TPM 2.0
	// TPM_PT_LOCKOUT_RECOVERY).
	LockoutRecovery time.Duration
}

// Explain says in words what the state means and what ends it.
func (s *LockoutStatus) Explain() string {
	if !s.InLockout {
		if s.Failures == 0 {
			return "TPM PIN lockout: none (no failed PIN attempts counted)"
		}
		return fmt.Sprintf("TPM PIN lockout: not locked; %d of %d failed PIN attempts counted (power cuts while a PIN-protected secret was in use count too)", s.Failures, s.MaxTries)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "The TPM is LOCKED after too many wrong PINs (%d counted, the limit is %d): it refuses every PIN-protected secret for now.", s.Failures, s.MaxTries)
	switch {
	case s.Family == Version12 && s.TimeLeft > 0:
		fmt.Fprintf(&b, " It accepts a PIN again in %s (the TPM's timer runs only while the machine is powered on: leave it on).", roundDuration(s.TimeLeft))
	case s.Family == Version12:
		b.WriteString(" How long it lasts is up to the TPM's maker.")
	case s.Recovery > 0:
		fmt.Fprintf(&b, " One try comes back after at most %s that the machine stays powered on: the TPM's recovery timer runs only while it has power, so a machine that is switched off does not recover (leave it on at glint's menu).", roundDuration(s.TimeLeft))
	default:
		b.WriteString(" This TPM forgets failures only when the lockout is reset.")
	}
	b.WriteString(" The owner can end it now: glint's menu, reset TPM lockout (needs the owner key).")
	if s.Family == Version12 {
		b.WriteString(" A TPM 1.2 refuses every authorisation while locked, so the TOTP secret does not unseal either.")
	} else {
		b.WriteString(" Secrets without a PIN, such as the TOTP secret, are not affected.")
	}
	return b.String()
}

func roundDuration(d time.Duration) string {
	switch {
	case d >= time.Hour:
		return d.Round(time.Minute).String()
	case d >= time.Minute:
		return fmt.Sprintf("%d min", int(d.Round(time.Minute)/time.Minute))
	}
	return d.Round(time.Second).String()
}

// ClockInfo is what the TPM says about time. TPM 2.0 keeps Clock: the
// milliseconds it has been powered, saved in NV and never going back
// (TPM2_ReadClock, Part 3, 29.1). TPM 1.2 only counts ticks since its last
// power-on (TPM_GetTicks, Main Part 3, 23.2); a new TickNonce marks a new
// count, so ticks compare only within one boot.
type ClockInfo struct {
	Family Version
	// Clock: TPM 2.0 total powered time; zero on TPM 1.2.
	Clock time.Duration
	// ResetCount counts TPM resets (power-ons) since the last TPM2_Clear;
	// RestartCount resumes since the last reset (TPM 2.0).
	ResetCount, RestartCount uint32
	// Safe: no larger Clock value was ever reported (TPM 2.0).
	Safe bool
	// SinceReset: time since this power-on (TPM 2.0 Time; TPM 1.2 ticks).
	SinceReset time.Duration
	// TickNonce: TPM 1.2, new at every power-on.
	TickNonce []byte
}

// ClockReading pairs the machine's real-time clock with the TPM's Clock at
// one moment (one per boot, kept by the boot flow).
type ClockReading struct {
	RTC        time.Time
	TPMClock   time.Duration // ClockInfo.Clock (TPM 2.0)
	ResetCount uint32
}

// RTCJumpError says the real-time clock went back relative to the TPM.
type RTCJumpError struct {
	Prev, Now ClockReading
	// Behind is how far the RTC is behind what the TPM's powered time
	// alone requires (at least).
	Behind time.Duration
	// TPMClockBack: the TPM's Clock itself went back: another TPM, or one
	// that was manufactured anew.
	TPMClockBack bool
}

func (e *RTCJumpError) Error() string {
	if e.TPMClockBack {
		return fmt.Sprintf("the TPM's clock went back since the last boot (%s -> %s of powered time): this is not the TPM glint saw last time", e.Prev.TPMClock, e.Now.TPMClock)
	}
	return fmt.Sprintf("the real-time clock jumped back since the last boot: it says %s, but the TPM counted %s of powered time since the last boot at %s, so the clock is at least %s behind. Someone may have set the clock ahead in an earlier boot (to collect TOTP codes for a later date) or back now",
		e.Now.RTC.UTC().Format(time.DateTime), roundDuration(e.Now.TPMClock-e.Prev.TPMClock), e.Prev.RTC.UTC().Format(time.DateTime), roundDuration(e.Behind))
}

// CheckRTC compares two readings taken at two boots of the same machine;
// the error is a *RTCJumpError.
// The TPM's Clock runs only while the machine is powered, so the RTC must
// have advanced at least as much (a machine that was switched off gains RTC
// time the TPM does not see: a forward jump cannot be told from time
// switched off, and is not reported). TPM clocks are not precise (the
// specification lets vendors drift; TPM2_ClockRateAdjust exists for that),
// so RTCTolerance of the powered time plus RTCSlack are allowed.
func CheckRTC(prev, now ClockReading) error {
	if now.TPMClock < prev.TPMClock {
		return &RTCJumpError{Prev: prev, Now: now, TPMClockBack: true}
	}
	powered := now.TPMClock - prev.TPMClock
	elapsed := now.RTC.Sub(prev.RTC)
	allowed := powered - time.Duration(float64(powered)*RTCTolerance) - RTCSlack
	if elapsed < allowed {
		return &RTCJumpError{Prev: prev, Now: now, Behind: powered - elapsed}
	}
	return nil
}

// RTCTolerance and RTCSlack bound honest disagreement between the RTC and
// the TPM's Clock in CheckRTC.
const (
	RTCTolerance = 0.15
	RTCSlack     = 2 * time.Minute
)
