package card

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Data object tags (OpenPGP card spec 3.4, section 4.4.1).
const (
	tagAID               uint16 = 0x4F
	tagLoginData         uint16 = 0x5E
	tagName              uint16 = 0x5B
	tagLanguage          uint16 = 0x5F2D
	tagSex               uint16 = 0x5F35
	tagURL               uint16 = 0x5F50
	tagHistorical        uint16 = 0x5F52
	tagCardholder        uint16 = 0x65
	tagAppData           uint16 = 0x6E
	tagDiscretionary     uint16 = 0x73
	tagSecuritySupport   uint16 = 0x7A
	tagSigCounter        uint16 = 0x93
	tagExtCaps           uint16 = 0xC0
	tagAttrSig           uint16 = 0xC1
	tagAttrDec           uint16 = 0xC2
	tagAttrAut           uint16 = 0xC3
	tagPWStatus          uint16 = 0xC4
	tagFingerprints      uint16 = 0xC5
	tagCAFingerprints    uint16 = 0xC6
	tagFprSig            uint16 = 0xC7
	tagFprDec            uint16 = 0xC8
	tagFprAut            uint16 = 0xC9
	tagGenTimes          uint16 = 0xCD
	tagGenTimeSig        uint16 = 0xCE
	tagGenTimeDec        uint16 = 0xCF
	tagGenTimeAut        uint16 = 0xD0
	tagResettingCode     uint16 = 0xD3
	tagExtLengthInfo     uint16 = 0x7F66
	tagPublicKey         uint16 = 0x7F49
	tagKeyInformation    uint16 = 0xDE
	tagExtendedHeader    uint16 = 0x4D
	tagCardholderCertTpl uint16 = 0x7F48
	tagKeyData           uint16 = 0x5F48
)

// Slot is one of the card's three key slots (spec 3.4 section 4.4.3.7).
type Slot int

const (
	SlotSign Slot = iota
	SlotDecrypt
	SlotAuth
)

// Slots lists the three slots in the card's order.
var Slots = []Slot{SlotSign, SlotDecrypt, SlotAuth}

func (s Slot) String() string {
	switch s {
	case SlotSign:
		return "signature"
	case SlotDecrypt:
		return "encryption"
	case SlotAuth:
		return "authentication"
	}
	return fmt.Sprintf("slot %d", int(s))
}

// crt is the control reference template that names the slot in GENERATE
// ASYMMETRIC KEY PAIR and key import (spec 3.4 section 7.2.14).
func (s Slot) crt() byte { return [...]byte{0xB6, 0xB8, 0xA4}[s] }

func (s Slot) attrTag() uint16    { return [...]uint16{tagAttrSig, tagAttrDec, tagAttrAut}[s] }
func (s Slot) fprTag() uint16     { return [...]uint16{tagFprSig, tagFprDec, tagFprAut}[s] }
func (s Slot) genTimeTag() uint16 { return [...]uint16{tagGenTimeSig, tagGenTimeDec, tagGenTimeAut}[s] }

// AID is the application identifier (spec 3.4 section 4.2.1): RID D2 76 00
// 01 24, application 01, version, manufacturer, serial number, RFU.
type AID struct {
	Raw          [16]byte
	Major, Minor int // spec version the card implements (BCD in the AID)
	Manufacturer uint16
	Serial       uint32
}

// openPGPAID is the part of the AID that SELECT names (RID + PIX prefix).
var openPGPAID = []byte{0xD2, 0x76, 0x00, 0x01, 0x24, 0x01}

// ParseAID decodes the 16-byte AID.
func ParseAID(untrusted []byte) (AID, error) {
	var a AID
	if len(untrusted) != 16 {
		return a, parseErrorf("AID", "length", 0, "%d bytes, want 16", len(untrusted))
	}
	for i, b := range openPGPAID {
		if untrusted[i] != b {
			return a, parseErrorf("AID", "RID", i, "not the OpenPGP application (%X)", untrusted[:6])
		}
	}
	copy(a.Raw[:], untrusted)
	a.Major = bcd(untrusted[6])
	a.Minor = bcd(untrusted[7])
	a.Manufacturer = binary.BigEndian.Uint16(untrusted[8:10])
	a.Serial = binary.BigEndian.Uint32(untrusted[10:14])
	return a, nil
}

func bcd(b byte) int { return int(b>>4)*10 + int(b&0xF) }

// SerialString is the serial as gpg prints it (8 hex digits).
func (a AID) SerialString() string { return fmt.Sprintf("%08X", a.Serial) }

