package tpm

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// An AK is kept between runs by the attestation client: on TPM 2.0 only to
// know which key was enrolled (the key itself is re-derived from the owner
// seed), on TPM 1.2 because the AIK's key blob is the only copy of the key.
//
// Encoding (all lengths big-endian u16, each checked against what remains
// and its cap before use):
//
//	"GLAK" | version u8 (1) | family u8 (12 or 20)
//	| len label | label | len public | public | len blob12 | blob12
const (
	akMagic   = "GLAK"
	akVersion = 1
	// Caps: a label names a server (a URL); a public area is at most
	// maxPublicSize; a TPM_KEY12 for RSA-2048 is about 600 bytes.
	maxAKLabel  = 512
	maxAKBlob12 = 2048
)

// AKParseError says why stored AK bytes were refused.
type AKParseError struct {
	Offset int
	Field  string
	Reason string
}

func (e *AKParseError) Error() string {
	return fmt.Sprintf("stored attestation key: %s at byte %d: %s", e.Field, e.Offset, e.Reason)
}

// Version reports the TPM family the AK was made on.
func (ak *AK) Version() Version {
	if ak.blob12 != nil {
		return Version12
	}
	return Version20
}

// MarshalBinary encodes the AK for ParseAK. It holds no secret: a TPM 1.2
// key blob is encrypted under the TPM's SRK.
func (ak *AK) MarshalBinary() ([]byte, error) {
	if len(ak.label) > maxAKLabel || len(ak.Public) > maxPublicSize || len(ak.blob12) > maxAKBlob12 {
		return nil, errors.New("attestation key fields exceed the stored format's limits")
	}
	b := append([]byte(akMagic), akVersion, byte(ak.Version()))
	for _, f := range [][]byte{ak.label, ak.Public, ak.blob12} {
		b = binary.BigEndian.AppendUint16(b, uint16(len(f)))
		b = append(b, f...)
	}
	return b, nil
}

// ParseAK decodes MarshalBinary's output. The bytes are untrusted (a file
// anyone with root on the OS could replace); the worst a crafted file can
// do is name a key the TPM then refuses to load or quote with.
func ParseAK(b []byte) (*AK, error) {
	if len(b) < 6 || string(b[:4]) != akMagic {
		return nil, &AKParseError{Field: "magic", Reason: "not a glint attestation key"}
	}
	if b[4] != akVersion {
		return nil, &AKParseError{Offset: 4, Field: "version", Reason: fmt.Sprintf("version %d, this glint reads %d", b[4], akVersion)}
	}
	family := Version(b[5])
	if family != Version12 && family != Version20 {
		return nil, &AKParseError{Offset: 5, Field: "family", Reason: fmt.Sprintf("unknown TPM family %d", b[5])}
	}
	off := 6
	var fields [3][]byte
	names := [3]string{"label", "public", "blob12"}
	caps := [3]int{maxAKLabel, maxPublicSize, maxAKBlob12}
	for i := range fields {
		if len(b)-off < 2 {
			return nil, &AKParseError{Offset: off, Field: names[i], Reason: "truncated length"}
		}
		n := int(binary.BigEndian.Uint16(b[off:]))
		off += 2
		if n > caps[i] {
			return nil, &AKParseError{Offset: off - 2, Field: names[i], Reason: fmt.Sprintf("%d bytes, limit %d", n, caps[i])}
		}
		if n > len(b)-off {
			return nil, &AKParseError{Offset: off - 2, Field: names[i], Reason: fmt.Sprintf("%d bytes declared, %d remain", n, len(b)-off)}
		}
		fields[i] = append([]byte(nil), b[off:off+n]...)
		off += n
	}
	if off != len(b) {
		return nil, &AKParseError{Offset: off, Field: "end", Reason: fmt.Sprintf("%d bytes of trailing data", len(b)-off)}
	}
	if len(fields[1]) == 0 {
		return nil, &AKParseError{Offset: 6, Field: "public", Reason: "empty public key"}
	}
	ak := &AK{Public: fields[1]}
	if len(fields[0]) > 0 {
		ak.label = fields[0]
	}
	switch family {
	case Version12:
		if len(fields[2]) == 0 {
			return nil, &AKParseError{Offset: off, Field: "blob12", Reason: "a TPM 1.2 key needs its key blob"}
		}
		ak.blob12 = fields[2]
	case Version20:
		if len(fields[2]) != 0 {
			return nil, &AKParseError{Offset: off, Field: "blob12", Reason: "a TPM 2.0 key has no key blob"}
		}
	}
	return ak, nil
}
