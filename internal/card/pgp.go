package card

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// OpenPGP packets for a key that lives on the card (RFC 4880).
//
// The public key packet is encoded here and parsed back with
// ProtonMail/go-crypto, which computes the fingerprint and checks the
// encoding. Signatures are built here too (RFC 4880 section 5.2.3-5.2.4):
// go-crypto's signer path takes a crypto.Signer for RSA and ECDSA but not
// for EdDSA, and glint wants one code path where the card makes the
// signature over a hash computed on the host. Every signature is verified
// with go-crypto before it is returned.

// DigestSigner makes a raw signature over a digest: *Card does (with the
// user PIN verified), and so does the simulator's software key in tests.
type DigestSigner interface {
	SignDigest(h crypto.Hash, digest []byte) ([]byte, error)
}

// sigHash is the hash of every signature glint makes.
const sigHash = crypto.SHA256

// OpenPGP ids (RFC 4880 section 9.4 hash, 5.2.1 signature types, 5.2.3.1
// subpackets).
const (
	hashIDSHA256       = 8
	sigTypeBinary      = 0x00
	sigTypePositiveUID = 0x13
	subCreationTime    = 2
	subPrefSymmetric   = 11
	subIssuerKeyID     = 16
	subPrefHash        = 21
	subPrefCompression = 22
	subPrimaryUserID   = 25
	subKeyFlags        = 27
	subFeatures        = 30
	subIssuerFpr       = 33
	packetTagSignature = 2
	packetTagPublicKey = 6
	packetTagUserID    = 13
)

// OpenPGPKey is the owner's OpenPGP primary key, made from a card slot's
// public key and its creation time.
type OpenPGPKey struct {
	Public *packet.PublicKey
	// body is the v4 public key packet body (what the fingerprint hashes).
	body []byte
	alg  Algorithm
}

// NewOpenPGPKey builds the v4 public key packet for pk created at created
// (truncated to seconds: the packet stores a 32-bit Unix time).
func NewOpenPGPKey(pk *PublicKey, created time.Time) (*OpenPGPKey, error) {
	if created.Unix() <= 0 || created.Unix() > 0xFFFFFFFF {
		return nil, fmt.Errorf("key creation time %v cannot be stored in an OpenPGP v4 key", created)
	}
	body := []byte{4}
	body = binary.BigEndian.AppendUint32(body, uint32(created.Unix()))
	body = append(body, pk.Algorithm.ID)
	switch pk.Algorithm.ID {
	case AlgRSA:
		body = appendMPI(body, pk.N)
		body = appendMPI(body, pk.E)
	case AlgECDSA:
		body = append(body, byte(len(pk.Algorithm.OID)))
		body = append(body, pk.Algorithm.OID...)
		body = appendMPI(body, pk.Point)
	case AlgEdDSA:
		// draft-koch-eddsa-for-openpgp: the point is prefixed with 40.
		body = append(body, byte(len(pk.Algorithm.OID)))
		body = append(body, pk.Algorithm.OID...)
		body = appendMPI(body, append([]byte{0x40}, pk.Point...))
	default:
		return nil, fmt.Errorf("a %s key cannot be an OpenPGP signing key", pk.Algorithm)
	}
	p, err := packet.Read(bytes.NewReader(appendPacket(nil, packetTagPublicKey, body)))
	if err != nil {
		return nil, fmt.Errorf("OpenPGP public key from the card's key: %w", err)
	}
	pub, ok := p.(*packet.PublicKey)
	if !ok {
		return nil, fmt.Errorf("OpenPGP public key from the card's key: parsed as %T", p)
	}
	return &OpenPGPKey{Public: pub, body: body, alg: pk.Algorithm}, nil
}

// Fingerprint is the v4 fingerprint (what the card stores in C7).
func (k *OpenPGPKey) Fingerprint() []byte { return k.Public.Fingerprint }

// Certify makes the positive self-certification of uid (key flags certify
// and sign) and returns the transferable public key: key, user ID and
// signature packets, armored, ready to import into gpg or to put in the
// firmware image as the owner key.
func (k *OpenPGPKey) Certify(uid string, now time.Time, s DigestSigner) ([]byte, error) {
	if uid == "" || len(uid) > 1024 {
		return nil, errors.New("a user ID of 1 to 1024 bytes is needed (\"Name <email>\")")
	}
	uidBytes := []byte(uid)
	prefix := func(h hash.Hash) {
		h.Write(append([]byte{0x99, byte(len(k.body) >> 8), byte(len(k.body))}, k.body...))
		h.Write(binary.BigEndian.AppendUint32([]byte{0xB4}, uint32(len(uidBytes))))
		h.Write(uidBytes)
	}
	extra := [][]byte{
		subpacket(subKeyFlags, []byte{0x03}),           // certify, sign
		subpacket(subPrefSymmetric, []byte{9, 8, 7}),   // AES-256, AES-192, AES-128
		subpacket(subPrefHash, []byte{10, 9, 8}),       // SHA-512, SHA-384, SHA-256
		subpacket(subPrefCompression, []byte{2, 3, 1}), // ZLIB, BZip2, ZIP
		subpacket(subFeatures, []byte{0x01}),           // modification detection
		subpacket(subPrimaryUserID, []byte{0x01}),
	}
	sig, err := k.sign(sigTypePositiveUID, prefix, now, extra, s)
	if err != nil {
		return nil, err
	}
	var raw []byte
	raw = appendPacket(raw, packetTagPublicKey, k.body)
	raw = appendPacket(raw, packetTagUserID, uidBytes)
	raw = append(raw, sig...)
	// Check the result the way every reader of owner.asc will.
	el, err := openpgp.ReadKeyRing(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("the self-signed key does not parse back: %w", err)
	}
	if len(el) != 1 || !bytes.Equal(el[0].PrimaryKey.Fingerprint, k.Fingerprint()) {
		return nil, errors.New("the self-signed key parses to another key")
	}
	ident, ok := el[0].Identities[uid]
	if !ok || ident.SelfSignature == nil {
		return nil, errors.New("the self-signature was not accepted (did the card sign with another key?)")
	}
	if err := k.Public.VerifyUserIdSignature(uid, k.Public, ident.SelfSignature); err != nil {
		return nil, fmt.Errorf("the card's self-signature does not verify (is the card's key the one it claims?): %w", err)
	}
	return armorBlock(openpgp.PublicKeyType, raw)
}

