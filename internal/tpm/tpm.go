// Package tpm is glint's only door to a Trusted Platform Module.
//
// The boot flow needs a handful of verbs (read and extend PCRs, seal a secret to
// PCR values, keep a rollback counter, quote for attestation). TPM 1.2 and 2.0
// differ in almost every command, so this package hides the difference behind
// the TPM interface below rather than behind a generic command layer: callers
// ask for "seal this to PCRs 0-4 and 7 at these values" and never see a
// session, a handle or a response code.
//
// Transports: the kernel device (/dev/tpmrm0, /dev/tpm0) and swtpm sockets
// (TCP and unix). Open takes the user's --tpm / GLINT_TPM string:
//
//	/dev/tpmrm0                   kernel resource manager (default)
//	/dev/tpm0                     raw device (what coreboot machines have early)
//	swtpm:tcp:127.0.0.1:2321      swtpm --server type=tcp (raw command channel)
//	swtpm:unix:/run/swtpm.sock    swtpm --server type=unixio
//
// and detects whether a TPM 1.2 or 2.0 answers (a TPM 2.0 GetCapability; a
// TPM 1.2 answers it with its own tag). A TPM nobody started gets
// Startup(CLEAR). swtpm sockets are connected per command, so another process
// (tpm2-tools, a second glint) can use the same swtpm in between.
//
//	dev, err := tpm.Open("/dev/tpmrm0")
//	pcrs, err := dev.ReadPCRs(tpm.SHA256, []int{0, 1, 2, 3, 4, 7})
//	pcrs[4] = predictedNormalBoot             // seal to a future value
//	blob, err := dev.Seal(secret, tpm.PCRPolicy{Bank: tpm.SHA256, Values: pcrs}, nil)
//	secret, err = dev.Unseal(blob, nil)       // *PolicyError if a PCR moved
//
// # Sealing (TPM 2.0)
//
// The parent is the TCG standard ECC P-256 storage key (SRK template of the
// TCG Provisioning Guidance) under the owner hierarchy. It is derived from
// the owner seed; glint's set-up persists it at SRKHandle (0x81000001) so
// that sealing needs no owner authorisation once the owner hierarchy has
// one, and before that it is created per call (about 1 ms) and flushed. A
// persisted key is used only if it is a genuine primary of the owner
// hierarchy (checkSRK). A TPM2_Clear (new seed) makes every old blob fail to
// load with ErrCleared.
//
// The sealed object is a keyed-hash data object with fixedTPM|fixedParent,
// adminWithPolicy and no userWithAuth: only its policy opens it. The policy
// is PolicyPCR over the bank and PCRs of the PCRPolicy with the digest of
// the EXPECTED values, computed offline (TPM 2.0 Part 3, TPM2_PolicyPCR), so
// a secret can be sealed to predicted values the PCRs do not hold yet.
// With a PIN the policy adds PolicyAuthValue and the authValue is
// SHA-256(PIN) (what Heads does). Without a PIN the object is noDA: nothing
// is guessable, and power cuts or failed unseals never push the TPM towards
// lockout. With a PIN it is DA-protected: lockout is the brute-force
// protection (ConfigureLockout; DefaultMaxTries etc.). A policy failure
// (TPM_RC_POLICY_FAIL) is not a DA event.
//
// The secret crosses the bus encrypted both ways: TPM2_Create and
// TPM2_Unseal run in sessions salted with the SRK with AES-CFB parameter
// encryption, defeating a passive LPC/SPI sniffer.
//
// The blob is a versioned glint encoding (blob.go) holding the TPM2B_PUBLIC
// and TPM2B_PRIVATE, the bank and the PCR list; its parser is length-checked
// and fuzzed (FuzzParseSealedBlob).
//
// # Sealing (TPM 1.2)
//
// TPM_Seal under the SRK with a TPM_PCR_INFO_LONG whose digestAtRelease is
// the composite of the expected SHA-1 values (any locality), wrapped in the
// same versioned encoding. A PIN becomes the data authorisation SHA-1(PIN).
// The SRK secret is the TCG well-known one (20 zero bytes, "tpm takeown
// -z"); the owner secret is well-known until glint's set-up replaces it
// (owner.go); swtpmtest manufactures swtpm with both well-known.
//
// # Ownership, lockout, clock, identity
//
// owner.go: at set-up glint takes the TPM for the owner (owner and lockout
// authorisations derived from the owner's key, so code that runs after
// glint cannot undefine the rollback counter, reset the PIN lockout or clear
// the TPM), reads a TPM-unique Identity without secrets (bound into the
// signed manifest), reports the dictionary-attack state in words
// (LockoutStatus.Explain) and reads the TPM's clock (CheckRTC notices an RTC
// that jumped back since the last boot).
//
// # Other verbs
//
// NV indices (owner hierarchy, empty index auth, noDA; public data only)
// and monotonic counters (TPM 2.0 TPM_NT_COUNTER; TPM 1.2 TPM_CreateCounter
// found again by its label = the index). A new counter starts at the TPM's
// highest counter value ever, not zero. Quotes use a restricted ECDSA P-256
// AK derived as a primary from the owner seed (the same key every boot);
// VerifyQuote checks one without a TPM. LockPlatform sets a random platform
// auth on 2.0 (physical-presence lock on 1.2); Shutdown is the orderly
// TPM2_Shutdown(CLEAR) / TPM_SaveState.
//
// Every verb flushes the transient objects and sessions it creates, on error
// paths too: swtpm and /dev/tpm0 have no resource manager and swtpm has only
// three object slots.
//
// Errors are typed (see errors.go): a failed policy is *PolicyError, a wrong
// PIN is ErrAuthFail, dictionary-attack lockout is ErrLockout (*LockoutError
// with the recovery time), a cleared TPM is ErrCleared, a missing device is
// ErrNoTPM, and the rest is *ResponseError with the TPM code's name and
// meaning, so the boot menu can say what happened in words.
package tpm

