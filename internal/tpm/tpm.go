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
// and detects whether a TPM 1.2 or 2.0 answers.
//
// Errors are typed (see errors.go): a failed policy is *PolicyError, a wrong
// PIN is ErrAuthFail, dictionary-attack lockout is ErrLockout, so the boot
// menu can say what happened in words.
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

// Alg is a TCG hash algorithm identifier (TCG Algorithm Registry).
type Alg uint16

const (
	SHA1   Alg = 0x0004
	SHA256 Alg = 0x000B
	SHA384 Alg = 0x000C
	SHA512 Alg = 0x000D
)

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
	// Public is the key's public area in the TPM's own encoding
	// (TPM2B_PUBLIC on TPM 2.0), what a verifier stores at enrolment.
	Public []byte
	handle uint32
	name   []byte
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
	// Shutdown tells the TPM the state is saved (orderly shutdown), so a
	// following reset does not count as a dictionary-attack event.
	Shutdown() error

	Close() error
}
