package luks

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
)

// LUKS2 spec 3: the JSON area holds one object with the members keyslots,
// tokens, segments, digests and config. Object keys of the first four are
// decimal IDs; 64-bit sizes and offsets are JSON strings.
type jsonMetadata struct {
	Keyslots map[string]json.RawMessage `json:"keyslots"`
	Tokens   map[string]json.RawMessage `json:"tokens"`
	Segments map[string]json.RawMessage `json:"segments"`
	Digests  map[string]json.RawMessage `json:"digests"`
	Config   *jsonConfig                `json:"config"`
}

type jsonConfig struct {
	JSONSize     u64string `json:"json_size"`
	KeyslotsSize u64string `json:"keyslots_size"`
	Flags        []string  `json:"flags"`
	Requirements *struct {
		Mandatory []string `json:"mandatory"`
	} `json:"requirements"`
}

type jsonKeyslot struct {
	Type     string `json:"type"`
	KeySize  int    `json:"key_size"`
	Priority *int   `json:"priority"`
	AF       struct {
		Type    string `json:"type"`
		Stripes int    `json:"stripes"`
		Hash    string `json:"hash"`
	} `json:"af"`
	Area struct {
		Type       string    `json:"type"`
		Offset     u64string `json:"offset"`
		Size       u64string `json:"size"`
		Encryption string    `json:"encryption"`
		KeySize    int       `json:"key_size"`
	} `json:"area"`
	KDF struct {
		Type       string `json:"type"`
		Hash       string `json:"hash"`
		Iterations int    `json:"iterations"`
		Time       int    `json:"time"`
		Memory     int    `json:"memory"`
	} `json:"kdf"`
}

type jsonSegment struct {
	Type       string    `json:"type"`
	Offset     u64string `json:"offset"`
	Size       string    `json:"size"`
	Encryption string    `json:"encryption"`
	SectorSize int       `json:"sector_size"`
	Integrity  *struct {
		Type string `json:"type"`
	} `json:"integrity"`
	Flags []string `json:"flags"`
}

type jsonDigest struct {
	Type     string   `json:"type"`
	Keyslots []string `json:"keyslots"`
	Segments []string `json:"segments"`
}

type jsonToken struct {
	Type     string   `json:"type"`
	Keyslots []string `json:"keyslots"`
}

// u64string is a LUKS2 64-bit number, which the spec stores as a JSON
// string because JSON numbers are not exact beyond 2^53.
type u64string uint64

func (u *u64string) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a decimal string: %w", err)
	}
	v, err := parseDecimal(s)
	if err != nil {
		return err
	}
	*u = u64string(v)
	return nil
}

// parseDecimal accepts only plain decimal digits, as libcryptsetup's
// json_str_to_uint64 does (no sign, no spaces, no hex).
func parseDecimal(s string) (uint64, error) {
	if s == "" || len(s) > 20 {
		return 0, fmt.Errorf("%q is not a decimal number", s)
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a decimal number", s)
		}
	}
	return strconv.ParseUint(s, 10, 64)
}

// parseID parses an object key or reference ("0".."31"), rejecting leading
// zeros so "1" and "01" cannot name the same slot in two ways.
func parseID(s string, limit int) (int, error) {
	v, err := parseDecimal(s)
	if err != nil {
		return 0, err
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("ID %q has a leading zero", s)
	}
	if v >= uint64(limit) {
		return 0, fmt.Errorf("ID %s is out of range (0..%d)", s, limit-1)
	}
	return int(v), nil
}

