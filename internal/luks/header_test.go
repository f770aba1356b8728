package luks

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseLUKS2Real(t *testing.T) {
	img := newImage(t, "luks2")
	h, err := ReadHeader(img)
	if err != nil {
		t.Fatal(err)
	}
	uuid := strings.TrimSpace(cryptsetupCmd(t, nil, "luksUUID", img))
	if h.Version != 2 || h.UUID != uuid {
		t.Errorf("version %d uuid %q, want 2 %q", h.Version, h.UUID, uuid)
	}
	if h.Cipher != "aes-xts-plain64" || h.ChecksumAlg != "sha256" || h.HeaderSize != 16384 {
		t.Errorf("cipher %q csum %q hdr_size %d", h.Cipher, h.ChecksumAlg, h.HeaderSize)
	}
	if h.AreaSize != 16<<20 || h.PayloadOffset != 16<<20 {
		t.Errorf("area %d payload %d, want 16 MiB both", h.AreaSize, h.PayloadOffset)
	}
	if len(h.Keyslots) != 1 || h.Keyslots[0].ID != 0 || h.Keyslots[0].KDF != "pbkdf2" || h.Keyslots[0].Iterations != 1000 {
		t.Errorf("keyslots %+v", h.Keyslots)
	}
	if len(h.Segments) != 1 || len(h.Digests) != 1 || len(h.Tokens) != 0 || len(h.Warnings) != 0 {
		t.Errorf("segments %d digests %d tokens %d warnings %v", len(h.Segments), len(h.Digests), len(h.Tokens), h.Warnings)
	}
	if len(h.Copies) != 2 || h.Copies[0].Err != nil || h.Copies[1].Err != nil || h.Copies[1].Offset != 16384 {
		t.Errorf("copies %+v", h.Copies)
	}
	if h.DefaultSlot() != 31 {
		t.Errorf("default slot %d, want 31 (Heads LUKS2)", h.DefaultSlot())
	}
}

func TestParseLUKS1Real(t *testing.T) {
	img := newImage(t, "luks1")
	h, err := ReadHeader(img)
	if err != nil {
		t.Fatal(err)
	}
	uuid := strings.TrimSpace(cryptsetupCmd(t, nil, "luksUUID", img))
	if h.Version != 1 || h.UUID != uuid || h.Cipher != "aes-xts-plain64" || h.HashSpec != "sha256" || h.KeyBytes != 64 {
		t.Errorf("%+v", h)
	}
	if len(h.Keyslots) != 1 || h.Keyslots[0].ID != 0 || h.Keyslots[0].Iterations != 1000 {
		t.Errorf("keyslots %+v", h.Keyslots)
	}
	if h.DefaultSlot() != 7 || h.SlotCount() != 8 {
		t.Errorf("default slot %d count %d", h.DefaultSlot(), h.SlotCount())
	}
	if len(h.Tokens) != 0 {
		t.Errorf("LUKS1 has tokens?")
	}
}

func TestNotLUKS(t *testing.T) {
	for _, b := range [][]byte{nil, make([]byte, 100), make([]byte, 1<<20), []byte("LUKS")} {
		_, err := ParseHeader(bytes.NewReader(b), int64(len(b)))
		var he *HeaderError
		if !errors.Is(err, ErrNotLUKS) || !errors.As(err, &he) {
			t.Errorf("%d bytes: got %v, want ErrNotLUKS in a *HeaderError", len(b), err)
		}
	}
}