// DetachSign makes an armored detached binary signature over message, as
// `gpg --detach-sign --armor` does, and verifies it before returning.
func (k *OpenPGPKey) DetachSign(message []byte, now time.Time, s DigestSigner) ([]byte, error) {
	prefix := func(h hash.Hash) { h.Write(message) }
	sig, err := k.sign(sigTypeBinary, prefix, now, nil, s)
	if err != nil {
		return nil, err
	}
	p, err := packet.Read(bytes.NewReader(sig))
	if err != nil {
		return nil, fmt.Errorf("the signature does not parse back: %w", err)
	}
	sp, ok := p.(*packet.Signature)
	if !ok {
		return nil, fmt.Errorf("the signature parses as %T", p)
	}
	h := sigHash.New()
	h.Write(message)
	if err := k.Public.VerifySignature(h, sp); err != nil {
		return nil, fmt.Errorf("the card's signature does not verify with key %X (was the key on the card replaced?): %w", k.Fingerprint(), err)
	}
	out, err := armorBlock(openpgp.SignatureType, sig)
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// sign builds one v4 signature packet (RFC 4880 section 5.2.3): the hashed
// subpackets carry the creation time and the issuer fingerprint, the
// unhashed ones the issuer key id; the card signs the SHA-256 digest.
func (k *OpenPGPKey) sign(sigType byte, prefix func(hash.Hash), now time.Time, extra [][]byte, s DigestSigner) ([]byte, error) {
	var hashed []byte
	hashed = append(hashed, subpacket(subCreationTime, binary.BigEndian.AppendUint32(nil, uint32(now.Unix())))...)
	hashed = append(hashed, subpacket(subIssuerFpr, append([]byte{4}, k.Fingerprint()...))...)
	for _, e := range extra {
		hashed = append(hashed, e...)
	}
	head := []byte{4, sigType, k.alg.ID, hashIDSHA256, byte(len(hashed) >> 8), byte(len(hashed))}
	head = append(head, hashed...)
	h := sha256.New()
	prefix(h)
	h.Write(head)
	h.Write(binary.BigEndian.AppendUint32([]byte{4, 0xFF}, uint32(len(head))))
	digest := h.Sum(nil)
	raw, err := s.SignDigest(sigHash, digest)
	if err != nil {
		return nil, err
	}
	unhashed := subpacket(subIssuerKeyID, binary.BigEndian.AppendUint64(nil, k.Public.KeyId))
	body := append(head, byte(len(unhashed)>>8), byte(len(unhashed)))
	body = append(body, unhashed...)
	body = append(body, digest[0], digest[1])
	switch k.alg.ID {
	case AlgRSA:
		body = appendMPI(body, raw)
	case AlgECDSA, AlgEdDSA:
		if len(raw) != 64 {
			return nil, fmt.Errorf("the card returned a %d-byte %s signature, want 64", len(raw), k.alg)
		}
		body = appendMPI(body, raw[:32])
		body = appendMPI(body, raw[32:])
	}
	return appendPacket(nil, packetTagSignature, body), nil
}

// subpacket encodes one signature subpacket (RFC 4880 section 5.2.3.1;
// glint's are all shorter than 192 bytes).
func subpacket(typ byte, data []byte) []byte {
	return append([]byte{byte(len(data) + 1), typ}, data...)
}

// appendMPI encodes a multiprecision integer (RFC 4880 section 3.2).
func appendMPI(dst, v []byte) []byte {
	v = trimZeros(v)
	bits := 0
	if len(v) > 0 {
		bits = (len(v)-1)*8 + bitLen(v[0])
	}
	dst = append(dst, byte(bits>>8), byte(bits))
	return append(dst, v...)
}

func bitLen(b byte) int {
	n := 0
	for ; b != 0; b >>= 1 {
		n++
	}
	return n
}

// appendPacket adds a new-format packet header (RFC 4880 section 4.2.2).
func appendPacket(dst []byte, tag byte, body []byte) []byte {
	dst = append(dst, 0xC0|tag)
	switch l := len(body); {
	case l < 192:
		dst = append(dst, byte(l))
	case l < 8384:
		l -= 192
		dst = append(dst, byte(l>>8)+192, byte(l))
	default:
		dst = append(dst, 0xFF)
		dst = binary.BigEndian.AppendUint32(dst, uint32(l))
	}
	return append(dst, body...)
}

func armorBlock(blockType string, raw []byte) ([]byte, error) {
	var out bytes.Buffer
	w, err := armor.Encode(&out, blockType, nil)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(w, bytes.NewReader(raw)); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
