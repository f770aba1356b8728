package tpm

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A sealed blob is what Seal returns and Unseal takes back. It is stored on
// disk (e.g. /boot/glint/) and so is untrusted input to Unseal. Layout,
// all integers big-endian:
//
//	magic    "GLSB" (4)
//	version  u8 = 1
//	family   u8: 20 (TPM 2.0) or 12 (TPM 1.2)
//	bank     u16: TCG algorithm ID of the PCR bank in the policy
//	flags    u8: bit 0 = a PIN is part of the policy
//	npcrs    u8, then npcrs PCR indices u8, strictly ascending, each < 24
//	nparts   u8: 2 on TPM 2.0 (TPM2B_PUBLIC and TPM2B_PRIVATE contents),
//	         1 on TPM 1.2 (TPM_STORED_DATA12)
//	parts    nparts times: u16 length, then that many bytes
//
// Nothing after the last part. The TPM checks the parts' integrity itself
// (TPM 2.0 Part 1, "Integrity"; TPM 1.2 TPM_Unseal); this encoding only has to be
// parsed without trusting its lengths.

const (
	blobMagic   = "GLSB"
	blobVersion = 1
	flagPIN     = 1 << 0

	// maxBlobPart bounds one TPM structure: TPM2B_PUBLIC and TPM2B_PRIVATE
	// of a keyed-hash object are a few hundred bytes, TPM_STORED_DATA12
	// with PCR info about 300; 2048 leaves room and stops a crafted length.
	maxBlobPart = 2048
	maxBlobSize = 4 + 1 + 1 + 2 + 1 + 1 + pcrCount + 1 + 2*(2+maxBlobPart)
)

// sealedBlob is the parsed form of a sealed blob.
type sealedBlob struct {
	Family Version
	Bank   Alg
	PIN    bool
	PCRs   []int
	Parts  [][]byte
}

// ParseError says where and why a sealed blob did not parse.
type ParseError struct {
	Offset int64
	Field  string
	Err    error
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("sealed blob is damaged or not a glint sealed blob: %s at byte %d: %v", e.Field, e.Offset, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

var errShort = errors.New("ends early")

func (b *sealedBlob) marshal() ([]byte, error) {
	if len(b.PCRs) > pcrCount || len(b.Parts) > 255 {
		return nil, errors.New("sealed blob: too many PCRs or parts")
	}
	out := []byte(blobMagic)
	out = append(out, blobVersion, byte(b.Family))
	out = binary.BigEndian.AppendUint16(out, uint16(b.Bank))
	var flags byte
	if b.PIN {
		flags |= flagPIN
	}
	out = append(out, flags, byte(len(b.PCRs)))
	for _, p := range b.PCRs {
		out = append(out, byte(p))
	}
	out = append(out, byte(len(b.Parts)))
	for _, p := range b.Parts {
		if len(p) > maxBlobPart {
			return nil, fmt.Errorf("sealed blob: a TPM structure of %d bytes exceeds %d", len(p), maxBlobPart)
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(p)))
		out = append(out, p...)
	}
	return out, nil
}

// parseSealedBlob parses untrusted bytes; every length is checked against
// what remains and against maxBlobPart before anything is allocated.
func parseSealedBlob(untrusted []byte) (*sealedBlob, error) {
	off := 0
	fail := func(field string, err error) (*sealedBlob, error) {
		return nil, &ParseError{Offset: int64(off), Field: field, Err: err}
	}
	if len(untrusted) > maxBlobSize {
		return fail("size", fmt.Errorf("%d bytes, more than the %d a sealed blob can have", len(untrusted), maxBlobSize))
	}
	take := func(n int) ([]byte, bool) {
		if n > len(untrusted)-off {
			return nil, false
		}
		b := untrusted[off : off+n]
		off += n
		return b, true
	}
	m, ok := take(4)
	if !ok {
		return fail("magic", errShort)
	}
	if string(m) != blobMagic {
		off = 0
		return fail("magic", fmt.Errorf("got %q, want %q", m, blobMagic))
	}
	h, ok := take(6)
	if !ok {
		return fail("header", errShort)
	}
	if h[0] != blobVersion {
		return fail("version", fmt.Errorf("version %d; this glint reads version %d (seal the secret again)", h[0], blobVersion))
	}
	b := &sealedBlob{Family: Version(h[1]), Bank: Alg(binary.BigEndian.Uint16(h[2:4])), PIN: h[4]&flagPIN != 0}
	if b.Family != Version12 && b.Family != Version20 {
		return fail("family", fmt.Errorf("unknown TPM family %d", h[1]))
	}
	if h[4]&^flagPIN != 0 {
		return fail("flags", fmt.Errorf("unknown flags 0x%x", h[4]))
	}
	npcrs := int(h[5])
	if npcrs > pcrCount {
		return fail("PCR count", fmt.Errorf("%d PCRs, at most %d exist", npcrs, pcrCount))
	}
	pcrs, ok := take(npcrs)
	if !ok {
		return fail("PCR list", errShort)
	}
	for i, p := range pcrs {
		if int(p) >= pcrCount || i > 0 && p <= pcrs[i-1] {
			return fail("PCR list", fmt.Errorf("PCR %d out of range or out of order", p))
		}
		b.PCRs = append(b.PCRs, int(p))
	}
	np, ok := take(1)
	if !ok {
		return fail("part count", errShort)
	}
	want := 2
	if b.Family == Version12 {
		want = 1
	}
	if int(np[0]) != want {
		return fail("part count", fmt.Errorf("%d parts, %s blobs have %d", np[0], b.Family, want))
	}
	for i := 0; i < want; i++ {
		l, ok := take(2)
		if !ok {
			return fail("part length", errShort)
		}
		n := int(binary.BigEndian.Uint16(l))
		if n > maxBlobPart {
			return fail("part length", fmt.Errorf("%d bytes, more than %d", n, maxBlobPart))
		}
		p, ok := take(n)
		if !ok {
			return fail("part", fmt.Errorf("claims %d bytes, %d remain", n, len(untrusted)-off))
		}
		b.Parts = append(b.Parts, append([]byte(nil), p...))
	}
	if off != len(untrusted) {
		return fail("trailer", fmt.Errorf("%d unexpected bytes after the last part", len(untrusted)-off))
	}
	return b, nil
}