import "io"

// Version is the TPM family that answered.
type Version int

const (
	Version12 Version = 12
	Version20 Version = 20
)

func (v Version) String() string {
	switch v {
	case Version12:
		return "TPM 1.2"
	case Version20:
		return "TPM 2.0"
	}
	return "unknown TPM"
}

// Transport carries one marshalled command to the TPM and returns its
// response. Implementations: device files and swtpm sockets.
type Transport interface {
	Send(command []byte) ([]byte, error)
	io.Closer
}

// PCRPolicy names the PCR values a sealed secret is bound to. Values may be
// the current ones or predicted ones (e.g. PCR 4 after "normal boot" is
// extended), which is how a secret is kept from unsealing in a recovery shell.
type PCRPolicy struct {
	Bank   Alg            // SHA256 on TPM 2.0 (default), SHA1 on TPM 1.2
	Values map[int][]byte // PCR index -> expected digest
	// Epoch, on TPM 2.0, also binds the policy to an NV counter: it holds
	// only while the counter reads at most Epoch.Value (epoch20.go). nil:
	// the PCR values alone.
	Epoch *Epoch
}

// NVSpace describes an NV index to define.
type NVSpace struct {
	Index uint32
	Size  int
	// Counter makes the index a monotonic counter (TPM 2.0 TPM_NT_COUNTER;
	// on TPM 1.2 a monotonic counter), ignoring Size.
	Counter bool
}

// AK is an attestation key loaded in the TPM for quoting.
type AK struct {
	// Public is what a verifier stores at enrolment: on TPM 2.0 the
	// TPMT_PUBLIC (the contents of a TPM2B_PUBLIC), on TPM 1.2 the AIK's
	// PKIX DER RSA public key. VerifyQuote takes either.
	Public []byte
	// blob12 is the TPM 1.2 AIK key blob (TPM_KEY12), loaded per quote.
	blob12 []byte
	// label selects one of several TPM 2.0 AKs (see CreateLabeledAK in
	// ek.go); nil is the default AK.
	label []byte
}

// Quote is a TPM-signed statement of PCR values and a caller's nonce.
type Quote struct {
	Attest    []byte         // TPMS_ATTEST as signed
	Signature []byte         // TPMT_SIGNATURE
	Bank      Alg            // bank the PCR values below come from
	PCRs      map[int][]byte // values read in the same call, for the verifier
}