// A damaged primary copy: cryptsetup falls back to the secondary, so glint
// must too, and say so.
func TestLUKS2DamagedPrimaryUsesSecondary(t *testing.T) {
	img := readFile(t, newImage(t, "luks2"))
	img[luks2BinaryHeaderSize+10] ^= 0xff // inside the primary JSON
	h, err := ParseHeader(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(h.Copies[0].Err, ErrChecksum) || h.Copies[1].Err != nil {
		t.Errorf("copies %+v", h.Copies)
	}
	if len(h.Warnings) == 0 || !strings.Contains(h.Warnings[0], "primary header copy is damaged") {
		t.Errorf("warnings %v", h.Warnings)
	}
	// Cross-check with the real cryptsetup: it still accepts the device.
	p := writeTemp(t, img)
	cryptsetupCmd(t, nil, "isLuks", p)

	// Wiping the primary magic entirely: still found via the secondary.
	copy(img[:6], make([]byte, 6))
	if _, err := ParseHeader(bytes.NewReader(img), int64(len(img))); err != nil {
		t.Errorf("no primary magic: %v", err)
	}

	// Both copies damaged: a checksum error naming the primary.
	img2 := readFile(t, newImage(t, "luks2"))
	img2[luks2BinaryHeaderSize+10] ^= 0xff
	img2[16384+luks2BinaryHeaderSize+10] ^= 0xff
	_, err = ParseHeader(bytes.NewReader(img2), int64(len(img2)))
	var he *HeaderError
	if !errors.Is(err, ErrChecksum) || !errors.As(err, &he) || he.Field != "luks2.csum" || he.Offset != offChecksum {
		t.Errorf("both damaged: %v", err)
	}
}

func TestLUKS2NewerSecondaryWins(t *testing.T) {
	img := readFile(t, newImage(t, "luks2"))
	// Give the secondary a higher seqid and a label; cryptsetup would use it.
	sec := img[16384 : 2*16384]
	binary.BigEndian.PutUint64(sec[offSeqID:], 99)
	copy(sec[offLabel:], "newer")
	fixChecksum(sec)
	h, err := ParseHeader(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if h.SeqID != 99 || h.Label != "newer" || len(h.Warnings) == 0 {
		t.Errorf("seqid %d label %q warnings %v", h.SeqID, h.Label, h.Warnings)
	}
}

// Hostile sizes: every declared size is checked before use; none of these
// may allocate more than the caps or panic.
func TestLUKS2HostileSizes(t *testing.T) {
	orig := readFile(t, newImage(t, "luks2"))
	cases := []struct {
		name  string
		edit  func(b []byte)
		want  error
		field string
	}{
		{"hdr_size 8 KiB", func(b []byte) { binary.BigEndian.PutUint64(b[offHdrSize:], 8192) }, ErrFormat, "luks2.hdr_size"},
		{"hdr_size 5 MiB", func(b []byte) { binary.BigEndian.PutUint64(b[offHdrSize:], 5<<20) }, ErrFormat, "luks2.hdr_size"},
		{"hdr_size 2^63", func(b []byte) { binary.BigEndian.PutUint64(b[offHdrSize:], 1<<63) }, ErrFormat, "luks2.hdr_size"},
		{"hdr_size 4 MiB on a small device", func(b []byte) { binary.BigEndian.PutUint64(b[offHdrSize:], 4<<20) }, ErrTruncated, "luks2.hdr_size"},
		{"hdr_offset lies", func(b []byte) { binary.BigEndian.PutUint64(b[offHdrOffset:], 4096) }, ErrFormat, "luks2.hdr_offset"},
		{"unknown checksum", func(b []byte) { copy(b[offChecksumAlg:], "crc32\x00") }, ErrUnsupported, "luks2.checksum_alg"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := append([]byte(nil), orig[:1<<20]...)
			// Edit both copies so the secondary cannot rescue the header.
			c.edit(img[:luks2BinaryHeaderSize])
			c.edit(img[16384 : 16384+luks2BinaryHeaderSize])
			binary.BigEndian.PutUint64(img[16384+offHdrOffset:], 16384)
			if c.field == "luks2.hdr_offset" {
				binary.BigEndian.PutUint64(img[16384+offHdrOffset:], 4096)
			}
			size := int64(len(img))
			if c.want == ErrTruncated {
				size = 1 << 20
			}
			_, err := ParseHeader(bytes.NewReader(img), size)
			var he *HeaderError
			if !errors.Is(err, c.want) || !errors.As(err, &he) || he.Field != c.field {
				t.Errorf("got %v, want %v in field %s", err, c.want, c.field)
			}
		})
	}
}

func TestLUKS2HostileJSON(t *testing.T) {
	orig := readFile(t, newImage(t, "luks2"))
	slot := func(off string) map[string]any {
		return map[string]any{"type": "luks2", "key_size": 64,
			"area": map[string]any{"type": "raw", "offset": off, "size": "4096", "encryption": "aes-xts-plain64", "key_size": 64},
			"kdf":  map[string]any{"type": "pbkdf2", "hash": "sha256", "iterations": 1000, "salt": "AA=="},
			"af":   map[string]any{"type": "luks1", "stripes": 4000, "hash": "sha256"}}
	}
	cases := []struct {
		name  string
		edit  func(md map[string]any)
		want  error
		field string
	}{
		{"33 keyslots", func(md map[string]any) {
			ks := map[string]any{}
			for i := 0; i < 33; i++ {
				ks[fmt.Sprint(i)] = slot("32768")
			}
			md["keyslots"] = ks
		}, ErrTooLarge, "json.keyslots"},
		{"keyslot id 32", func(md map[string]any) { md["keyslots"] = map[string]any{"32": slot("32768")} }, ErrFormat, "json.keyslots.32"},
		{"keyslot id 01", func(md map[string]any) { md["keyslots"] = map[string]any{"01": slot("32768")} }, ErrFormat, "json.keyslots.01"},
		{"keyslot area outside", func(md map[string]any) { md["keyslots"] = map[string]any{"0": slot("18446744073709547520")} }, ErrFormat, "json.keyslots.0.area"},
		{"keyslot area in header", func(md map[string]any) { md["keyslots"] = map[string]any{"0": slot("4096")} }, ErrFormat, "json.keyslots.0.area"},
		{"keyslots_size 1 TiB", func(md map[string]any) { md["config"].(map[string]any)["keyslots_size"] = "1099511627776" }, ErrTooLarge, "json.config.keyslots_size"},
		{"json_size wrong", func(md map[string]any) { md["config"].(map[string]any)["json_size"] = "4096" }, ErrFormat, "json.config.json_size"},
		{"negative number", func(md map[string]any) { md["config"].(map[string]any)["keyslots_size"] = "-1" }, ErrFormat, "json.area"},
		{"no segments", func(md map[string]any) { delete(md, "segments") }, ErrFormat, "json.area"},
		{"segment overlaps header", func(md map[string]any) {
			md["segments"].(map[string]any)["0"].(map[string]any)["offset"] = "8192"
		}, ErrFormat, "json.segments.0.offset"},
		{"digest refs slot 40", func(md map[string]any) {
			md["digests"].(map[string]any)["0"].(map[string]any)["keyslots"] = []string{"40"}
		}, ErrFormat, "json.digests.0.keyslots"},
		{"33 tokens", func(md map[string]any) {
			tk := map[string]any{}
			for i := 0; i < 33; i++ {
				tk[fmt.Sprint(i)] = map[string]any{"type": "x", "keyslots": []string{}}
			}
			md["tokens"] = tk
		}, ErrTooLarge, "json.tokens"},
		{"tpm2 token PCR 24", func(md map[string]any) {
			md["tokens"] = map[string]any{"0": map[string]any{"type": "systemd-tpm2", "keyslots": []string{"0"}, "tpm2-blob": "AAAA", "tpm2-pcrs": []int{24}}}
		}, ErrFormat, "json.tokens.0"},
		{"tpm2 token big blob", func(md map[string]any) {
			md["tokens"] = map[string]any{"0": map[string]any{"type": "systemd-tpm2", "keyslots": []string{"0"}, "tpm2-blob": strings.Repeat("A", 9000), "tpm2-pcrs": []int{7}}}
		}, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := forgeLUKS2(t, orig[:1<<20], func(_ []byte, md map[string]any) {
				if md["__done"] == nil {
					c.edit(md)
					md["__done"] = true
				}
			})
			_, err := ParseHeader(bytes.NewReader(img), int64(len(img)))
			if c.want == nil {
				if err != nil {
					t.Errorf("got %v, want success", err)
				}
				return
			}
			var he *HeaderError
			if !errors.Is(err, c.want) || !errors.As(err, &he) || he.Field != c.field {
				t.Errorf("got %v, want %v in field %s", err, c.want, c.field)
			}
		})
	}
}

