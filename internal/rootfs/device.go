package rootfs

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// The ext2/3/4 superblock fields a root is found by (Linux
// Documentation/filesystems/ext4/super.rst): the superblock starts 1024
// bytes into the device.
const (
	superblockOffset = 1024
	superblockRead   = 1024 // bytes read: up to and past s_volume_name
	offMagic         = 0x38
	offUUID          = 0x68
	offLabel         = 0x78
	ext4Magic        = 0xEF53
)

// Superblock is what identifies an ext2/3/4 file system.
type Superblock struct {
	UUID  [16]byte
	Label string
}

// UUIDString formats the UUID as blkid does.
func (s Superblock) UUIDString() string {
	h := hex.EncodeToString(s.UUID[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// ErrNotExt means the device holds no ext2/3/4 file system.
var ErrNotExt = errors.New("no ext2/3/4 superblock")

// ParseSuperblock reads the identifying fields from the first 2 KiB of a
// device. The bytes come from a disk anyone may have written.
func ParseSuperblock(untrusted []byte) (Superblock, error) {
	var sb Superblock
	if len(untrusted) < superblockOffset+superblockRead {
		return sb, fmt.Errorf("%w: %d bytes, want %d", ErrNotExt, len(untrusted), superblockOffset+superblockRead)
	}
	b := untrusted[superblockOffset : superblockOffset+superblockRead]
	if binary.LittleEndian.Uint16(b[offMagic:]) != ext4Magic {
		return sb, ErrNotExt
	}
	copy(sb.UUID[:], b[offUUID:offUUID+16])
	label := b[offLabel : offLabel+16]
	if i := bytes.IndexByte(label, 0); i >= 0 {
		label = label[:i]
	}
	sb.Label = strings.ToValidUTF8(string(label), "?")
	return sb, nil
}

// FindDevice resolves a root file system spec as in the owner configuration
// or a kernel command line, "UUID=...", "LABEL=..." or "/dev/...", among
// devices (/dev paths; blockdev lists them). Exactly one device must match:
// two file systems with the root's UUID (a cloned disk plugged in) are an
// error, not a guess.
func FindDevice(spec string, devices []string) (string, error) {
	if strings.HasPrefix(spec, "/dev/") {
		return spec, nil
	}
	key, want, ok := strings.Cut(spec, "=")
	if !ok || (key != "UUID" && key != "LABEL") || want == "" {
		return "", fmt.Errorf("root file system %q: want UUID=, LABEL= or a /dev path", spec)
	}
	var found []string
	for _, d := range devices {
		sb, err := readSuperblock(d)
		if err != nil {
			continue
		}
		if key == "UUID" && strings.EqualFold(sb.UUIDString(), want) || key == "LABEL" && sb.Label == want {
			found = append(found, d)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no ext2/3/4 file system with %s among %d block devices", spec, len(devices))
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%s is on %d devices (%s): unplug the copy", spec, len(found), strings.Join(found, ", "))
}

func readSuperblock(dev string) (Superblock, error) {
	f, err := os.Open(dev)
	if err != nil {
		return Superblock{}, err
	}
	defer f.Close()
	b := make([]byte, superblockOffset+superblockRead)
	if _, err := io.ReadFull(f, b); err != nil {
		return Superblock{}, err
	}
	return ParseSuperblock(b)
}