func decodeLUKS2Metadata(c *luks2Copy) (*Header, error) {
	jsonOff := c.offset + luks2BinaryHeaderSize
	field := func(name string) string { return "json." + name }
	if len(c.json) > maxJSONSize {
		return nil, errorf(jsonOff, field("area"), ErrTooLarge, "%d bytes", len(c.json))
	}
	var md jsonMetadata
	dec := json.NewDecoder(bytes.NewReader(c.json))
	if err := dec.Decode(&md); err != nil {
		return nil, errorf(jsonOff, field("area"), ErrFormat, "%v", err)
	}
	if dec.More() {
		return nil, errorf(jsonOff, field("area"), ErrFormat, "data after the JSON object")
	}
	if md.Keyslots == nil || md.Segments == nil || md.Digests == nil || md.Config == nil {
		return nil, errorf(jsonOff, field("area"), ErrFormat, "keyslots, segments, digests and config are all required (LUKS2 spec 3)")
	}
	switch {
	case len(md.Keyslots) > MaxLUKS2Keyslots:
		return nil, errorf(jsonOff, field("keyslots"), ErrTooLarge, "%d keyslots, LUKS2 allows %d", len(md.Keyslots), MaxLUKS2Keyslots)
	case len(md.Tokens) > MaxLUKS2Tokens:
		return nil, errorf(jsonOff, field("tokens"), ErrTooLarge, "%d tokens, LUKS2 allows %d", len(md.Tokens), MaxLUKS2Tokens)
	case len(md.Segments) > maxSegments:
		return nil, errorf(jsonOff, field("segments"), ErrTooLarge, "%d segments (cap %d)", len(md.Segments), maxSegments)
	case len(md.Digests) > maxDigests:
		return nil, errorf(jsonOff, field("digests"), ErrTooLarge, "%d digests (cap %d)", len(md.Digests), maxDigests)
	}

	h := &Header{
		Version:     2,
		UUID:        c.uuid,
		Label:       c.label,
		Subsystem:   c.subsystem,
		SeqID:       c.seqID,
		HeaderSize:  c.hdrSize,
		ChecksumAlg: c.checksumAlg,
	}

	// LUKS2 spec 3.5: json_size is the JSON area size; keyslots_size the
	// binary keyslot area that follows both header copies.
	cfg := md.Config
	if uint64(cfg.JSONSize) != c.hdrSize-luks2BinaryHeaderSize {
		return nil, errorf(jsonOff, field("config.json_size"), ErrFormat,
			"%d, but hdr_size %d leaves %d bytes for JSON", cfg.JSONSize, c.hdrSize, c.hdrSize-luks2BinaryHeaderSize)
	}
	if cfg.KeyslotsSize > maxKeyslotsAreaSize {
		return nil, errorf(jsonOff, field("config.keyslots_size"), ErrTooLarge, "%d bytes (cap %d)", cfg.KeyslotsSize, maxKeyslotsAreaSize)
	}
	if cfg.KeyslotsSize%4096 != 0 {
		return nil, errorf(jsonOff, field("config.keyslots_size"), ErrFormat, "%d is not a multiple of 4096", cfg.KeyslotsSize)
	}
	areaStart := 2 * c.hdrSize
	areaEnd := areaStart + uint64(cfg.KeyslotsSize)
	h.AreaSize = areaEnd
	if err := checkStrings(cfg.Flags, field("config.flags"), jsonOff); err != nil {
		return nil, err
	}
	h.Flags = cfg.Flags
	if cfg.Requirements != nil {
		if err := checkStrings(cfg.Requirements.Mandatory, field("config.requirements.mandatory"), jsonOff); err != nil {
			return nil, err
		}
		h.Requirements = cfg.Requirements.Mandatory
	}

	slots := map[int]Keyslot{}
	for key, raw := range md.Keyslots {
		f := field("keyslots." + key)
		id, err := parseID(key, MaxLUKS2Keyslots)
		if err != nil {
			return nil, errorf(jsonOff, f, ErrFormat, "%v", err)
		}
		var ks jsonKeyslot
		if err := json.Unmarshal(raw, &ks); err != nil {
			return nil, errorf(jsonOff, f, ErrFormat, "%v", err)
		}
		off, size := uint64(ks.Area.Offset), uint64(ks.Area.Size)
		// libcryptsetup LUKS2_keyslots_validate: every keyslot area lies
		// inside the keyslots area. Checked without overflow.
		if off < areaStart || size > areaEnd || off > areaEnd-size {
			return nil, errorf(jsonOff, f+".area", ErrFormat,
				"area %d+%d lies outside the keyslots area %d..%d", off, size, areaStart, areaEnd)
		}
		if ks.KeySize < 0 || ks.KeySize > 1024 || ks.AF.Stripes < 0 || ks.KDF.Iterations < 0 || ks.KDF.Memory < 0 || ks.KDF.Time < 0 {
			return nil, errorf(jsonOff, f, ErrFormat, "negative or absurd size")
		}
		prio := 1
		if ks.Priority != nil {
			prio = *ks.Priority
		}
		iters := ks.KDF.Iterations
		if ks.KDF.Type != "pbkdf2" {
			iters = ks.KDF.Time
		}
		sum := sha256.Sum256(raw)
		slots[id] = Keyslot{
			ID: id, Type: ks.Type, KeySize: ks.KeySize, Priority: prio,
			KDF: ks.KDF.Type, KDFHash: ks.KDF.Hash, Iterations: iters, MemoryKiB: ks.KDF.Memory,
			AreaOffset: off, AreaSize: size, Encryption: ks.Area.Encryption, Stripes: ks.AF.Stripes,
			Fingerprint: hex.EncodeToString(sum[:8]),
		}
	}
	for _, id := range sortedKeys(slots) {
		h.Keyslots = append(h.Keyslots, slots[id])
	}

	segs := map[int]Segment{}
	for key, raw := range md.Segments {
		f := field("segments." + key)
		id, err := parseID(key, maxSegments)
		if err != nil {
			return nil, errorf(jsonOff, f, ErrFormat, "%v", err)
		}
		var s jsonSegment
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, errorf(jsonOff, f, ErrFormat, "%v", err)
		}
		if s.Size != "dynamic" {
			if _, err := parseDecimal(s.Size); err != nil {
				return nil, errorf(jsonOff, f+".size", ErrFormat, "%v", err)
			}
		}
		// A segment must not overlap the metadata (LUKS2 spec 3.3); offset 0
		// means a detached header.
		if s.Offset != 0 && uint64(s.Offset) < areaEnd {
			return nil, errorf(jsonOff, f+".offset", ErrFormat, "data at byte %d overlaps the header area ending at %d", s.Offset, areaEnd)
		}
		if err := checkStrings(s.Flags, f+".flags", jsonOff); err != nil {
			return nil, err
		}
		seg := Segment{ID: id, Type: s.Type, Offset: uint64(s.Offset), Size: s.Size,
			Encryption: s.Encryption, SectorSize: s.SectorSize, Flags: s.Flags}
		if s.Integrity != nil {
			seg.Integrity = s.Integrity.Type
		}
		segs[id] = seg
	}
	for _, id := range sortedKeys(segs) {
		h.Segments = append(h.Segments, segs[id])
	}
	for _, s := range h.Segments {
		if s.Type == "crypt" {
			h.Cipher = s.Encryption
			h.PayloadOffset = s.Offset
			break
		}
	}

	digs := map[int]KeyDigest{}
	for key, raw := range md.Digests {
		f := field("digests." + key)
		id, err := parseID(key, maxDigests)
		if err != nil {
			return nil, errorf(jsonOff, f, ErrFormat, "%v", err)
		}
		var d jsonDigest
		if err := json.Unmarshal(raw, &d); err != nil {
			return nil, errorf(jsonOff, f, ErrFormat, "%v", err)
		}
		ks, err := parseIDList(d.Keyslots, MaxLUKS2Keyslots)
		if err != nil {
			return nil, errorf(jsonOff, f+".keyslots", ErrFormat, "%v", err)
		}
		ss, err := parseIDList(d.Segments, maxSegments)
		if err != nil {
			return nil, errorf(jsonOff, f+".segments", ErrFormat, "%v", err)
		}
		digs[id] = KeyDigest{ID: id, Type: d.Type, Keyslots: ks, Segments: ss}
	}
	for _, id := range sortedKeys(digs) {
		h.Digests = append(h.Digests, digs[id])
	}

	toks := map[int]Token{}
	for key, raw := range md.Tokens {
		f := field("tokens." + key)
		id, err := parseID(key, MaxLUKS2Tokens)
		if err != nil {
			return nil, errorf(jsonOff, f, ErrFormat, "%v", err)
		}
		var t jsonToken
		if err := json.Unmarshal(raw, &t); err != nil {
			return nil, errorf(jsonOff, f, ErrFormat, "%v", err)
		}
		ks, err := parseIDList(t.Keyslots, MaxLUKS2Keyslots)
		if err != nil {
			return nil, errorf(jsonOff, f+".keyslots", ErrFormat, "%v", err)
		}
		tok := Token{ID: id, Type: t.Type, Keyslots: ks}
		if t.Type == tpm2TokenType {
			tpm2, err := parseTPM2Token(raw)
			if err != nil {
				return nil, errorf(jsonOff, f, ErrFormat, "%v", err)
			}
			tok.TPM2 = tpm2
		}
		toks[id] = tok
	}
	for _, id := range sortedKeys(toks) {
		h.Tokens = append(h.Tokens, toks[id])
	}
	return h, nil
}

func parseIDList(refs []string, limit int) ([]int, error) {
	if len(refs) > maxIDRefs {
		return nil, fmt.Errorf("%d references (cap %d)", len(refs), maxIDRefs)
	}
	out := make([]int, 0, len(refs))
	for _, r := range refs {
		id, err := parseID(r, limit)
		if err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, nil
}

// checkStrings bounds a list of short strings (flags, requirements).
func checkStrings(list []string, field string, off int64) error {
	if len(list) > 64 {
		return errorf(off, field, ErrTooLarge, "%d entries", len(list))
	}
	for _, s := range list {
		if len(s) > 256 {
			return errorf(off, field, ErrTooLarge, "an entry of %d bytes", len(s))
		}
	}
	return nil
}
