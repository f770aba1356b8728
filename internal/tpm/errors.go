package tpm

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	legacy "github.com/google/go-tpm/tpm"
	"github.com/google/go-tpm/tpm2"
)

// Errors a caller can act on. Test with errors.Is / errors.As; every error
// this package returns wraps one of these or is a *ResponseError.
var (
	// ErrUnsupported: the TPM family cannot do this verb (e.g. LockPlatform
	// on TPM 1.2). The wrapping message says which verb and why.
	ErrUnsupported = errors.New("not supported by this TPM")

	// ErrAuthFail: the PIN (authorisation value) was wrong. On a
	// DA-protected object each failure counts towards lockout.
	ErrAuthFail = errors.New("wrong PIN: the TPM refused the authorisation value")

	// ErrLockout: the TPM refuses DA-protected authorisations until its
	// recovery time passes. errors.As to *LockoutError for the time.
	ErrLockout = errors.New("the TPM is in dictionary-attack lockout after too many wrong PINs")

	// ErrOwnerAuth: the command needs the TPM owner's (or lockout)
	// authorisation and was not given the right one (*HierarchyAuthError).
	ErrOwnerAuth = errors.New("the TPM owner's authorisation is required")

	// ErrNotProvisioned: glint's set-up of this TPM (persistent storage
	// key, owner authorisations) has not been done.
	ErrNotProvisioned = errors.New("the TPM is not set up for glint")

	// ErrNoTPM: nothing answers at the given device or socket.
	ErrNoTPM = errors.New("no TPM found")

	// ErrNotDefined: an NV index (e.g. the rollback counter) does not exist:
	// never defined on this TPM, or removed when the TPM was cleared.
	ErrNotDefined = errors.New("NV index not defined")

	// ErrCleared: a sealed blob no longer loads because the key it was
	// sealed under is gone — the TPM was cleared (new storage seed) or the
	// blob was made on another TPM. The secret must be sealed again.
	ErrCleared = errors.New("the sealed secret's parent key is gone: the TPM was cleared since sealing (or this blob is from another TPM); seal the secret again")
)

// LockoutError is ErrLockout with what the TPM says about recovery.
type LockoutError struct {
	// Recovery is how long one failure takes to be forgotten
	// (TPM_PT_LOCKOUT_INTERVAL); zero if unknown.
	Recovery time.Duration
	Err      error // the TPM's response
}

func (e *LockoutError) Error() string {
	msg := ErrLockout.Error()
	if e.Recovery > 0 {
		msg += fmt.Sprintf("; one attempt is restored every %s (or clear the lockout with the lockout authorisation)", e.Recovery)
	}
	return msg
}

func (e *LockoutError) Is(target error) bool { return target == ErrLockout }
func (e *LockoutError) Unwrap() error        { return e.Err }

// PolicyError: the PCRs no longer hold the values the secret was sealed to.
// It deliberately does not say which PCR differs — the TPM does not tell;
// package seal compares the stored sealed-to values with the current ones
// and names them.
type PolicyError struct {
	Bank Alg
	PCRs []int // the PCRs the secret was sealed to
	Err  error // the TPM's response
}

func (e *PolicyError) Error() string {
	var re *ResponseError
	if errors.Is(e.Err, ErrEpochPassed) || errors.As(e.Err, &re) && re.Command == "TPM2_PolicyNV" {
		return fmt.Sprintf("the approval epoch this secret (%s PCRs %s) was released under has passed: %v", e.Bank, joinInts(e.PCRs), e.Err)
	}
	return fmt.Sprintf("the PCR values this secret was sealed to (%s PCRs %s) no longer match the TPM's current values: something measured into them changed since sealing",
		e.Bank, joinInts(e.PCRs))
}

func (e *PolicyError) Unwrap() error { return e.Err }

// ResponseError is any other TPM failure: the command, its response code and
// the code's name and meaning from the specification.
type ResponseError struct {
	Command string // e.g. "TPM2_Unseal", "TPM_Seal"
	Code    uint32
	Text    string // e.g. "TPM_RC_POLICY_FAIL (session 1): a policy check failed"
}

