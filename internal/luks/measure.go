package luks

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// backupPage is the page size luksHeaderBackup rounds its output up to
// (crypt_getpagesize on x86 and arm64 with 4 KiB pages).
const backupPage = 4096

// Sum is a SHA-256 digest that reads and writes as hex in JSON.
type Sum [sha256.Size]byte

func (s Sum) String() string               { return hex.EncodeToString(s[:]) }
func (s Sum) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s *Sum) UnmarshalText(b []byte) error {
	if len(b) != 2*sha256.Size {
		return fmt.Errorf("digest is %d hex characters, want %d", len(b), 2*sha256.Size)
	}
	_, err := hex.Decode(s[:], b)
	return err
}

// Measurement is what glint extends into PCR 6 for one LUKS device and
// keeps beside the sealed disk key, so that a later mismatch can be
// explained field by field.
type Measurement struct {
	Device string `json:"device"`
	// Digest is SHA-256 over the first AreaSize bytes of the device, zero
	// padded to a 4 KiB multiple: byte for byte the file
	// `cryptsetup luksHeaderBackup` writes (see the package doc).
	Digest   Sum     `json:"digest"`
	AreaSize uint64  `json:"area_size"`
	Summary  Summary `json:"summary"`
}

// Summary is the human-meaningful content of a header. It explains a
// digest mismatch; it never decides one.
type Summary struct {
	Version       int         `json:"version"`
	UUID          string      `json:"uuid"`
	Label         string      `json:"label,omitempty"`
	Subsystem     string      `json:"subsystem,omitempty"`
	SeqID         uint64      `json:"seqid,omitempty"`
	Cipher        string      `json:"cipher"`
	PayloadOffset uint64      `json:"payload_offset"`
	Keyslots      []Keyslot   `json:"keyslots"`
	Segments      []Segment   `json:"segments,omitempty"`
	Digests       []KeyDigest `json:"digests,omitempty"`
	Tokens        []Token     `json:"tokens,omitempty"`
	Flags         []string    `json:"flags,omitempty"`
	Requirements  []string    `json:"requirements,omitempty"`
	// Concerns are properties of this header an owner should know about
	// even without a change: cipher_null slots, reencryption in progress,
	// a damaged header copy.
	Concerns []string `json:"concerns,omitempty"`
}

// Summarize extracts the Summary of a parsed header.
func Summarize(h *Header) Summary {
	s := Summary{
		Version: h.Version, UUID: h.UUID, Label: h.Label, Subsystem: h.Subsystem,
		SeqID: h.SeqID, Cipher: h.Cipher, PayloadOffset: h.PayloadOffset,
		Keyslots: h.Keyslots, Segments: h.Segments, Digests: h.Digests, Tokens: h.Tokens,
		Flags: h.Flags, Requirements: h.Requirements,
	}
	s.Concerns = append(s.Concerns, h.Warnings...)
	// cipher_null turns a keyslot into "any passphrase opens it" and a
	// segment into plaintext; both are classic header-tampering tricks.
	if strings.Contains(h.Cipher, "cipher_null") {
		s.Concerns = append(s.Concerns, "the data cipher is cipher_null: the volume is NOT encrypted")
	}
	for _, k := range h.Keyslots {
		if strings.Contains(k.Encryption, "cipher_null") {
			s.Concerns = append(s.Concerns, fmt.Sprintf("keyslot %d uses cipher_null: any passphrase opens it", k.ID))
		}
	}
	for _, seg := range h.Segments {
		if seg.Type == "crypt" && strings.Contains(seg.Encryption, "cipher_null") && seg.Encryption != h.Cipher {
			s.Concerns = append(s.Concerns, fmt.Sprintf("segment %d uses cipher_null: that part of the volume is NOT encrypted", seg.ID))
		}
	}
	if len(h.Requirements) > 0 {
		s.Concerns = append(s.Concerns, fmt.Sprintf("mandatory requirements %s (a reencryption may be in progress)", sanitize(strings.Join(h.Requirements, ","))))
	}
	return s
}

// Measure parses the LUKS header on device and hashes its header area.
// Extend Measurement.Digest into PCR 6 before unsealing the disk key, and
// store the Measurement beside the sealed key so Compare can explain a
// later mismatch.
func Measure(device string) (Measurement, error) {
	f, err := os.Open(device)
	if err != nil {
		return Measurement{}, fmt.Errorf("measure LUKS header: %w", err)
	}
	defer f.Close()
	size, err := deviceSize(f)
	if err != nil {
		return Measurement{}, fmt.Errorf("measure LUKS header of %s: %w", device, err)
	}
	m, err := MeasureReader(f, size)
	if err != nil {
		return Measurement{}, fmt.Errorf("measure LUKS header of %s: %w", device, err)
	}
	m.Device = device
	return m, nil
}

