package luks

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
)

// Header is a parsed LUKS1 or LUKS2 header. Every field comes from the
// device and was bounds-checked; for LUKS2 it is the copy cryptsetup itself
// would use (see Copies).
type Header struct {
	Version   int    // 1 or 2
	UUID      string // as stored, e.g. "4d8ee565-db37-4bf3-972b-51ad4c01387c"
	Label     string // LUKS2 only
	Subsystem string // LUKS2 only
	// SeqID increases on every LUKS2 metadata write (LUKS2 spec 2.1).
	SeqID uint64
	// HeaderSize is the LUKS2 hdr_size (binary header + JSON area), or the
	// LUKS1 phdr size.
	HeaderSize  uint64
	ChecksumAlg string // LUKS2 only, normally "sha256"
	// Cipher is the data cipher: LUKS1 cipher-mode, LUKS2 the first crypt
	// segment's "encryption" (e.g. "aes-xts-plain64").
	Cipher   string
	HashSpec string // LUKS1 only: the PBKDF2 / AF hash
	KeyBytes int    // LUKS1 only: volume key size in bytes
	// PayloadOffset is where encrypted data starts, in bytes (0 = detached header).
	PayloadOffset uint64
	// AreaSize is the number of bytes from offset 0 that hold headers and
	// keyslot material: what `cryptsetup luksHeaderBackup` copies, before it
	// rounds up to a page (LUKS2: 2*hdr_size + keyslots_size).
	AreaSize uint64

	Keyslots     []Keyslot   // active keyslots, sorted by ID
	Segments     []Segment   // LUKS2 only, sorted by ID
	Digests      []KeyDigest // LUKS2 only, sorted by ID
	Tokens       []Token     // LUKS2 only, sorted by ID
	Flags        []string    // LUKS2 config.flags (e.g. "allow-discards")
	Requirements []string    // LUKS2 config.requirements.mandatory (e.g. "online-reencrypt")
	Copies       []HeaderCopy
	// Warnings are facts that do not stop parsing but an owner should see,
	// e.g. "secondary header copy is damaged".
	Warnings []string
}

// HeaderCopy describes one of the two LUKS2 header copies (LUKS2 spec 2.1:
// the primary at offset 0, the secondary right after it).
type HeaderCopy struct {
	Offset int64
	SeqID  uint64
	Err    error // nil if the copy is valid
}

