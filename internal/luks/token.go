package luks

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

const tpm2TokenType = "systemd-tpm2"

// TPM2Token is what systemd-cryptenroll --tpm2-device stores in a LUKS2
// token (systemd src/shared/tpm2-util.c, tpm2_make_luks2_json). glint only
// reads it: to tell the owner the volume has a second TPM-bound unlock path,
// which PCRs it trusts, and to keep its keyslot out of glint's hands.
type TPM2Token struct {
	PCRs       []int  `json:"pcrs"`                  // "tpm2-pcrs": PCRs the policy binds to
	PCRBank    string `json:"pcr_bank,omitempty"`    // "tpm2-pcr-bank": e.g. "sha256"
	PrimaryAlg string `json:"primary_alg,omitempty"` // "tpm2-primary-alg": "ecc" or "rsa"
	PolicyHash string `json:"policy_hash,omitempty"` // "tpm2-policy-hash", hex
	PIN        bool   `json:"pin"`                   // "tpm2-pin": a PIN is needed as well
	PCRLock    bool   `json:"pcrlock,omitempty"`     // "tpm2_pcrlock": bound to a systemd-pcrlock policy
	// PubkeyPCRs are PCRs bound through a signed policy ("tpm2-pubkey-pcrs").
	PubkeyPCRs []int `json:"pubkey_pcrs,omitempty"`
	BlobSize   int   `json:"blob_size"` // decoded size of "tpm2-blob" (the sealed object)
}

type jsonTPM2Token struct {
	Blob       *string `json:"tpm2-blob"`
	PCRs       []int   `json:"tpm2-pcrs"`
	PCRBank    string  `json:"tpm2-pcr-bank"`
	PrimaryAlg string  `json:"tpm2-primary-alg"`
	PolicyHash string  `json:"tpm2-policy-hash"`
	PIN        bool    `json:"tpm2-pin"`
	PCRLock    bool    `json:"tpm2_pcrlock"`
	PubkeyPCRs []int   `json:"tpm2-pubkey-pcrs"`
}

func parseTPM2Token(raw json.RawMessage) (*TPM2Token, error) {
	var j jsonTPM2Token
	if err := json.Unmarshal(raw, &j); err != nil {
		return nil, fmt.Errorf("systemd-tpm2 token: %w", err)
	}
	if j.Blob == nil {
		return nil, fmt.Errorf("systemd-tpm2 token has no tpm2-blob")
	}
	if base64.StdEncoding.DecodedLen(len(*j.Blob)) > maxTokenBlob {
		return nil, fmt.Errorf("systemd-tpm2 token blob is %d bytes of base64 (cap %d decoded)", len(*j.Blob), maxTokenBlob)
	}
	blob, err := base64.StdEncoding.DecodeString(*j.Blob)
	if err != nil {
		return nil, fmt.Errorf("systemd-tpm2 token: tpm2-blob: %w", err)
	}
	pcrs, err := checkPCRs(j.PCRs)
	if err != nil {
		return nil, fmt.Errorf("systemd-tpm2 token: tpm2-pcrs: %w", err)
	}
	ppcrs, err := checkPCRs(j.PubkeyPCRs)
	if err != nil {
		return nil, fmt.Errorf("systemd-tpm2 token: tpm2-pubkey-pcrs: %w", err)
	}
	if j.PolicyHash != "" {
		if len(j.PolicyHash) > 128 {
			return nil, fmt.Errorf("systemd-tpm2 token: tpm2-policy-hash is %d characters", len(j.PolicyHash))
		}
		if _, err := hex.DecodeString(j.PolicyHash); err != nil {
			return nil, fmt.Errorf("systemd-tpm2 token: tpm2-policy-hash: %w", err)
		}
	}
	if len(j.PCRBank) > 32 || len(j.PrimaryAlg) > 32 {
		return nil, fmt.Errorf("systemd-tpm2 token: algorithm name too long")
	}
	return &TPM2Token{
		PCRs: pcrs, PCRBank: j.PCRBank, PrimaryAlg: j.PrimaryAlg,
		PolicyHash: strings.ToLower(j.PolicyHash), PIN: j.PIN, PCRLock: j.PCRLock,
		PubkeyPCRs: ppcrs, BlobSize: len(blob),
	}, nil
}

// checkPCRs accepts PCR indices 0..23 (TCG PC Client PTP: 24 PCRs), sorted
// and de-duplicated.
func checkPCRs(in []int) ([]int, error) {
	if len(in) > 24 {
		return nil, fmt.Errorf("%d PCRs listed", len(in))
	}
	seen := map[int]bool{}
	out := []int{}
	for _, p := range in {
		if p < 0 || p > 23 {
			return nil, fmt.Errorf("PCR %d out of range 0..23", p)
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	sort.Ints(out)
	return out, nil
}

// Describe says in one line what the token is, for owner-facing messages,
// e.g. `systemd-cryptenroll TPM2 token 0 on keyslot 2, bound to sha256 PCRs 7`.
func (t Token) Describe() string {
	slots := joinInts(t.Keyslots)
	if slots == "" {
		slots = "no keyslot"
	} else {
		slots = "keyslot " + slots
	}
	if t.TPM2 == nil {
		return fmt.Sprintf("%s token %d on %s", sanitize(t.Type), t.ID, slots)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "systemd-cryptenroll TPM2 token %d on %s", t.ID, slots)
	switch {
	case len(t.TPM2.PCRs) > 0:
		fmt.Fprintf(&b, ", bound to %s PCRs %s", sanitize(t.TPM2.PCRBank), joinInts(t.TPM2.PCRs))
	default:
		b.WriteString(", bound to no PCRs")
	}
	if len(t.TPM2.PubkeyPCRs) > 0 {
		fmt.Fprintf(&b, " and signed policies for PCRs %s", joinInts(t.TPM2.PubkeyPCRs))
	}
	if t.TPM2.PCRLock {
		b.WriteString(" and a systemd-pcrlock policy")
	}
	if t.TPM2.PIN {
		b.WriteString(", with a PIN")
	}
	return b.String()
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}

// sanitize makes an untrusted header string safe to print on a console:
// control characters become '?', length is capped.
func sanitize(s string) string {
	const max = 64
	var b strings.Builder
	for i, r := range s {
		if i >= max {
			b.WriteString("...")
			break
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0xfffd {
			b.WriteByte('?')
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
