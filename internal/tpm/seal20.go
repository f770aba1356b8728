package tpm

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"

	"github.com/google/go-tpm/tpm2"
)

// maxSecret is MAX_SYM_DATA (TPM 2.0 Part 2, Table 80 / PC Client: 128), the
// largest sealed data object.
const maxSecret = 128

// srkTemplate is the TCG standard ECC P-256 storage key (TCG TPM v2.0
// Provisioning Guidance 1.0, 7.5.1). It is deterministic from the owner
// seed. At set-up glint persists it at SRKHandle (PrepareOwnership), so
// sealing and unsealing need no owner authorisation once the owner
// hierarchy has one; before that it is created on demand (the same key). A
// TPM clear (new seed) makes it, and everything sealed under it,
// unrecoverable — which is what clear means.
var srkTemplate = tpm2.ECCSRKTemplate

// pinAuth derives the object's authValue from a PIN: SHA-256(pin), as Heads
// does (tpmr.sh: "Auth values are the hex of sha256(passphrase)"), so a long
// passphrase still fits TPM_PT_MAX_AUTH and a short one is not zero-padded.
func pinAuth(pin []byte) []byte {
	if len(pin) == 0 {
		return nil
	}
	s := sha256.Sum256(pin)
	return s[:]
}

// checkPolicy validates a policy and returns its PCRs in ascending order.
func checkPolicy(policy PCRPolicy, v Version) (Alg, []int, error) {
	bank := policy.Bank
	if bank == 0 {
		bank = SHA256
		if v == Version12 {
			bank = SHA1
		}
	}
	if v == Version12 && policy.Epoch != nil {
		return 0, nil, fmt.Errorf("%w: TPM 1.2 has no policy sessions: a secret cannot be bound to an approval epoch", ErrUnsupported)
	}
	if v == Version12 && bank != SHA1 {
		return 0, nil, fmt.Errorf("%w: TPM 1.2 has only the sha1 bank, not %s", ErrUnsupported, bank)
	}
	h, err := bank.Hash()
	if err != nil {
		return 0, nil, err
	}
	if len(policy.Values) == 0 {
		return 0, nil, errors.New("seal: the PCR policy names no PCRs; refusing to seal a secret anyone could unseal")
	}
	pcrs := make([]int, 0, len(policy.Values))
	for p, val := range policy.Values {
		if p < 0 || p >= pcrCount {
			return 0, nil, fmt.Errorf("seal: PCR %d out of range 0..%d", p, pcrCount-1)
		}
		if len(val) != h.Size() {
			return 0, nil, fmt.Errorf("seal: value for PCR %d is %d bytes, a %s PCR holds %d", p, len(val), bank, h.Size())
		}
		pcrs = append(pcrs, p)
	}
	sort.Ints(pcrs)
	return bank, pcrs, nil
}

// pcrPolicyDigest computes the authPolicy of a sealed object offline: the
// PolicyPCR digest of the expected values (Part 3, 23.7: pcrDigest is the
// session-hash of the selected PCR values concatenated in selection order),
// then PolicyAuthValue when a PIN is part of the policy (Part 3, 23.18).
// Computing it rather than running a trial session is what lets a secret be
// sealed to predicted values the PCRs do not hold yet.
func pcrPolicyDigest(bank Alg, pcrs []int, values map[int][]byte, pin bool) ([]byte, tpm2.TPMLPCRSelection, error) {
	calc, selection, err := pcrPolicyCalc(bank, pcrs, values)
	if err != nil {
		return nil, selection, err
	}
	if pin {
		if err := (tpm2.PolicyAuthValue{}).Update(calc); err != nil {
			return nil, selection, err
		}
	}
	return calc.Hash().Digest, selection, nil
}