// ManufacturerName names the card's maker from the AID's manufacturer id
// (the list GnuPG keeps, for the common ones).
func (a AID) ManufacturerName() string {
	switch a.Manufacturer {
	case 0x0005:
		return "ZeitControl"
	case 0x0006:
		return "Yubico"
	case 0x000F:
		return "Nitrokey"
	case 0x0042:
		return "GnuPG e.V."
	case 0xF1D0:
		return "CanoKeys"
	case 0xF517:
		return "FSIJ (Gnuk)"
	case 0xFFFF:
		return "test card"
	}
	if a.Manufacturer >= 0xFF00 {
		return "unmanaged S/N range"
	}
	return fmt.Sprintf("manufacturer %04X", a.Manufacturer)
}

// ExtendedCapabilities is DO C0 (spec 3.4 section 4.4.3.7; 2.x 4.4.3.7).
type ExtendedCapabilities struct {
	SecureMessaging, GetChallenge, KeyImport, PWStatusChangeable bool
	PrivateDOs, AlgorithmChangeable, AES, KDF                    bool
	MaxChallenge, MaxCertLength                                  int
	// 2.x only: the largest command and response data; 3.x moved these
	// to DO 7F66.
	MaxCommand, MaxResponse int
}

func parseExtCaps(untrusted []byte, major int) (ExtendedCapabilities, error) {
	var e ExtendedCapabilities
	if len(untrusted) < 10 {
		return e, parseErrorf("extended capabilities", "length", 0, "%d bytes, want 10", len(untrusted))
	}
	f := untrusted[0]
	e.SecureMessaging = f&0x80 != 0
	e.GetChallenge = f&0x40 != 0
	e.KeyImport = f&0x20 != 0
	e.PWStatusChangeable = f&0x10 != 0
	e.PrivateDOs = f&0x08 != 0
	e.AlgorithmChangeable = f&0x04 != 0
	e.AES = f&0x02 != 0
	e.KDF = f&0x01 != 0
	e.MaxChallenge = int(binary.BigEndian.Uint16(untrusted[2:4]))
	e.MaxCertLength = int(binary.BigEndian.Uint16(untrusted[4:6]))
	if major < 3 {
		e.MaxCommand = int(binary.BigEndian.Uint16(untrusted[6:8]))
		e.MaxResponse = int(binary.BigEndian.Uint16(untrusted[8:10]))
	}
	return e, nil
}

// PWStatus is DO C4 (spec 3.4 section 4.4.3.7).
type PWStatus struct {
	// PW1ValidForSeveral: one VERIFY of PW1 (81) covers several signatures;
	// false (the default) means every signature needs the PIN again.
	PW1ValidForSeveral    bool
	MaxPW1, MaxRC, MaxPW3 int
	// Tries left before the PIN is blocked; 0 = blocked.
	PW1Tries, RCTries, PW3Tries int
}

// ParsePWStatus decodes the 7 PW status bytes.
func ParsePWStatus(untrusted []byte) (PWStatus, error) {
	if len(untrusted) < 7 {
		return PWStatus{}, parseErrorf("PW status", "length", 0, "%d bytes, want 7", len(untrusted))
	}
	return PWStatus{
		PW1ValidForSeveral: untrusted[0] != 0,
		MaxPW1:             int(untrusted[1] & 0x7F), // bit 8: PIN block format 2 (3.x)
		MaxRC:              int(untrusted[2]),
		MaxPW3:             int(untrusted[3]),
		PW1Tries:           int(untrusted[4]),
		RCTries:            int(untrusted[5]),
		PW3Tries:           int(untrusted[6]),
	}, nil
}

// Tries returns the retry counter for pw.
func (s PWStatus) Tries(pw PW) int {
	if pw == PW3 {
		return s.PW3Tries
	}
	return s.PW1Tries
}

// KeyInfo is what the card says about one slot.
type KeyInfo struct {
	Algorithm   Algorithm
	Fingerprint [20]byte // all zero: no key
	Created     time.Time
}

// Present reports whether a fingerprint was recorded for the slot (gpg and
// glint write it right after generating; a card without one has no usable key).
func (k KeyInfo) Present() bool { return k.Fingerprint != [20]byte{} }

// ApplicationData is DO 6E, read once after SELECT (spec 3.4 section 4.4.3).
type ApplicationData struct {
	AID        AID
	Historical []byte
	ExtCaps    ExtendedCapabilities
	PWStatus   PWStatus
	Keys       [3]KeyInfo
	// Largest command and response data the card takes (7F66 on 3.x, C0
	// on 2.x); 0 when the card does not say.
	MaxCommand, MaxResponse int
	// Chaining and ExtendedLength come from the card capabilities in the
	// historical bytes (ISO 7816-4 section 8.1.1.2.7).
	Chaining, ExtendedLength bool
}