func TestLUKS1Hostile(t *testing.T) {
	orig := readFile(t, newImage(t, "luks1"))[:4096]
	cases := []struct {
		name string
		edit func(b []byte)
		want error
	}{
		{"keyBytes 0", func(b []byte) { binary.BigEndian.PutUint32(b[108:], 0) }, ErrFormat},
		{"keyBytes huge", func(b []byte) { binary.BigEndian.PutUint32(b[108:], 1<<31) }, ErrFormat},
		{"bad active marker", func(b []byte) { binary.BigEndian.PutUint32(b[208:], 0x12345678) }, ErrFormat},
		{"stripes huge", func(b []byte) { binary.BigEndian.PutUint32(b[208+44:], 1<<31) }, ErrTooLarge},
		{"key material into payload", func(b []byte) { binary.BigEndian.PutUint32(b[208+40:], 4095) }, ErrFormat},
		{"key material over phdr", func(b []byte) { binary.BigEndian.PutUint32(b[208+40:], 0) }, ErrFormat},
		{"detached, far away", func(b []byte) {
			binary.BigEndian.PutUint32(b[104:], 0)
			binary.BigEndian.PutUint32(b[208+7*48+40:], 1<<31)
		}, ErrTooLarge},
		{"overlapping active slots", func(b []byte) {
			copy(b[208+48:208+96], b[208:256])
		}, ErrFormat},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := append([]byte(nil), orig...)
			c.edit(img)
			_, err := ParseHeader(bytes.NewReader(img), int64(len(img)))
			var he *HeaderError
			if !errors.Is(err, c.want) || !errors.As(err, &he) {
				t.Errorf("got %v, want %v", err, c.want)
			}
		})
	}
}