// pcrPolicyCalc is a policy calculator holding the PolicyPCR digest of the
// expected values, for callers that extend the policy further.
func pcrPolicyCalc(bank Alg, pcrs []int, values map[int][]byte) (*tpm2.PolicyCalculator, tpm2.TPMLPCRSelection, error) {
	sel, err := pcrSelect(pcrs)
	if err != nil {
		return nil, tpm2.TPMLPCRSelection{}, err
	}
	selection := tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: tpm2.TPMAlgID(bank), PCRSelect: sel}}}
	h := sha256.New()
	for _, p := range pcrs {
		h.Write(values[p])
	}
	calc, err := tpm2.NewPolicyCalculator(tpm2.TPMAlgSHA256)
	if err != nil {
		return nil, selection, err
	}
	if err := (tpm2.PolicyPCR{PcrDigest: tpm2.TPM2BDigest{Buffer: h.Sum(nil)}, Pcrs: selection}).Update(calc); err != nil {
		return nil, selection, err
	}
	return calc, selection, nil
}

// createSRK creates the storage primary; the caller must flush it.
func (d *tpm20) createSRK() (*tpm2.CreatePrimaryResponse, error) {
	rsp, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(d.auth.Owner)},
		InPublic:      tpm2.New2B(srkTemplate),
	}.Execute(d.t)
	if err != nil {
		return nil, hierarchyAuth("owner", wrap20("TPM2_CreatePrimary(storage key)", err))
	}
	return rsp, nil
}

func (d *tpm20) Seal(secret []byte, policy PCRPolicy, pin []byte) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(secret) == 0 || len(secret) > maxSecret {
		return nil, fmt.Errorf("seal: secret is %d bytes; a TPM 2.0 sealed object holds 1..%d", len(secret), maxSecret)
	}
	bank, pcrs, err := checkPolicy(policy, Version20)
	if err != nil {
		return nil, err
	}
	if policy.Epoch != nil {
		return nil, errors.New("seal: an approval epoch binds owner approvals: seal with SealAuthorized")
	}
	authPolicy, _, err := pcrPolicyDigest(bank, pcrs, policy.Values, len(pin) > 0)
	if err != nil {
		return nil, err
	}
	auth := pinAuth(pin)
	defer clear(auth)

	srkHandle, srkName, srkPub, release, err := d.srkForUse()
	if err != nil {
		return nil, err
	}
	defer release()

	template := tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgKeyedHash,
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{
			FixedTPM:    true,
			FixedParent: true,
			// No userWithAuth: the PCR policy is the only way in.
			// adminWithPolicy: no admin role by authValue either.
			AdminWithPolicy: true,
			// Without a PIN nothing here is guessable, and a power cut
			// during an unseal must never move the TPM towards lockout.
			// With a PIN, lockout is the brute-force protection.
			NoDA: len(pin) == 0,
		},
		AuthPolicy: tpm2.TPM2BDigest{Buffer: authPolicy},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgKeyedHash,
			&tpm2.TPMSKeyedHashParms{Scheme: tpm2.TPMTKeyedHashScheme{Scheme: tpm2.TPMAlgNull}}),
	}
	// The secret crosses the bus encrypted: a session salted with the SRK
	// (so only this TPM knows the session key) with parameter encryption
	// on the command's first parameter, inSensitive (Part 1, "Session-based encryption").
	rsp, err := tpm2.Create{
		ParentHandle: tpm2.AuthHandle{
			Handle: srkHandle,
			Name:   srkName,
			Auth: tpm2.HMAC(tpm2.TPMAlgSHA256, 16,
				tpm2.Salted(srkHandle, *srkPub),
				tpm2.AESEncryption(128, tpm2.EncryptIn)),
		},
		InSensitive: tpm2.TPM2BSensitiveCreate{Sensitive: &tpm2.TPMSSensitiveCreate{
			UserAuth: tpm2.TPM2BAuth{Buffer: auth},
			Data:     tpm2.NewTPMUSensitiveCreate(&tpm2.TPM2BSensitiveData{Buffer: secret}),
		}},
		InPublic: tpm2.New2B(template),
	}.Execute(d.t)
	if err != nil {
		return nil, wrap20("TPM2_Create(sealed object)", err)
	}
	b := &sealedBlob{Family: Version20, Bank: bank, PIN: len(pin) > 0, PCRs: pcrs,
		Parts: [][]byte{rsp.OutPublic.Bytes(), rsp.OutPrivate.Buffer}}
	return b.marshal()
}