// MeasureReader is Measure for an already open device of size bytes.
func MeasureReader(untrusted io.ReaderAt, size int64) (Measurement, error) {
	h, err := ParseHeader(untrusted, size)
	if err != nil {
		return Measurement{}, err
	}
	if h.AreaSize > maxHeaderArea {
		return Measurement{}, errorf(0, "header area", ErrTooLarge, "%d bytes", h.AreaSize)
	}
	if h.AreaSize > uint64(size) {
		return Measurement{}, errorf(0, "header area", ErrTruncated,
			"headers and keyslots need %d bytes, the device has %d", h.AreaSize, size)
	}
	d := sha256.New()
	n, err := io.Copy(d, io.NewSectionReader(untrusted, 0, int64(h.AreaSize)))
	if err != nil {
		return Measurement{}, errorf(0, "header area", err, "")
	}
	if uint64(n) != h.AreaSize {
		return Measurement{}, errorf(n, "header area", ErrTruncated, "read %d of %d bytes", n, h.AreaSize)
	}
	if pad := (backupPage - int(h.AreaSize%backupPage)) % backupPage; pad > 0 {
		d.Write(make([]byte, pad))
	}
	m := Measurement{AreaSize: h.AreaSize, Summary: Summarize(h)}
	copy(m.Digest[:], d.Sum(nil))
	return m, nil
}

// Description is the event text glint logs with the PCR 6 extension.
func (m Measurement) Description() string {
	return fmt.Sprintf("LUKS%d header %s UUID=%s (%d bytes)", m.Summary.Version, m.Device, sanitize(m.Summary.UUID), m.AreaSize)
}

// ErrHeaderChanged is wrapped by every *ChangedError.
var ErrHeaderChanged = errors.New("LUKS header changed")

// ChangedError says that a LUKS header no longer matches the measurement
// the disk key was sealed with, and what changed.
type ChangedError struct {
	Device  string
	Old     Sum
	New     Sum
	Changes []string
}

func (e *ChangedError) Error() string {
	return fmt.Sprintf("the LUKS header of %s changed since the disk key was sealed: %s. "+
		"If you made this change (added or changed a passphrase, re-encrypted, enrolled a token), reseal the disk key; "+
		"if you did not, someone may have tampered with the disk",
		e.Device, strings.Join(e.Changes, "; "))
}

func (e *ChangedError) Unwrap() error { return ErrHeaderChanged }

// Compare returns nil when current has the digest sealed recorded,
// otherwise a *ChangedError whose Changes name what differs.
func Compare(sealed, current Measurement) error {
	if sealed.Digest == current.Digest {
		return nil
	}
	return &ChangedError{Device: current.Device, Old: sealed.Digest, New: current.Digest, Changes: Diff(sealed.Summary, current.Summary)}
}