// maxAppData caps the DO 6E the parser accepts (cards send about 300 bytes).
const maxAppData = 4096

// ParseApplicationData decodes DO 6E.
func ParseApplicationData(untrusted []byte) (*ApplicationData, error) {
	const f = "application data"
	if len(untrusted) > maxAppData {
		return nil, parseErrorf(f, "length", 0, "%d bytes: %w", len(untrusted), ErrTooLarge)
	}
	// Most cards answer GET DATA 6E with the 6E wrapper, some without.
	body := untrusted
	if v, ok, err := FindTLV(untrusted, tagAppData); err != nil {
		return nil, err
	} else if ok {
		body = v
	}
	get := func(tag uint16, required bool) ([]byte, error) {
		v, ok, err := FindTLV(body, tag)
		if err != nil {
			return nil, err
		}
		if !ok && required {
			return nil, parseErrorf(f, fmt.Sprintf("DO %02X", tag), 0, "missing")
		}
		return v, nil
	}
	d := &ApplicationData{}
	v, err := get(tagAID, true)
	if err != nil {
		return nil, err
	}
	if d.AID, err = ParseAID(v); err != nil {
		return nil, err
	}
	if v, err = get(tagHistorical, false); err != nil {
		return nil, err
	}
	d.Historical = append([]byte(nil), v...)
	d.Chaining, d.ExtendedLength = cardCapabilities(d.Historical)
	if v, err = get(tagExtCaps, true); err != nil {
		return nil, err
	}
	if d.ExtCaps, err = parseExtCaps(v, d.AID.Major); err != nil {
		return nil, err
	}
	d.MaxCommand, d.MaxResponse = d.ExtCaps.MaxCommand, d.ExtCaps.MaxResponse
	if v, err = get(tagExtLengthInfo, false); err != nil {
		return nil, err
	}
	if v != nil {
		// 02 02 max-command 02 02 max-response (spec 3.4 section 4.1.3.1).
		if len(v) != 8 || v[0] != 2 || v[1] != 2 || v[4] != 2 || v[5] != 2 {
			return nil, parseErrorf(f, "extended length information", 0, "% X", v)
		}
		d.MaxCommand = int(binary.BigEndian.Uint16(v[2:4]))
		d.MaxResponse = int(binary.BigEndian.Uint16(v[6:8]))
	}
	if v, err = get(tagPWStatus, true); err != nil {
		return nil, err
	}
	if d.PWStatus, err = ParsePWStatus(v); err != nil {
		return nil, err
	}
	fprs, err := get(tagFingerprints, true)
	if err != nil {
		return nil, err
	}
	if len(fprs) < 60 {
		return nil, parseErrorf(f, "fingerprints", 0, "%d bytes, want 60", len(fprs))
	}
	times, err := get(tagGenTimes, false)
	if err != nil {
		return nil, err
	}
	if times != nil && len(times) < 12 {
		return nil, parseErrorf(f, "generation times", 0, "%d bytes, want 12", len(times))
	}
	for _, s := range Slots {
		k := &d.Keys[s]
		if v, err = get(s.attrTag(), true); err != nil {
			return nil, err
		}
		if k.Algorithm, err = ParseAlgorithm(v); err != nil {
			return nil, err
		}
		copy(k.Fingerprint[:], fprs[20*int(s):])
		if times != nil {
			if t := binary.BigEndian.Uint32(times[4*int(s):]); t != 0 {
				k.Created = time.Unix(int64(t), 0).UTC()
			}
		}
	}
	return d, nil
}

// cardCapabilities reads the third byte of the "card capabilities" compact
// TLV (tag 7, length 3) in historical bytes that start with category 00
// (ISO 7816-4 section 8.1.1.2.7): bit 8 command chaining, bit 7 extended
// Lc and Le fields.
func cardCapabilities(hist []byte) (chaining, extended bool) {
	if len(hist) < 1 || hist[0] != 0x00 {
		return false, false
	}
	// Category 00: compact TLVs, then a 3-byte status indicator at the end.
	end := len(hist) - 3
	for off := 1; off < end; {
		tag, l := hist[off]>>4, int(hist[off]&0x0F)
		off++
		if off+l > end {
			return false, false
		}
		if tag == 7 && l == 3 {
			b := hist[off+2]
			return b&0x80 != 0, b&0x40 != 0
		}
		off += l
	}
	return false, false
}
