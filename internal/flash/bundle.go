package flash

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/glint-boot/glint/internal/manifest"
	"github.com/glint-boot/glint/internal/rom"
)

// An update bundle is a firmware image its publisher signed, in one file,
// so that glint can refuse a wrong, damaged or forged update before the
// chip is touched. Version 1 (docs/update-bundle.md), integers big-endian:
//
//	magic        8 bytes  "GLINTUPD"
//	version      u8       1
//	flags        u8       0 (no flags defined; others refused)
//	board_len    u8       1..64, then board: printable ASCII, the board
//	                      the image is for as glint names it ("Vendor Part",
//	                      from the image's CBFS build_info)
//	release_len  u8       0..64, then release: printable ASCII, the
//	                      publisher's label ("glint 2.1, coreboot 4.15")
//	image_len    u32      1..64 MiB
//	image_sha256 32 bytes SHA-256 of the image
//	image        image_len bytes
//	sig_len      u16      1..16384, then sig: an armored OpenPGP detached
//	                      signature over every byte from magic through
//	                      image_sha256 (the header: it names the image by
//	                      its hash, so the signature covers the image)
//
// Nothing may follow the signature. The publisher's public key is not in
// the bundle: glint takes it from the running firmware (CBFS
// glint/publisher.asc, measured like every owner file) or from the owner.

const (
	bundleMagic   = "GLINTUPD"
	bundleVersion = 1
	// maxBundleLabel bounds board and release labels.
	maxBundleLabel = 64
	// maxBundleSig bounds the signature; an armored RSA-4096 signature
	// with subpackets is under 1 KiB.
	maxBundleSig = 16 << 10
	// MaxBundleSize bounds a whole bundle.
	MaxBundleSize = 8 + 2 + 2*(1+maxBundleLabel) + 4 + 32 + MaxChipSize + 2 + maxBundleSig
	// PublisherKeyFile is where the publisher's key sits in CBFS, among
	// the owner files (named without rom.OwnerFilePrefix).
	PublisherKeyFile = "publisher.asc"
)

// BundleError says where and why a bundle did not parse or verify.
type BundleError struct {
	Offset int64
	Field  string
	Err    error
}

func (e *BundleError) Error() string {
	return fmt.Sprintf("update bundle: %s at byte %d: %v", e.Field, e.Offset, e.Err)
}

func (e *BundleError) Unwrap() error { return e.Err }

var (
	// ErrBundle is wrapped by every BundleError.
	ErrBundle = errors.New("not a valid update bundle")
	// ErrTruncated: the bundle ends before its declared contents.
	ErrTruncated = errors.New("the file ends early: truncated download or copy")
	// ErrChecksum: the image does not have the hash the header names.
	ErrChecksum = errors.New("the image does not match its checksum: damaged")
	// ErrSignature: the signature does not verify with the publisher key.
	ErrSignature = errors.New("the publisher's signature does not verify")
	// ErrNoPublisherKey: nothing to verify a bundle with.
	ErrNoPublisherKey = errors.New("no publisher key")
)

// Bundle is a parsed update bundle. Its image is trusted only after Verify.
type Bundle struct {
	Board   string
	Release string
	SHA256  [32]byte
	Image   []byte
	// Signature is the armored detached signature; header is what it signs.
	Signature []byte
	header    []byte
}

// IsBundle reports whether data starts like a bundle (a raw image never
// does: coreboot images start with a descriptor, 0xff or code).
func IsBundle(data []byte) bool { return bytes.HasPrefix(data, []byte(bundleMagic)) }