// TPM is the set of verbs glint's boot flow uses. Both TPM 1.2 and TPM 2.0
// implement it; a verb one family cannot do returns ErrUnsupported.
type TPM interface {
	Version() Version
	// Banks lists the active PCR banks (TPM 1.2: SHA1 only).
	Banks() ([]Alg, error)
	ReadPCRs(bank Alg, pcrs []int) (map[int][]byte, error)
	// Extend hashes data with each active bank's algorithm and extends the
	// PCR with the results, as a measurement of data.
	Extend(pcr int, data []byte) error
	// Random returns n bytes from the TPM's RNG.
	Random(n int) ([]byte, error)

	// Seal binds secret to policy (and to pin if non-empty). The returned
	// blob is opaque, versioned, and useless on any other TPM.
	Seal(secret []byte, policy PCRPolicy, pin []byte) ([]byte, error)
	// Unseal returns the secret if the PCRs match and the pin is right.
	Unseal(blob []byte, pin []byte) ([]byte, error)

	NVDefine(space NVSpace) error
	NVUndefine(index uint32) error
	NVRead(index uint32) ([]byte, error)
	NVWrite(index uint32, data []byte) error
	// CounterIncrement adds one to a monotonic counter and returns the new value.
	CounterIncrement(index uint32) (uint64, error)
	CounterRead(index uint32) (uint64, error)

	// CreateAK makes a restricted signing key for quotes.
	CreateAK() (*AK, error)
	Quote(ak *AK, bank Alg, pcrs []int, nonce []byte) (*Quote, error)

	// Clear resets the TPM's owner hierarchy (all sealed secrets, NV indices
	// defined by the owner, counters). Platform permitting.
	Clear() error
	// LockPlatform sets a random platform-hierarchy authorisation so the
	// booted OS cannot clear the TPM or change platform NV (TPM 2.0).
	LockPlatform() error
	// Platform says who can still use the platform hierarchy (2.0) or
	// physical presence (1.2): open, locked by glint, locked before glint
	// by the firmware, or disabled.
	Platform() (PlatformStatus, error)
	// SetupMarks are the signs in the TPM that glint set this machine up
	// (its rollback counter at counterIndex, its storage key, an owner
	// authorisation).
	SetupMarks(counterIndex uint32) (*SetupMarks, error)
	// Shutdown tells the TPM the state is saved (orderly shutdown), so a
	// following reset does not count as a dictionary-attack event.
	Shutdown() error

	// ConfigureLockout sets the dictionary-attack parameters (TPM 2.0; see
	// DefaultMaxTries and friends). TPM 1.2 returns ErrUnsupported: its
	// lockout policy is fixed by the vendor.
	ConfigureLockout(maxTries, recoverySeconds, lockoutRecoverySeconds uint32) error
	// ResetLockout forgets failed authorisations (TPM 2.0 lockout hierarchy;
	// TPM 1.2 TPM_ResetLockValue with the owner secret).
	ResetLockout() error
	// Info reports vendor, banks and lockout state.
	Info() (*Info, error)
	// LockoutStatus is the dictionary-attack state, to say in words what
	// is going on and what ends it (LockoutStatus.Explain).
	LockoutStatus() (*LockoutStatus, error)
	// ReadClock reads the TPM's clock: TPM 2.0 Clock (powered time, never
	// goes back; CheckRTC compares it with the RTC across boots), TPM 1.2
	// ticks since power-on.
	ReadClock() (*ClockInfo, error)

	// Ownership (owner.go): glint's set-up of the TPM for its owner.
	//
	// PrepareOwnership persists the SRK (2.0) or takes ownership and allows
	// reading the SRK public key (1.2). Idempotent.
	PrepareOwnership() error
	// Identity is a TPM-unique value read without secrets
	// (ErrNotProvisioned before PrepareOwnership).
	Identity() (*Identity, error)
	// UseAuth gives this handle the owner/lockout authorisations for the
	// commands that need them (NVDefine, NVUndefine, ConfigureLockout,
	// ResetLockout, Clear, CreateAK).
	UseAuth(a HierarchyAuth)
	// SetHierarchyAuth changes the owner and lockout authorisations from
	// the ones this handle holds to next (and keeps next).
	SetHierarchyAuth(next HierarchyAuth) error

	Close() error
}

// Owner is implemented by TPMs that must be taken ownership of before glint
// can define NV space and seal (TPM 1.2). TPM 2.0 needs nothing: its owner
// hierarchy is usable from the start.
type Owner interface {
	TakeOwnership() error
}