func (e *ResponseError) Error() string {
	return fmt.Sprintf("%s failed: %s (response code 0x%x)", e.Command, e.Text, e.Code)
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

// TPM 2.0 response codes (Part 2, 6.6) this package acts on, in canonical
// form (format-1 codes without their handle/parameter/session number).
const (
	rcInitialize = 0x100
	rcNVUninit   = 0x14A // TPM_RC_NV_UNINITIALIZED
	rcPCRChanged = 0x128
	rcAuthFail   = 0x08E // TPM_RC_AUTH_FAIL (format 1)
	rcBadAuth    = 0x0A2 // TPM_RC_BAD_AUTH
	rcPolicyFail = 0x09D // TPM_RC_POLICY_FAIL
	rcIntegrity  = 0x09F // TPM_RC_INTEGRITY
	rcHandle     = 0x08B // TPM_RC_HANDLE
	rcLockout    = 0x921 // TPM_RC_LOCKOUT (warning)
	rcFmt1       = 0x080
)

// canonical strips the handle/parameter/session number from a format-1 code
// (Part 2, 6.6.3: bit 7 set, error number in bits 0-5).
func canonical(code uint32) uint32 {
	if code&rcFmt1 != 0 {
		return code & 0xBF
	}
	return code
}

// rc20 returns the TPM 2.0 response code inside err, if there is one.
func rc20(err error) (uint32, bool) {
	var rc tpm2.TPMRC
	if errors.As(err, &rc) {
		return uint32(rc), true
	}
	return 0, false
}

// wrap20 turns an error from a TPM 2.0 command into this package's typed
// errors. Transport errors pass through with the command's name.
func wrap20(command string, err error) error {
	if err == nil {
		return nil
	}
	code, ok := rc20(err)
	if !ok {
		return fmt.Errorf("%s: %w", command, err)
	}
	re := &ResponseError{Command: command, Code: code, Text: tpm2.TPMRC(code).Error()}
	switch canonical(code) {
	case rcAuthFail, rcBadAuth:
		return fmt.Errorf("%w (%v)", ErrAuthFail, re)
	case rcLockout:
		return &LockoutError{Err: re}
	}
	return re
}

// TPM 1.2 return codes (TPM Main Part 2, 16) this package acts on.
const (
	rc12AuthFail      = 0x01
	rc12BadIndex      = 0x02
	rc12BadParameter  = 0x03
	rc12Fail          = 0x09
	rc12BadOrdinal    = 0x0A
	rc12NoSRK         = 0x12
	rc12NotSealedBlob = 0x13
	rc12WrongPCRVal   = 0x18
	rc12Auth2Fail     = 0x1D
	rc12BadTag        = 0x1E
	rc12InvalidPost   = 0x26
	rc12BadCounter    = 0x45
	rc12DefendLock    = 0x803 // TPM_DEFEND_LOCK_RUNNING (non-fatal)
)

var names12 = map[uint32]string{
	rc12AuthFail: "TPM_AUTHFAIL", rc12BadIndex: "TPM_BADINDEX", rc12BadParameter: "TPM_BAD_PARAMETER",
	rc12Fail: "TPM_FAIL", rc12BadOrdinal: "TPM_BAD_ORDINAL", rc12NoSRK: "TPM_NOSRK",
	rc12NotSealedBlob: "TPM_NOTSEALED_BLOB", rc12WrongPCRVal: "TPM_WRONGPCRVAL", rc12Auth2Fail: "TPM_AUTH2FAIL",
	rc12BadTag: "TPM_BADTAG", rc12InvalidPost: "TPM_INVALID_POSTINIT", rc12BadCounter: "TPM_BAD_COUNTER",
	rc12DefendLock: "TPM_DEFEND_LOCK_RUNNING",
	0x11:           "TPM_NOSPACE", 0x14: "TPM_OWNER_SET", 0x0D: "TPM_KEYNOTFOUND", 0x0C: "TPM_INVALID_KEYHANDLE",
	0x02E: "TPM_NOT_FULLWRITE", 0x3B: "TPM_AREA_LOCKED", 0x3D: "TPM_READ_ONLY", 0x0B: "TPM_INSTALL_DISABLED",
	0x06: "TPM_DEACTIVATED", 0x07: "TPM_DISABLED", 0x43: "TPM_MAXNVWRITES", 0x4A: "TPM_NOOPERATOR",
	0x22: "TPM_INVALID_AUTHHANDLE", 0x3C: "TPM_BAD_LOCALITY",
}

// rc12 finds the TPM 1.2 return code inside an error from the legacy go-tpm
// package, whose error type is unexported (a uint32 named tpmError).
func rc12(err error) (uint32, bool) {
	for e := err; e != nil; e = errors.Unwrap(e) {
		v := reflect.ValueOf(e)
		if v.Kind() == reflect.Uint32 && v.Type().PkgPath() == reflect.TypeOf(legacy.Digest{}).PkgPath() {
			return uint32(v.Uint()), true
		}
		if re, ok := e.(*ResponseError); ok {
			return re.Code, true
		}
	}
	return 0, false
}

func response12(command string, code uint32, cause error) *ResponseError {
	name, ok := names12[code]
	if !ok {
		name = fmt.Sprintf("TPM 1.2 error %d", code)
	}
	text := name
	if cause != nil {
		text += ": " + strings.TrimPrefix(cause.Error(), "tpm: ")
	}
	return &ResponseError{Command: command, Code: code, Text: text}
}

// wrap12 is wrap20 for TPM 1.2.
func wrap12(command string, err error) error {
	if err == nil {
		return nil
	}
	code, ok := rc12(err)
	if !ok {
		return fmt.Errorf("%s: %w", command, err)
	}
	var re *ResponseError
	if !errors.As(err, &re) {
		re = response12(command, code, err)
	}
	switch code {
	case rc12AuthFail, rc12Auth2Fail:
		return fmt.Errorf("%w (%v)", ErrAuthFail, re)
	case rc12DefendLock:
		return &LockoutError{Err: re}
	}
	return re
}

// rcError turns a raw TPM 2.0 response code into the error go-tpm would give.
func rcError(code uint32) error { return tpm2.TPMRC(code) }

// hierarchyAuth rewords an authorisation failure on the owner or lockout
// hierarchy: it is not a wrong PIN, the command needs the TPM owner's
// authorisation (which glint sets at set-up, derived from the owner key;
// see owner.go) and this handle was not given the right one.
func hierarchyAuth(hierarchy string, err error) error {
	if errors.Is(err, ErrAuthFail) {
		return &HierarchyAuthError{Hierarchy: hierarchy, Err: err}
	}
	return err
}

// lockoutHierarchy is hierarchyAuth for the TPM 2.0 lockout hierarchy,
// which, once a wrong lockout authorisation was tried, answers
// TPM_RC_LOCKOUT until its recovery (a TPM reset with glint's parameters).
func lockoutHierarchy(err error) error {
	if errors.Is(err, ErrLockout) {
		return &HierarchyAuthError{Hierarchy: "lockout", Blocked: true, Err: err}
	}
	return hierarchyAuth("lockout", err)
}

// HierarchyAuthError: a command on the owner or lockout hierarchy was
// refused for its authorisation.
type HierarchyAuthError struct {
	Hierarchy string // "owner" or "lockout"
	// Blocked: the lockout hierarchy refuses every attempt for now, because
	// a wrong lockout authorisation was tried since this power-on.
	Blocked bool
	Err     error
}

func (e *HierarchyAuthError) Error() string {
	if e.Blocked {
		return fmt.Sprintf("the TPM's lockout authorisation is blocked: a wrong one was tried since the machine was switched on (by glint with a wrong owner key, or by code that ran after glint). Switch the machine off and on and do this in glint's menu before anything else boots: %v", e.Err)
	}
	return fmt.Sprintf("the TPM refused the %s authorisation: this needs the TPM owner (glint sets the owner and lockout authorisations at set-up, derived from your owner key; authenticate as the owner in glint's menu). If the TPM was set up by another tool, clear it from glint's menu (TPM reset) or the firmware setup: %v", e.Hierarchy, e.Err)
}

func (e *HierarchyAuthError) Is(target error) bool { return target == ErrOwnerAuth }
func (e *HierarchyAuthError) Unwrap() error        { return e.Err }