// ParseBundle checks a bundle's structure and its image checksum. The
// signature is checked by Verify.
func ParseBundle(untrusted []byte) (*Bundle, error) {
	off := 0
	fail := func(field string, err error, format string, a ...any) (*Bundle, error) {
		if format != "" {
			err = fmt.Errorf("%w: %s", err, fmt.Sprintf(format, a...))
		}
		return nil, &BundleError{Offset: int64(off), Field: field, Err: err}
	}
	if len(untrusted) > MaxBundleSize {
		return fail("size", ErrBundle, "%d bytes, more than a bundle can hold (%d)", len(untrusted), MaxBundleSize)
	}
	take := func(n int) ([]byte, bool) {
		if n < 0 || n > len(untrusted)-off {
			return nil, false
		}
		b := untrusted[off : off+n]
		off += n
		return b, true
	}
	m, ok := take(8)
	if !ok || string(m) != bundleMagic {
		off = 0
		return fail("magic", ErrBundle, "the file does not start with %q: not a glint update bundle", bundleMagic)
	}
	h, ok := take(2)
	if !ok {
		return fail("version", ErrTruncated, "")
	}
	if h[0] != bundleVersion {
		return fail("version", ErrBundle, "version %d; this glint reads version %d (update glint first)", h[0], bundleVersion)
	}
	if h[1] != 0 {
		return fail("flags", ErrBundle, "unknown flags 0x%02x", h[1])
	}
	b := &Bundle{}
	label := func(field string, minLen int) (string, error) {
		l, ok := take(1)
		if !ok {
			_, err := fail(field, ErrTruncated, "")
			return "", err
		}
		n := int(l[0])
		if n < minLen || n > maxBundleLabel {
			_, err := fail(field, ErrBundle, "%d bytes, want %d..%d", n, minLen, maxBundleLabel)
			return "", err
		}
		s, ok := take(n)
		if !ok {
			_, err := fail(field, ErrTruncated, "")
			return "", err
		}
		for _, c := range s {
			if c < 0x20 || c > 0x7e {
				_, err := fail(field, ErrBundle, "byte 0x%02x is not printable ASCII", c)
				return "", err
			}
		}
		return string(s), nil
	}
	var err error
	if b.Board, err = label("board", 1); err != nil {
		return nil, err
	}
	if b.Release, err = label("release", 0); err != nil {
		return nil, err
	}
	l, ok := take(4)
	if !ok {
		return fail("image_len", ErrTruncated, "")
	}
	n := binary.BigEndian.Uint32(l)
	if n == 0 || n > MaxChipSize {
		return fail("image_len", ErrBundle, "%d bytes, want 1..%d", n, MaxChipSize)
	}
	sum, ok := take(32)
	if !ok {
		return fail("image_sha256", ErrTruncated, "")
	}
	copy(b.SHA256[:], sum)
	b.header = untrusted[:off:off]
	img, ok := take(int(n))
	if !ok {
		return fail("image", ErrTruncated, "the header announces %d image bytes, %d remain", n, len(untrusted)-off)
	}
	if got := sha256.Sum256(img); got != b.SHA256 {
		off -= int(n)
		return fail("image", ErrChecksum, "sha256 %x, the header says %x", got, b.SHA256)
	}
	b.Image = img
	l, ok = take(2)
	if !ok {
		return fail("sig_len", ErrTruncated, "the signature is missing")
	}
	sn := int(binary.BigEndian.Uint16(l))
	if sn == 0 || sn > maxBundleSig {
		return fail("sig_len", ErrBundle, "%d bytes, want 1..%d", sn, maxBundleSig)
	}
	sig, ok := take(sn)
	if !ok {
		return fail("signature", ErrTruncated, "")
	}
	b.Signature = sig
	if off != len(untrusted) {
		return fail("trailer", ErrBundle, "%d bytes after the signature", len(untrusted)-off)
	}
	return b, nil
}