// Diff lists, in words, how header b differs from header a. It always
// returns at least one line when called for differing digests: if no
// summarized field changed, it says which unsummarized bytes must have.
func Diff(a, b Summary) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if a.Version != b.Version {
		add("LUKS version changed from %d to %d", a.Version, b.Version)
	}
	if a.UUID != b.UUID {
		add("UUID changed from %s to %s (a different header, or a different disk)", sanitize(a.UUID), sanitize(b.UUID))
	}
	if a.Label != b.Label {
		add("label changed from %q to %q", sanitize(a.Label), sanitize(b.Label))
	}
	if a.Subsystem != b.Subsystem {
		add("subsystem changed from %q to %q", sanitize(a.Subsystem), sanitize(b.Subsystem))
	}
	if a.Cipher != b.Cipher {
		add("data cipher changed from %s to %s", sanitize(a.Cipher), sanitize(b.Cipher))
	}
	if a.PayloadOffset != b.PayloadOffset {
		add("encrypted data now starts at byte %d (was %d)", b.PayloadOffset, a.PayloadOffset)
	}
	diffByID(a.Keyslots, b.Keyslots, func(k Keyslot) int { return k.ID }, func(k Keyslot) string {
		return fmt.Sprintf("keyslot %d (%s, %s)", k.ID, sanitize(k.KDF), sanitize(k.Encryption))
	}, func(x, y Keyslot) string {
		switch {
		case x.Encryption != y.Encryption:
			return fmt.Sprintf("keyslot %d encryption changed from %s to %s", x.ID, sanitize(x.Encryption), sanitize(y.Encryption))
		case x.KDF != y.KDF || x.Iterations != y.Iterations || x.MemoryKiB != y.MemoryKiB:
			return fmt.Sprintf("keyslot %d was rewritten (KDF %s/%d now %s/%d: passphrase changed or slot converted)",
				x.ID, sanitize(x.KDF), x.Iterations, sanitize(y.KDF), y.Iterations)
		case x.Priority != y.Priority:
			return fmt.Sprintf("keyslot %d priority changed from %d to %d", x.ID, x.Priority, y.Priority)
		case x.Fingerprint != y.Fingerprint:
			return fmt.Sprintf("keyslot %d was rewritten (new salt or area: passphrase changed?)", x.ID)
		}
		return ""
	}, &out)
	diffByID(a.Segments, b.Segments, func(s Segment) int { return s.ID }, func(s Segment) string {
		return fmt.Sprintf("data segment %d (%s %s at byte %d)", s.ID, sanitize(s.Type), sanitize(s.Encryption), s.Offset)
	}, func(x, y Segment) string {
		switch {
		case x.Encryption != y.Encryption:
			return fmt.Sprintf("segment %d cipher changed from %s to %s", x.ID, sanitize(x.Encryption), sanitize(y.Encryption))
		case x.Offset != y.Offset || x.Size != y.Size:
			return fmt.Sprintf("segment %d moved from byte %d (%s) to byte %d (%s)", x.ID, x.Offset, sanitize(x.Size), y.Offset, sanitize(y.Size))
		case x.Type != y.Type || x.SectorSize != y.SectorSize || x.Integrity != y.Integrity || !slices.Equal(x.Flags, y.Flags):
			return fmt.Sprintf("segment %d parameters changed", x.ID)
		}
		return ""
	}, &out)
	diffByID(a.Digests, b.Digests, func(d KeyDigest) int { return d.ID }, func(d KeyDigest) string {
		return fmt.Sprintf("volume key digest %d", d.ID)
	}, func(x, y KeyDigest) string {
		if !slices.Equal(x.Keyslots, y.Keyslots) || !slices.Equal(x.Segments, y.Segments) || x.Type != y.Type {
			return fmt.Sprintf("volume key digest %d now links keyslots %s to segments %s (was %s to %s)",
				x.ID, joinInts(y.Keyslots), joinInts(y.Segments), joinInts(x.Keyslots), joinInts(x.Segments))
		}
		return ""
	}, &out)
	diffByID(a.Tokens, b.Tokens, func(t Token) int { return t.ID }, func(t Token) string {
		return t.Describe()
	}, func(x, y Token) string {
		if x.Describe() != y.Describe() || !equalTPM2(x.TPM2, y.TPM2) {
			return fmt.Sprintf("token %d changed: was %s, now %s", x.ID, x.Describe(), y.Describe())
		}
		return ""
	}, &out)
	if !slices.Equal(a.Flags, b.Flags) {
		add("persistent flags changed from [%s] to [%s]", sanitize(strings.Join(a.Flags, ",")), sanitize(strings.Join(b.Flags, ",")))
	}
	if !slices.Equal(a.Requirements, b.Requirements) {
		add("mandatory requirements changed from [%s] to [%s]", sanitize(strings.Join(a.Requirements, ",")), sanitize(strings.Join(b.Requirements, ",")))
	}
	for _, c := range b.Concerns {
		if !slices.Contains(a.Concerns, c) {
			add("new: %s", c)
		}
	}
	if len(out) == 0 {
		if a.SeqID != b.SeqID {
			add("the header metadata was rewritten (seqid %d, was %d) without a change glint can name", b.SeqID, a.SeqID)
		} else {
			add("bytes outside the metadata changed: keyslot key material or unused header space was overwritten")
		}
	}
	return out
}

// diffByID reports items added, removed and changed between two lists sorted by ID.
func diffByID[T any](a, b []T, id func(T) int, name func(T) string, changed func(x, y T) string, out *[]string) {
	old := map[int]T{}
	for _, x := range a {
		old[id(x)] = x
	}
	seen := map[int]bool{}
	for _, y := range b {
		seen[id(y)] = true
		x, ok := old[id(y)]
		if !ok {
			*out = append(*out, name(y)+" added")
			continue
		}
		if c := changed(x, y); c != "" {
			*out = append(*out, c)
		}
	}
	for _, x := range a {
		if !seen[id(x)] {
			*out = append(*out, name(x)+" removed")
		}
	}
}

func equalTPM2(a, b *TPM2Token) bool {
	if a == nil || b == nil {
		return a == b
	}
	return slices.Equal(a.PCRs, b.PCRs) && slices.Equal(a.PubkeyPCRs, b.PubkeyPCRs) &&
		a.PCRBank == b.PCRBank && a.PrimaryAlg == b.PrimaryAlg && a.PolicyHash == b.PolicyHash &&
		a.PIN == b.PIN && a.PCRLock == b.PCRLock && a.BlobSize == b.BlobSize
}
