package sealed

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/glint-boot/glint/internal/seal"
	"github.com/glint-boot/glint/internal/secret"
)

// The network-bound disk key (Vaultboot's attested disk encryption; the
// idea of clevis and tang, with the TPM as the proof): the LUKS keyslot's
// key is derived from two halves, the key sealed in this TPM to the disk
// PCRs, and a half the attestation server keeps and releases, encrypted to
// this TPM's EK for its AK, only after a trusted quote (package
// attest/server). Neither half alone opens the disk: a stolen server that
// cannot reach its attestation server stays locked, and so does one the
// administrator revoked or that boots anything but its approved firmware.
//
// The record says which server and device the key is bound to
// (Extra "attest.server", "attest.device"); the boot flow asks that server.

// Record fields of a network-bound disk key.
const (
	extraAttestServer = "attest.server"
	extraAttestDevice = "attest.device"
)

// NetworkDiskKey combines the two halves: HKDF-SHA256 (RFC 5869) over the
// sealed key and the server's half, with the device ID as context.
func NetworkDiskKey(sealedKey, serverHalf, deviceID []byte) ([]byte, error) {
	if len(sealedKey) < 16 || len(serverHalf) < 16 {
		return nil, errors.New("disk key halves must be at least 16 bytes each")
	}
	ikm := make([]byte, 0, len(sealedKey)+len(serverHalf))
	ikm = append(append(ikm, sealedKey...), serverHalf...)
	defer secret.Wipe(ikm)
	return hkdf.Key(sha256.New, ikm, []byte("glint network-bound disk key v1"), string(deviceID), 32)
}

// SealNetworkDisk is SealDisk for a network-bound key: the sealed key and
// serverHalf (from the attestation server, for device deviceID at server)
// together make the keyslot's key. Unattended machines (servers) use it
// with disk.unlock = unattended.
func (s *State) SealNetworkDisk(device string, passphrase []byte, name string, serverHalf, deviceID []byte, server string) (*seal.Record, error) {
	if len(serverHalf) < 16 || len(deviceID) != 32 || server == "" {
		return nil, errors.New("a network-bound disk key needs the server's half, the device ID and the server")
	}
	derive := func(sealedKey []byte) ([]byte, error) { return NetworkDiskKey(sealedKey, serverHalf, deviceID) }
	return s.sealDisk(device, passphrase, nil, name, derive, map[string]string{
		extraAttestServer: server, extraAttestDevice: hex.EncodeToString(deviceID),
	})
}

// NetworkBound says whether rec is a network-bound disk key, and for which
// server and device.
func NetworkBound(rec *seal.Record) (server string, deviceID []byte, ok bool, err error) {
	server = rec.Extra[extraAttestServer]
	if server == "" {
		return "", nil, false, nil
	}
	deviceID, err = hex.DecodeString(rec.Extra[extraAttestDevice])
	if err != nil || len(deviceID) != 32 {
		return "", nil, true, fmt.Errorf("the disk record's attestation device %q is malformed", rec.Extra[extraAttestDevice])
	}
	return server, deviceID, true, nil
}