func TestTPM2TokenFromCryptsetup(t *testing.T) {
	img := newImage(t, "luks2")
	if err := testCS.AddKey(img, []byte(testPass), []byte("second"), 2); err != nil {
		t.Fatal(err)
	}
	importToken(t, img, tpm2TokenJSON(2))
	h, err := ReadHeader(img)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Tokens) != 1 {
		t.Fatalf("tokens %+v", h.Tokens)
	}
	tok := h.Tokens[0]
	if tok.Type != "systemd-tpm2" || tok.TPM2 == nil || len(tok.Keyslots) != 1 || tok.Keyslots[0] != 2 {
		t.Fatalf("token %+v", tok)
	}
	if got := tok.TPM2; got.PCRBank != "sha256" || got.PrimaryAlg != "ecc" || len(got.PCRs) != 1 || got.PCRs[0] != 7 || got.PIN || got.BlobSize != 222 {
		t.Errorf("tpm2 %+v", got)
	}
	want := "systemd-cryptenroll TPM2 token 0 on keyslot 2, bound to sha256 PCRs 7"
	if d := tok.Describe(); d != want {
		t.Errorf("Describe = %q, want %q", d, want)
	}
	if toks := h.TokensForSlot(2); len(toks) != 1 {
		t.Errorf("TokensForSlot(2) = %v", toks)
	}
}

func TestTPM2TokenBlobCap(t *testing.T) {
	raw := []byte(`{"type":"systemd-tpm2","keyslots":["0"],"tpm2-blob":"` + strings.Repeat("A", 4*maxTokenBlob/3+8) + `"}`)
	if _, err := parseTPM2Token(raw); err == nil || !strings.Contains(err.Error(), "cap") {
		t.Errorf("oversized blob: %v", err)
	}
	if _, err := parseTPM2Token([]byte(`{"type":"systemd-tpm2","keyslots":["0"]}`)); err == nil {
		t.Errorf("missing blob accepted")
	}
	if _, err := parseTPM2Token([]byte(`{"tpm2-blob":"AAAA","tpm2-policy-hash":"zz"}`)); err == nil {
		t.Errorf("non-hex policy hash accepted")
	}
}

// The largest metadata cryptsetup writes (4 MiB header copies) is inside
// every cap, and still measures to the luksHeaderBackup bytes.
func TestParseLUKS2LargestMetadata(t *testing.T) {
	needCryptsetup(t)
	img := filepath.Join(t.TempDir(), "big.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 40<<20); err != nil {
		t.Fatal(err)
	}
	cryptsetupCmd(t, []byte(testPass), append([]string{"luksFormat", "--type", "luks2", "-q", "--key-file=-",
		"--luks2-metadata-size", "4m", "--luks2-keyslots-size", "8m"}, append(testPBKDF, img)...)...)
	h, err := ReadHeader(img)
	if err != nil {
		t.Fatal(err)
	}
	if h.HeaderSize != 4<<20 || h.AreaSize != 16<<20 || h.Copies[1].Offset != 4<<20 {
		t.Errorf("hdr_size %d area %d secondary at %d", h.HeaderSize, h.AreaSize, h.Copies[1].Offset)
	}
	backup := filepath.Join(t.TempDir(), "hdr.bak")
	cryptsetupCmd(t, nil, "luksHeaderBackup", img, "--header-backup-file", backup)
	m, err := Measure(img)
	if err != nil {
		t.Fatal(err)
	}
	if m.Digest != Sum(sha256.Sum256(readFile(t, backup))) {
		t.Errorf("digest differs from luksHeaderBackup")
	}
}
