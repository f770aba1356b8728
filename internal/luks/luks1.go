package luks

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// LUKS1 On-Disk Format Specification 1.2.3, 2.4, the phdr (big-endian):
//
//	0   magic[6]  "LUKS\xba\xbe"      112 mkDigest[20]
//	6   version u16 = 1                132 mkDigestSalt[32]
//	8   cipherName[32]                 164 mkDigestIterations u32
//	40  cipherMode[32]                 168 uuid[40]
//	72  hashSpec[32]                   208 keyblock[8], 48 bytes each:
//	104 payloadOffset u32 (sectors)        active u32, iterations u32, salt[32],
//	108 keyBytes u32                       keyMaterialOffset u32 (sectors), stripes u32
const (
	luks1KeyEnabled  = 0x00AC71F3
	luks1KeyDisabled = 0x0000DEAD
	luks1KeyblockOff = 208
	luks1KeyblockLen = 48
	sectorSize       = 512
)

func parseLUKS1(phdr []byte) (*Header, error) {
	if len(phdr) < luks1PhdrSize {
		return nil, errorf(0, "luks1.phdr", ErrTruncated, "")
	}
	h := &Header{
		Version:    1,
		HeaderSize: luks1PhdrSize,
		UUID:       cstring(phdr[168:208]),
		HashSpec:   cstring(phdr[72:104]),
	}
	cipherName, cipherMode := cstring(phdr[8:40]), cstring(phdr[40:72])
	h.Cipher = cipherName + "-" + cipherMode
	payload := be32(phdr[104:])
	keyBytes := be32(phdr[108:])
	if keyBytes == 0 || keyBytes > maxLUKS1KeyBytes {
		return nil, errorf(108, "luks1.keyBytes", ErrFormat, "volume key of %d bytes (1..%d allowed)", keyBytes, maxLUKS1KeyBytes)
	}
	h.KeyBytes = int(keyBytes)
	h.PayloadOffset = uint64(payload) * sectorSize

	// cryptsetup LUKS_device_sectors: the header area ends where the key
	// material of the highest keyslot (active or not) ends; luksHeaderBackup
	// rounds that up to a 4 KiB page.
	var end uint64
	type span struct{ start, end uint64 }
	var spans []span
	for i := 0; i < LUKS1Keyslots; i++ {
		off := int64(luks1KeyblockOff + i*luks1KeyblockLen)
		kb := phdr[off : off+luks1KeyblockLen]
		active := be32(kb[0:])
		iters := be32(kb[4:])
		matOff := be32(kb[40:])
		stripes := be32(kb[44:])
		field := fmt.Sprintf("luks1.keyblock[%d]", i)
		if active != luks1KeyEnabled && active != luks1KeyDisabled {
			return nil, errorf(off, field+".active", ErrFormat, "%#x is neither enabled nor disabled", active)
		}
		if stripes > luks1Stripes {
			return nil, errorf(off+44, field+".stripes", ErrTooLarge, "%d stripes (LUKS1 uses %d)", stripes, luks1Stripes)
		}
		// keyBytes <= 128 and stripes <= 4000: at most 1000 sectors per slot.
		sectors := (uint64(keyBytes)*uint64(stripes) + sectorSize - 1) / sectorSize
		start := uint64(matOff)
		if start*sectorSize < luks1PhdrSize {
			return nil, errorf(off+40, field+".keyMaterialOffset", ErrFormat, "sector %d overlaps the phdr", matOff)
		}
		if payload != 0 && start+sectors > uint64(payload) {
			return nil, errorf(off+40, field+".keyMaterialOffset", ErrFormat,
				"key material %d+%d sectors runs into the payload at sector %d", start, sectors, payload)
		}
		if start+sectors > end {
			end = start + sectors
		}
		if active != luks1KeyEnabled {
			continue
		}
		if stripes != luks1Stripes {
			return nil, errorf(off+44, field+".stripes", ErrFormat, "%d stripes (LUKS1 requires %d)", stripes, luks1Stripes)
		}
		for _, s := range spans {
			if start < s.end && s.start < start+sectors {
				return nil, errorf(off+40, field+".keyMaterialOffset", ErrFormat, "key material overlaps another active keyslot")
			}
		}
		spans = append(spans, span{start, start + sectors})
		sum := sha256.Sum256(kb)
		h.Keyslots = append(h.Keyslots, Keyslot{
			ID: i, Type: "luks1", KeySize: int(keyBytes), Priority: 1,
			KDF: "pbkdf2", KDFHash: h.HashSpec, Iterations: int(iters),
			AreaOffset: start * sectorSize, AreaSize: sectors * sectorSize,
			Encryption: h.Cipher, Stripes: int(stripes),
			Fingerprint: hex.EncodeToString(sum[:8]),
		})
	}
	h.AreaSize = end * sectorSize
	if h.AreaSize > maxHeaderArea {
		return nil, errorf(luks1KeyblockOff, "luks1.keyblock", ErrTooLarge, "header area of %d bytes", h.AreaSize)
	}
	return h, nil
}
