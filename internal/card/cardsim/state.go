package cardsim

import (
	"crypto"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"

	"github.com/glint-boot/glint/internal/card"
	"github.com/glint-boot/glint/internal/safefile"
)

// State is everything the card keeps across power cycles (what a real
// card keeps in EEPROM). It is saved as JSON when a path is set.
type State struct {
	Version      [2]byte // spec version in BCD: 03 04 or 02 01
	Manufacturer uint16
	Serial       uint32

	PW1, PW3, RC                []byte
	PW1Tries, PW3Tries, RCTries int
	PW1ValidForSeveral          bool

	Name, Login, URL string
	Lang, Sex        []byte

	Attrs      [3][]byte   // algorithm attributes C1-C3
	Keys       [3][]byte   // PKCS#8 private keys; nil = none
	KeyOrigin  [3]byte     // 0 none, 1 generated, 2 imported (DO DE)
	Fprs       [3][20]byte // C7-C9
	CAFprs     [3][20]byte // CA-CC
	Times      [3]uint32   // CE-D0
	SigCount   int
	PrivateDOs [4][]byte // 0101-0104
	Cert       []byte    // 7F21

	Terminated bool
}

// factory returns a freshly activated card's state for serial.
func factory(version [2]byte, manufacturer uint16, serial uint32) *State {
	return &State{
		Version: version, Manufacturer: manufacturer, Serial: serial,
		PW1: append([]byte(nil), card.DefaultPW1...), PW3: append([]byte(nil), card.DefaultPW3...),
		PW1Tries: 3, PW3Tries: 3, RCTries: 0,
		Attrs: [3][]byte{card.RSA2048.Bytes(), card.RSA2048.Bytes(), card.RSA2048.Bytes()},
	}
}

// maxStateFile caps the state file read back (keys and DOs: a few KiB).
const maxStateFile = 1 << 20

func loadState(path string) (*State, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) > maxStateFile {
		return nil, fmt.Errorf("card state %s: %d bytes is more than %d", path, len(b), maxStateFile)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("card state %s: %w", path, err)
	}
	for i, k := range s.Keys {
		if k == nil {
			continue
		}
		if _, err := x509.ParsePKCS8PrivateKey(k); err != nil {
			return nil, fmt.Errorf("card state %s: key %d: %w", path, i+1, err)
		}
	}
	return &s, nil
}

func (s *State) save(path string) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return safefile.Write(path, b, 0o600)
}

// key returns a slot's private key (*rsa.PrivateKey, *ecdsa.PrivateKey,
// ed25519.PrivateKey or *ecdh.PrivateKey), nil when the slot is empty.
func (s *State) key(slot int) (crypto.PrivateKey, error) {
	if s.Keys[slot] == nil {
		return nil, nil
	}
	return x509.ParsePKCS8PrivateKey(s.Keys[slot])
}