func (d *tpm20) Unseal(blob []byte, pin []byte) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	b, err := parseSealedBlob(blob)
	if err != nil {
		return nil, err
	}
	if b.Family != Version20 {
		return nil, fmt.Errorf("unseal: the blob was sealed by a %s, this is a TPM 2.0", b.Family)
	}
	if b.PIN && len(pin) == 0 {
		return nil, fmt.Errorf("unseal: this secret needs its PIN: %w", ErrAuthFail)
	}
	if !b.PIN && len(pin) > 0 {
		return nil, errors.New("unseal: a PIN was given but this secret was sealed without one")
	}
	sel, err := pcrSelect(b.PCRs)
	if err != nil {
		return nil, err
	}
	auth := pinAuth(pin)
	defer clear(auth)

	srkHandle, srkName, srkPub, release, err := d.srkForUse()
	if err != nil {
		return nil, err
	}
	defer release()
	loaded, err := tpm2.Load{
		ParentHandle: tpm2.AuthHandle{Handle: srkHandle, Name: srkName, Auth: tpm2.PasswordAuth(nil)},
		InPrivate:    tpm2.TPM2BPrivate{Buffer: b.Parts[1]},
		InPublic:     tpm2.BytesAs2B[tpm2.TPMTPublic](b.Parts[0]),
	}.Execute(d.t)
	if err != nil {
		// The private part's integrity HMAC is keyed from the parent's
		// seed (Part 1, "Integrity"); a new seed (TPM2_Clear) or another TPM
		// makes it fail.
		if code, ok := rc20(err); ok && canonical(code) == rcIntegrity {
			return nil, fmt.Errorf("unseal: %w (%v)", ErrCleared, wrap20("TPM2_Load", err))
		}
		return nil, wrap20("TPM2_Load(sealed object)", err)
	}
	defer d.flush(loaded.ObjectHandle)

	// The secret comes back encrypted on the bus (EncryptOut), under a
	// session key only this TPM can derive (salted with the SRK).
	sess, closeSess, err := tpm2.PolicySession(d.t, tpm2.TPMAlgSHA256, 16,
		tpm2.Salted(srkHandle, *srkPub),
		tpm2.AESEncryption(128, tpm2.EncryptOut),
		tpm2.Auth(auth))
	if err != nil {
		return nil, wrap20("TPM2_StartAuthSession", err)
	}
	defer closeSess()
	selection := tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: tpm2.TPMAlgID(b.Bank), PCRSelect: sel}}}
	// An empty pcrDigest makes the TPM use the current values; a mismatch
	// then shows as TPM_RC_POLICY_FAIL at Unseal (Part 3, 23.7).
	if _, err := (tpm2.PolicyPCR{PolicySession: sess.Handle(), Pcrs: selection}).Execute(d.t); err != nil {
		return nil, wrap20("TPM2_PolicyPCR", err)
	}
	if b.PIN {
		if _, err := (tpm2.PolicyAuthValue{PolicySession: sess.Handle()}).Execute(d.t); err != nil {
			return nil, wrap20("TPM2_PolicyAuthValue", err)
		}
	}
	rsp, err := tpm2.Unseal{ItemHandle: tpm2.AuthHandle{Handle: loaded.ObjectHandle, Name: loaded.Name, Auth: sess}}.Execute(d.t)
	if err != nil {
		if code, ok := rc20(err); ok {
			switch canonical(code) {
			case rcPolicyFail, rcPCRChanged:
				return nil, &PolicyError{Bank: b.Bank, PCRs: b.PCRs, Err: wrap20("TPM2_Unseal", err)}
			case rcLockout:
				return nil, d.lockoutError(wrap20("TPM2_Unseal", err))
			}
		}
		return nil, wrap20("TPM2_Unseal", err)
	}
	return rsp.OutData.Buffer, nil
}

// lockoutError fills in the recovery interval if the TPM reports it.
func (d *tpm20) lockoutError(err error) error {
	le := &LockoutError{Err: err}
	var inner *LockoutError
	if errors.As(err, &inner) {
		le.Err = inner.Err
	}
	if s, perr := d.property(tpm2.TPMPTLockoutInterval); perr == nil {
		le.Recovery = secondsDuration(s)
	}
	return le
}