// Verify checks the signature with the publisher keyring and returns the
// signing key. Like /boot manifests, the signature is judged at its own
// creation time (a machine with a flat RTC battery must still update),
// and a revoked or expired key signs nothing.
func (b *Bundle) Verify(publisher openpgp.EntityList) (*openpgp.Entity, time.Time, error) {
	if len(publisher) == 0 {
		return nil, time.Time{}, &BundleError{Field: "signature", Err: ErrNoPublisherKey}
	}
	off := int64(len(b.header) + len(b.Image) + 2)
	block, err := armor.Decode(bytes.NewReader(b.Signature))
	if err != nil || block.Type != openpgp.SignatureType {
		return nil, time.Time{}, &BundleError{Offset: off, Field: "signature", Err: fmt.Errorf("%w: not an armored OpenPGP signature", ErrSignature)}
	}
	p, err := packet.Read(block.Body)
	if err != nil {
		return nil, time.Time{}, &BundleError{Offset: off, Field: "signature", Err: fmt.Errorf("%w: %v", ErrSignature, err)}
	}
	sig, ok := p.(*packet.Signature)
	if !ok {
		return nil, time.Time{}, &BundleError{Offset: off, Field: "signature", Err: fmt.Errorf("%w: the first packet is not a signature", ErrSignature)}
	}
	signedAt := sig.CreationTime
	cfg := &packet.Config{Time: func() time.Time { return signedAt }}
	signer, err := openpgp.CheckArmoredDetachedSignature(publisher, bytes.NewReader(b.header), bytes.NewReader(b.Signature), cfg)
	if err != nil {
		if errors.Is(err, pgperrors.ErrUnknownIssuer) {
			return nil, time.Time{}, &BundleError{Offset: off, Field: "signature", Err: fmt.Errorf("%w: made by a key that is not the publisher key (key id %X)", ErrSignature, issuer(sig))}
		}
		return nil, time.Time{}, &BundleError{Offset: off, Field: "signature", Err: fmt.Errorf("%w: %v", ErrSignature, err)}
	}
	for _, id := range signer.Identities {
		if id.SelfSignature != nil && id.SelfSignature.SigExpired(signedAt) {
			return nil, time.Time{}, &BundleError{Offset: off, Field: "signature", Err: fmt.Errorf("%w: the key's identity had expired when it signed", ErrSignature)}
		}
	}
	if signer.Revoked(signedAt) {
		return nil, time.Time{}, &BundleError{Offset: off, Field: "signature", Err: fmt.Errorf("%w: the publisher key is revoked", ErrSignature)}
	}
	return signer, signedAt, nil
}

func issuer(sig *packet.Signature) uint64 {
	if sig.IssuerKeyId != nil {
		return *sig.IssuerKeyId
	}
	return 0
}

// BuildBundle makes a bundle of image for board, signed by s (the
// publisher's gpg key or a Go key: manifest.Signer).
func BuildBundle(image []byte, board, release string, s manifest.Signer) ([]byte, error) {
	if len(image) == 0 || len(image) > MaxChipSize {
		return nil, fmt.Errorf("bundle: image of %d bytes, want 1..%d", len(image), MaxChipSize)
	}
	for _, l := range []string{board, release} {
		if len(l) > maxBundleLabel || printable(l) != l {
			return nil, fmt.Errorf("bundle: label %q: at most %d printable ASCII characters", l, maxBundleLabel)
		}
	}
	if board == "" {
		return nil, errors.New("bundle: the board is required")
	}
	out := []byte(bundleMagic)
	out = append(out, bundleVersion, 0, byte(len(board)))
	out = append(out, board...)
	out = append(out, byte(len(release)))
	out = append(out, release...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(image)))
	sum := sha256.Sum256(image)
	out = append(out, sum[:]...)
	sig, err := s.Sign(out)
	if err != nil {
		return nil, fmt.Errorf("bundle: sign with %s: %w", s, err)
	}
	if len(sig) == 0 || len(sig) > maxBundleSig {
		return nil, fmt.Errorf("bundle: the signature is %d bytes, want 1..%d", len(sig), maxBundleSig)
	}
	out = append(out, image...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(sig)))
	return append(out, sig...), nil
}

// PublisherKeys reads the publisher keyring from an image's CBFS.
func PublisherKeys(image []byte) (openpgp.EntityList, error) {
	f, ok := OwnerFiles(image)[PublisherKeyFile]
	if !ok {
		return nil, fmt.Errorf("%w: the running firmware holds no %s%s; put the publisher's key there (glint rom personalize) or give it with --publisher-key", ErrNoPublisherKey, rom.OwnerFilePrefix, PublisherKeyFile)
	}
	return manifest.ReadKeyring(f)
}
