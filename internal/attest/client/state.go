package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/glint-boot/glint/internal/attest/settings"
	"github.com/glint-boot/glint/internal/safefile"
	"github.com/glint-boot/glint/internal/tpm"
)

// DefaultStatePath is where glint attest enroll keeps what report needs.
// In the payload the same state comes from the owner configuration.
const DefaultStatePath = "/var/lib/glint/attest.json"

// maxStateSize bounds the state file (an AK blob and a URL: ~2 KiB).
const maxStateSize = 64 << 10

// State is an enrolment: which server, how to trust it, and the AK. It
// holds no secret (a TPM 1.2 AK blob is encrypted under the TPM's SRK),
// but it is written 0600 and atomically.
type State struct {
	Server   string `json:"server"`
	Pin      string `json:"pin,omitempty"`
	CAFile   string `json:"ca_file,omitempty"`
	DeviceID []byte `json:"device_id"`
	TPM      int    `json:"tpm"`
	AK       []byte `json:"ak"` // tpm.AK.MarshalBinary
}

// Marshal encodes the state as JSON.
func (s *State) Marshal() []byte {
	b, _ := json.MarshalIndent(s, "", "  ")
	return append(b, '\n')
}

// ParseState reads a state file's bytes (untrusted: anyone with root on
// the OS can write it; the worst it can do is name a wrong server or key).
func ParseState(untrusted []byte) (*State, error) {
	if len(untrusted) > maxStateSize {
		return nil, fmt.Errorf("attestation state: %d bytes, limit %d", len(untrusted), maxStateSize)
	}
	var s State
	if err := json.Unmarshal(untrusted, &s); err != nil {
		return nil, fmt.Errorf("attestation state: %w", err)
	}
	if s.Server == "" || len(s.DeviceID) != 32 || (s.TPM != 12 && s.TPM != 20) {
		return nil, errors.New("attestation state: server, device_id or tpm missing or malformed; enrol again (glint attest enroll)")
	}
	if _, err := tpm.ParseAK(s.AK); err != nil {
		return nil, fmt.Errorf("attestation state: %w", err)
	}
	if s.Pin != "" {
		if _, err := settings.ParsePin(s.Pin); err != nil {
			return nil, fmt.Errorf("attestation state: %w", err)
		}
	}
	return &s, nil
}

// LoadState reads the state file at path.
func LoadState(path string) (*State, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s does not exist: this machine is not enrolled (glint attest enroll --server URL)", path)
		}
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxStateSize+1))
	if err != nil {
		return nil, err
	}
	st, err := ParseState(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return st, nil
}

// Save writes the state atomically, readable by root only.
func (s *State) Save(path string) error {
	if err := os.MkdirAll(dirOf(path), 0o700); err != nil {
		return err
	}
	return safefile.Write(path, s.Marshal(), 0o600)
}

func dirOf(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			if i == 0 {
				return "/"
			}
			return p[:i]
		}
	}
	return "."
}