// Keyslot is one active keyslot.
type Keyslot struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`     // "luks2" (LUKS2), "luks1" (LUKS1)
	KeySize    int    `json:"key_size"` // bytes of volume key this slot unlocks
	Priority   int    `json:"priority"` // LUKS2: 0 ignore, 1 normal (default), 2 prefer
	KDF        string `json:"kdf"`      // "pbkdf2", "argon2i", "argon2id"
	KDFHash    string `json:"kdf_hash,omitempty"`
	Iterations int    `json:"iterations"`           // pbkdf2 iterations or argon2 time cost
	MemoryKiB  int    `json:"memory_kib,omitempty"` // argon2 only
	AreaOffset uint64 `json:"area_offset"`          // bytes from device start
	AreaSize   uint64 `json:"area_size"`
	Encryption string `json:"encryption"` // LUKS2 area encryption; LUKS1 = header cipher
	Stripes    int    `json:"stripes"`
	// Fingerprint changes whenever this slot's metadata changes (a new
	// passphrase brings a new salt): the first 8 bytes of SHA-256 over its
	// JSON object (LUKS2) or its 48-byte key block (LUKS1), in hex.
	Fingerprint string `json:"fingerprint"`
}

// Segment is one LUKS2 data segment.
type Segment struct {
	ID         int      `json:"id"`
	Type       string   `json:"type"` // "crypt", "linear"
	Offset     uint64   `json:"offset"`
	Size       string   `json:"size"` // "dynamic" or a decimal byte count
	Encryption string   `json:"encryption,omitempty"`
	SectorSize int      `json:"sector_size,omitempty"`
	Integrity  string   `json:"integrity,omitempty"` // dm-integrity type, if any
	Flags      []string `json:"flags,omitempty"`
}

// KeyDigest is one LUKS2 volume key digest and the keyslots and segments it
// ties together (LUKS2 spec 3.4).
type KeyDigest struct {
	ID       int    `json:"id"`
	Type     string `json:"type"`
	Keyslots []int  `json:"keyslots"`
	Segments []int  `json:"segments"`
}

// Token is one LUKS2 token. TPM2 is set for systemd-cryptenroll's
// "systemd-tpm2" tokens.
type Token struct {
	ID       int        `json:"id"`
	Type     string     `json:"type"`
	Keyslots []int      `json:"keyslots"`
	TPM2     *TPM2Token `json:"tpm2,omitempty"`
}

// ReadHeader opens device (a block device, an image file or a detached
// header file) read-only and parses its LUKS header.
func ReadHeader(device string) (*Header, error) {
	f, err := os.Open(device)
	if err != nil {
		return nil, fmt.Errorf("read LUKS header: %w", err)
	}
	defer f.Close()
	size, err := deviceSize(f)
	if err != nil {
		return nil, fmt.Errorf("read LUKS header of %s: %w", device, err)
	}
	h, err := ParseHeader(f, size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", device, err)
	}
	return h, nil
}

// deviceSize works for block devices (Stat reports 0) and regular files.
func deviceSize(f *os.File) (int64, error) {
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	return end, nil
}

// ParseHeader parses the LUKS header at the start of untrusted, which holds
// size bytes. It never reads past size and never allocates more than the caps
// in this package allow.
func ParseHeader(untrusted io.ReaderAt, size int64) (*Header, error) {
	var first [luks1PhdrSize]byte
	if err := readAt(untrusted, size, first[:], 0, "magic"); err != nil {
		if errors.Is(err, ErrTruncated) {
			return nil, errorf(0, "magic", ErrNotLUKS, "device is only %d bytes", size)
		}
		return nil, err
	}
	if !bytes.Equal(first[:6], luksMagic[:]) {
		if bytes.Equal(first[:6], luks2MagicSecondary[:]) {
			// A device whose primary header was wiped but starts with a
			// secondary copy is not something cryptsetup opens either.
			return nil, errorf(0, "magic", ErrNotLUKS, "found a LUKS2 secondary header magic at offset 0")
		}
		return parseLUKS2Damaged(untrusted, size)
	}
	switch v := be16(first[6:]); v {
	case 1:
		return parseLUKS1(first[:])
	case 2:
		return parseLUKS2(untrusted, size)
	default:
		return nil, errorf(6, "version", ErrUnsupported, "LUKS version %d (glint knows 1 and 2)", v)
	}
}

// readAt reads exactly len(p) bytes at off, checking off+len(p) against size first.
func readAt(r io.ReaderAt, size int64, p []byte, off int64, field string) error {
	if off < 0 || int64(len(p)) > size || off > size-int64(len(p)) {
		return errorf(off, field, ErrTruncated, "need %d bytes, device has %d", len(p), size)
	}
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return errorf(off, field, err, "")
}

// cstring returns the NUL-terminated string in a fixed-size field.
func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func be16(b []byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }
func be32(b []byte) uint32 { return uint32(be16(b))<<16 | uint32(be16(b[2:])) }
func be64(b []byte) uint64 { return uint64(be32(b))<<32 | uint64(be32(b[4:])) }

// SlotCount is the number of keyslots the format has: 8 (LUKS1) or 32 (LUKS2).
func (h *Header) SlotCount() int {
	if h.Version == 1 {
		return LUKS1Keyslots
	}
	return MaxLUKS2Keyslots
}

// Slot returns the active keyslot with this ID.
func (h *Header) Slot(id int) (Keyslot, bool) {
	for _, k := range h.Keyslots {
		if k.ID == id {
			return k, true
		}
	}
	return Keyslot{}, false
}

// TokensForSlot returns the tokens that reference keyslot id (e.g. a
// systemd-cryptenroll TPM2 token). Such a slot belongs to someone else:
// AddKey and KillSlot refuse to touch it.
func (h *Header) TokensForSlot(id int) []Token {
	var out []Token
	for _, t := range h.Tokens {
		for _, s := range t.Keyslots {
			if s == id {
				out = append(out, t)
				break
			}
		}
	}
	return out
}

// DefaultSlot is the slot glint puts its disk unlock key in: 31 on LUKS2 and
// 7 on LUKS1, the same slots Heads uses (kexec-seal-key.sh), so a machine
// moving between Heads and glint keeps one convention.
func (h *Header) DefaultSlot() int {
	if h.Version == 1 {
		return LUKS1Keyslots - 1
	}
	return MaxLUKS2Keyslots - 1
}

func sortedKeys[T any](m map[int]T) []int {
	ids := make([]int, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	return ids
}
