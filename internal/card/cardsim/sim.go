package cardsim

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/glint-boot/glint/internal/card"
)

// Options configure a simulated card.
type Options struct {
	// Path keeps the card's state in a file (created on first use, saved
	// after every change); empty keeps it in memory only.
	Path string
	// Serial is the card's serial number (default 0x00000042).
	Serial uint32
	// Spec2 makes the card an OpenPGP card 2.1: 10-byte extended
	// capabilities with the maximum lengths, no DO 7F66, no key information
	// DO, no VERIFY without data, no Ed25519 or P-256.
	Spec2 bool
	// NoExtendedLength clears the extended Lc/Le bit of the card
	// capabilities, so clients must chain and use GET RESPONSE.
	NoExtendedLength bool
	// ATR is the answer to reset; nil means ATRT1 (for pcscd and vpcd).
	ATR []byte
	// Log, when set, gets one line per APDU (INS and status word; never data).
	Log func(format string, a ...any)
}

// manufacturerTest is the AID manufacturer id of test cards (FFFF).
const manufacturerTest = 0xFFFF

// Card is one simulated OpenPGP card.
type Card struct {
	mu   sync.Mutex
	opts Options
	st   *State
	// Session state, lost at power-off or SELECT.
	verified map[card.PW]bool
	chain    *card.Command // data collected from a command chain
	pending  []byte        // response bytes waiting for GET RESPONSE
	// Timings of the last key generation, for benchmarks.
	lastGen time.Duration
}

// New makes a card, loading its state from opts.Path when the file exists.
func New(opts Options) (*Card, error) {
	if opts.Serial == 0 {
		opts.Serial = 0x42
	}
	version := [2]byte{0x03, 0x04}
	if opts.Spec2 {
		version = [2]byte{0x02, 0x01}
	}
	c := &Card{opts: opts, verified: map[card.PW]bool{}}
	if opts.Path != "" {
		st, err := loadState(opts.Path)
		switch {
		case err == nil:
			c.st = st
		case isNotExist(err):
		default:
			return nil, err
		}
	}
	if c.st == nil {
		c.st = factory(version, manufacturerTest, opts.Serial)
		if err := c.st.save(opts.Path); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// ATR returns the answer to reset.
func (c *Card) ATR() []byte {
	if c.opts.ATR != nil {
		return c.opts.ATR
	}
	return ATRT1()
}

// historical are the card's historical bytes (ISO 7816-4 8.1.1): category
// 00, card capabilities (tag 7: byte 3 = chaining, extended length), then
// the status indicator (life cycle 05 operational, 9000).
func (c *Card) historical() []byte {
	caps := byte(0x80) // command chaining
	if !c.opts.NoExtendedLength {
		caps |= 0x40
	}
	return []byte{0x00, 0x73, 0x00, 0x00, caps, 0x05, 0x90, 0x00}
}

// ATRT1 is an answer to reset announcing T=1 (for pcscd over vpcd).
func ATRT1() []byte { return atr(true) }

// ATRT0 is an answer to reset with no interface bytes (T=0), for QEMU's
// usb-ccid, whose reader descriptor offers T=0 only.
func ATRT0() []byte { return atr(false) }

func atr(t1 bool) []byte {
	hist := []byte{0x00, 0x73, 0x00, 0x00, 0xC0, 0x05, 0x90, 0x00}
	if !t1 {
		return append([]byte{0x3B, byte(len(hist))}, hist...)
	}
	// TS, T0 (TD1 present, K historical bytes), TD1 (T=1), hist, TCK.
	b := append([]byte{0x3B, 0x80 | byte(len(hist)), 0x01}, hist...)
	var tck byte
	for _, x := range b[1:] {
		tck ^= x
	}
	return append(b, tck)
}

// PowerOff ends the session: verified PINs and pending data are dropped.
func (c *Card) PowerOff() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reset()
}

func (c *Card) reset() {
	c.verified = map[card.PW]bool{}
	c.chain = nil
	c.pending = nil
}

// LastGenerate is how long the last GENERATE ASYMMETRIC KEY PAIR took.
func (c *Card) LastGenerate() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastGen
}

// State returns a copy of the card's state (tests read retry counters).
func (c *Card) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return *c.st
}

// Process answers one command APDU with a response APDU.
func (c *Card) Process(apdu []byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	data, sw := c.process(apdu)
	if c.opts.Log != nil {
		ins := byte(0)
		if len(apdu) > 1 {
			ins = apdu[1]
		}
		c.opts.Log("cardsim: INS %02X -> %d bytes, SW %04X", ins, len(data), sw)
	}
	return binary.BigEndian.AppendUint16(data, sw)
}

func sw(s uint16) ([]byte, uint16) { return nil, s }

func (c *Card) process(apdu []byte) ([]byte, uint16) {
	cmd, ext, err := card.ParseCommand(apdu)
	if err != nil {
		return sw(card.SWWrongLength)
	}
	if cmd.CLA&^0x10 != 0x00 {
		return sw(card.SWCLANotSupported)
	}
	if cmd.INS == 0xC0 { // GET RESPONSE
		if c.pending == nil {
			return sw(0x6985)
		}
		return c.respond(c.pending, cmd.Ne, ext)
	}
	c.pending = nil
	if cmd.CLA&0x10 != 0 { // command chaining (ISO 7816-4 5.1.1.1)
		if c.chain != nil && (c.chain.INS != cmd.INS || c.chain.P1 != cmd.P1 || c.chain.P2 != cmd.P2) {
			c.chain = nil
			return sw(card.SWLastCommandInChain)
		}
		if c.chain == nil {
			c.chain = &card.Command{INS: cmd.INS, P1: cmd.P1, P2: cmd.P2}
		}
		if len(c.chain.Data)+len(cmd.Data) > maxChainData {
			c.chain = nil
			return sw(card.SWWrongLength)
		}
		c.chain.Data = append(c.chain.Data, cmd.Data...)
		return sw(card.SWOK)
	}
	if c.chain != nil {
		if c.chain.INS != cmd.INS || c.chain.P1 != cmd.P1 || c.chain.P2 != cmd.P2 {
			c.chain = nil
			return sw(card.SWLastCommandInChain)
		}
		cmd.Data = append(c.chain.Data, cmd.Data...)
		c.chain = nil
	}
	if c.st.Terminated {
		switch cmd.INS {
		case 0x44:
			return c.activate()
		case 0xA4:
			if bytes.HasPrefix(cmd.Data, openPGPAIDPrefix) {
				return sw(card.SWTerminated)
			}
			return sw(card.SWFileNotFound)
		}
		return sw(card.SWTerminated)
	}
	data, s := c.dispatch(cmd)
	if s != card.SWOK {
		return data, s
	}
	return c.respond(data, cmd.Ne, ext)
}

// maxChainData bounds the data of one command chain (a key import of
// RSA-4096 is about 600 bytes).
const maxChainData = 4096

var openPGPAIDPrefix = []byte{0xD2, 0x76, 0x00, 0x01, 0x24, 0x01}

// respond returns what fits in Ne and keeps the rest for GET RESPONSE
// (61xx), as ISO 7816-4 5.3.4 and T=0 cards do. With Ne = 0 and data to
// return, the whole answer waits behind 61xx (a T=0 case 4 command).
func (c *Card) respond(data []byte, ne int, ext bool) ([]byte, uint16) {
	if len(data) <= ne {
		c.pending = nil
		return data, card.SWOK
	}
	if !ext && ne > 256 {
		ne = 256
	}
	out, rest := data[:ne], data[ne:]
	c.pending = append([]byte(nil), rest...)
	n := len(rest)
	if n > 255 {
		n = 0 // 6100: 256 or more bytes remain
	}
	return append([]byte(nil), out...), 0x6100 | uint16(n)
}

func (c *Card) dispatch(cmd card.Command) ([]byte, uint16) {
	switch cmd.INS {
	case 0xA4:
		return c.selectApp(cmd)
	case 0xCA:
		return c.getData(uint16(cmd.P1)<<8 | uint16(cmd.P2))
	case 0x20:
		return c.verify(cmd)
	case 0x24:
		return c.changeReference(cmd)
	case 0x2C:
		return c.resetRetryCounter(cmd)
	case 0xDA:
		return c.putData(uint16(cmd.P1)<<8|uint16(cmd.P2), cmd.Data)
	case 0xDB:
		return c.importKey(cmd)
	case 0x47:
		return c.generate(cmd)
	case 0x2A:
		if cmd.P1 == 0x9E && cmd.P2 == 0x9A {
			return c.sign(cmd.Data)
		}
		return sw(card.SWWrongP1P2)
	case 0xE6:
		return c.terminate()
	case 0x44:
		return sw(card.SWOK) // ACTIVATE FILE on an active application
	}
	return sw(card.SWINSNotSupported)
}

func (c *Card) selectApp(cmd card.Command) ([]byte, uint16) {
	if cmd.P1 != 0x04 || !bytes.HasPrefix(cmd.Data, openPGPAIDPrefix) {
		return sw(card.SWFileNotFound)
	}
	c.reset()
	return sw(card.SWOK)
}

func (c *Card) save() uint16 {
	if err := c.st.save(c.opts.Path); err != nil {
		return card.SWMemoryFailure
	}
	return card.SWOK
}

func (c *Card) spec2() bool { return c.st.Version[0] < 3 }

func (c *Card) aid() []byte {
	a := append([]byte(nil), openPGPAIDPrefix...)
	a = append(a, c.st.Version[:]...)
	a = binary.BigEndian.AppendUint16(a, c.st.Manufacturer)
	a = binary.BigEndian.AppendUint32(a, c.st.Serial)
	return append(a, 0, 0)
}

func (c *Card) pwStatus() []byte {
	several := byte(0)
	if c.st.PW1ValidForSeveral {
		several = 1
	}
	return []byte{several, 127, 127, 127, byte(c.st.PW1Tries), byte(c.st.RCTries), byte(c.st.PW3Tries)}
}

func (c *Card) extCaps() []byte {
	// Key import, PW status changeable, private DOs, algorithm attributes
	// changeable; no secure messaging, GET CHALLENGE, AES or KDF.
	b := []byte{0x3C, 0x00, 0x00, 0x00, 0x08, 0x00}
	if c.spec2() {
		return append(b, 0x07, 0xFF, 0x07, 0xFF) // max command, max response
	}
	return append(b, 0x00, 0xFF, 0x00, 0x00) // max special DO length, PIN block 2, MSE
}

func (c *Card) appData() []byte {
	var disc []byte
	disc = card.AppendTLV(disc, 0xC0, c.extCaps())
	for i, t := range []uint16{0xC1, 0xC2, 0xC3} {
		disc = card.AppendTLV(disc, t, c.st.Attrs[i])
	}
	disc = card.AppendTLV(disc, 0xC4, c.pwStatus())
	disc = card.AppendTLV(disc, 0xC5, c.fingerprints(c.st.Fprs))
	disc = card.AppendTLV(disc, 0xC6, c.fingerprints(c.st.CAFprs))
	disc = card.AppendTLV(disc, 0xCD, c.times())
	if !c.spec2() {
		disc = card.AppendTLV(disc, 0xDE, []byte{1, c.st.KeyOrigin[0], 2, c.st.KeyOrigin[1], 3, c.st.KeyOrigin[2]})
	}
	var app []byte
	app = card.AppendTLV(app, 0x4F, c.aid())
	app = card.AppendTLV(app, 0x5F52, c.historical())
	if !c.spec2() {
		app = card.AppendTLV(app, 0x7F66, []byte{0x02, 0x02, 0x07, 0xFF, 0x02, 0x02, 0x07, 0xFF})
	}
	app = card.AppendTLV(app, 0x73, disc)
	return card.AppendTLV(nil, 0x6E, app)
}

func (c *Card) fingerprints(f [3][20]byte) []byte {
	var b []byte
	for _, x := range f {
		b = append(b, x[:]...)
	}
	return b
}

func (c *Card) times() []byte {
	var b []byte
	for _, t := range c.st.Times {
		b = binary.BigEndian.AppendUint32(b, t)
	}
	return b
}

func (c *Card) getData(tag uint16) ([]byte, uint16) {
	switch tag {
	case 0x4F:
		return c.aid(), card.SWOK
	case 0x5E:
		return []byte(c.st.Login), card.SWOK
	case 0x65:
		var b []byte
		b = card.AppendTLV(b, 0x5B, []byte(c.st.Name))
		b = card.AppendTLV(b, 0x5F2D, c.st.Lang)
		b = card.AppendTLV(b, 0x5F35, c.st.Sex)
		return card.AppendTLV(nil, 0x65, b), card.SWOK
	case 0x6E:
		return c.appData(), card.SWOK
	case 0x7A:
		cnt := []byte{byte(c.st.SigCount >> 16), byte(c.st.SigCount >> 8), byte(c.st.SigCount)}
		return card.AppendTLV(nil, 0x7A, card.AppendTLV(nil, 0x93, cnt)), card.SWOK
	case 0xC4:
		return c.pwStatus(), card.SWOK
	case 0xC1, 0xC2, 0xC3:
		return c.st.Attrs[tag-0xC1], card.SWOK
	case 0xC5:
		return c.fingerprints(c.st.Fprs), card.SWOK
	case 0xCD:
		return c.times(), card.SWOK
	case 0x5F50:
		return []byte(c.st.URL), card.SWOK
	case 0x5F52:
		return c.historical(), card.SWOK
	case 0x7F21:
		return c.st.Cert, card.SWOK
	case 0x0101, 0x0102:
		return c.st.PrivateDOs[tag-0x0101], card.SWOK
	case 0x0103:
		if !c.verified[card.PW1Other] {
			return sw(card.SWSecurityStatus)
		}
		return c.st.PrivateDOs[2], card.SWOK
	case 0x0104:
		if !c.verified[card.PW3] {
			return sw(card.SWSecurityStatus)
		}
		return c.st.PrivateDOs[3], card.SWOK
	case 0x7F66:
		if c.spec2() {
			return sw(card.SWDataNotFound)
		}
		return []byte{0x02, 0x02, 0x07, 0xFF, 0x02, 0x02, 0x07, 0xFF}, card.SWOK
	}
	return sw(card.SWDataNotFound)
}

// verify is VERIFY (spec 3.4 section 7.2.2).
func (c *Card) verify(cmd card.Command) ([]byte, uint16) {
	pw := card.PW(cmd.P2)
	if cmd.P1 == 0xFF { // 3.x: reset the verified state
		delete(c.verified, pw)
		return sw(card.SWOK)
	}
	stored, tries := c.pin(pw)
	if stored == nil || cmd.P1 != 0 {
		return sw(card.SWWrongP1P2)
	}
	if len(cmd.Data) == 0 {
		if c.spec2() {
			return sw(card.SWWrongLength)
		}
		if c.verified[pw] {
			return sw(card.SWOK)
		}
		return sw(0x63C0 | uint16(*tries&0xF))
	}
	if !c.check(pw, cmd.Data) {
		return sw(c.failed(pw))
	}
	c.verified[pw] = true
	return sw(c.save())
}

// pin returns the stored PIN and its retry counter for a VERIFY reference.
func (c *Card) pin(pw card.PW) ([]byte, *int) {
	switch pw {
	case card.PW1Sign, card.PW1Other:
		return c.st.PW1, &c.st.PW1Tries
	case card.PW3:
		return c.st.PW3, &c.st.PW3Tries
	}
	return nil, nil
}

// check compares a presented PIN in constant time, counting the try.
func (c *Card) check(pw card.PW, presented []byte) bool {
	stored, tries := c.pin(pw)
	if *tries == 0 {
		return false
	}
	ok := len(presented) == len(stored) && subtle.ConstantTimeCompare(presented, stored) == 1
	if ok {
		*tries = 3
	} else {
		*tries--
	}
	return ok
}

// failed answers a wrong or blocked PIN: 6983 when blocked (also when the
// counter was already 0), else 6982 (spec 3.4 section 7.2.2).
func (c *Card) failed(pw card.PW) uint16 {
	delete(c.verified, pw)
	_, tries := c.pin(pw)
	if s := c.save(); s != card.SWOK {
		return s
	}
	if *tries == 0 {
		return card.SWAuthBlocked
	}
	return card.SWSecurityStatus
}

// changeReference is CHANGE REFERENCE DATA (spec 3.4 section 7.2.3):
// data = old PIN || new PIN; the card knows the old one's length.
func (c *Card) changeReference(cmd card.Command) ([]byte, uint16) {
	pw := card.PW(cmd.P2)
	if pw != card.PW1Sign && pw != card.PW3 {
		return sw(card.SWWrongP1P2)
	}
	stored, tries := c.pin(pw)
	if *tries == 0 {
		return sw(card.SWAuthBlocked)
	}
	if len(cmd.Data) <= len(stored) {
		c.check(pw, nil)
		return sw(c.failed(pw))
	}
	old, nw := cmd.Data[:len(stored)], cmd.Data[len(stored):]
	if !c.check(pw, old) {
		return sw(c.failed(pw))
	}
	if min := minLen(pw); len(nw) < min || len(nw) > 127 {
		return sw(card.SWWrongLength)
	}
	if pw == card.PW3 {
		c.st.PW3 = append([]byte(nil), nw...)
	} else {
		c.st.PW1 = append([]byte(nil), nw...)
	}
	return sw(c.save())
}

func minLen(pw card.PW) int {
	if pw == card.PW3 {
		return card.MinPW3Length
	}
	return card.MinPW1Length
}

// resetRetryCounter is RESET RETRY COUNTER (spec 3.4 section 7.2.4).
func (c *Card) resetRetryCounter(cmd card.Command) ([]byte, uint16) {
	if cmd.P2 != 0x81 {
		return sw(card.SWWrongP1P2)
	}
	var nw []byte
	switch cmd.P1 {
	case 0x00: // reset code || new PW1
		if c.st.RC == nil || c.st.RCTries == 0 {
			return sw(card.SWAuthBlocked)
		}
		if len(cmd.Data) <= len(c.st.RC) {
			c.st.RCTries--
			c.save()
			return sw(card.SWSecurityStatus)
		}
		if subtle.ConstantTimeCompare(cmd.Data[:len(c.st.RC)], c.st.RC) != 1 {
			c.st.RCTries--
			c.save()
			return sw(card.SWSecurityStatus)
		}
		c.st.RCTries = 3
		nw = cmd.Data[len(c.st.RC):]
	case 0x02: // new PW1, admin PIN verified
		if !c.verified[card.PW3] {
			return sw(card.SWSecurityStatus)
		}
		nw = cmd.Data
	default:
		return sw(card.SWWrongP1P2)
	}
	if len(nw) < card.MinPW1Length || len(nw) > 127 {
		return sw(card.SWWrongLength)
	}
	c.st.PW1 = append([]byte(nil), nw...)
	c.st.PW1Tries = 3
	return sw(c.save())
}

// putData is PUT DATA with an even INS (spec 3.4 section 7.2.8).
func (c *Card) putData(tag uint16, v []byte) ([]byte, uint16) {
	if !c.verified[card.PW3] {
		if (tag == 0x0101 || tag == 0x0103) && c.verified[card.PW1Other] {
			c.st.PrivateDOs[tag-0x0101] = append([]byte(nil), v...)
			return sw(c.save())
		}
		return sw(card.SWSecurityStatus)
	}
	switch tag {
	case 0x5B:
		if len(v) > 39 {
			return sw(card.SWWrongLength)
		}
		c.st.Name = string(v)
	case 0x5E:
		c.st.Login = string(v)
	case 0x5F2D:
		c.st.Lang = append([]byte(nil), v...)
	case 0x5F35:
		c.st.Sex = append([]byte(nil), v...)
	case 0x5F50:
		c.st.URL = string(v)
	case 0x7F21:
		c.st.Cert = append([]byte(nil), v...)
	case 0x0101, 0x0102, 0x0103, 0x0104:
		c.st.PrivateDOs[tag-0x0101] = append([]byte(nil), v...)
	case 0xC1, 0xC2, 0xC3:
		slot := int(tag - 0xC1)
		a, err := card.ParseAlgorithm(v)
		if err != nil || !c.supported(slot, a) {
			return sw(card.SWIncorrectData)
		}
		if !bytes.Equal(c.st.Attrs[slot], v) {
			// A new key type invalidates the slot's key.
			c.st.Attrs[slot] = append([]byte(nil), v...)
			c.st.Keys[slot], c.st.KeyOrigin[slot] = nil, 0
			c.st.Fprs[slot], c.st.Times[slot] = [20]byte{}, 0
		}
	case 0xC4:
		if len(v) < 1 {
			return sw(card.SWWrongLength)
		}
		c.st.PW1ValidForSeveral = v[0] != 0
	case 0xC7, 0xC8, 0xC9:
		if len(v) != 20 {
			return sw(card.SWWrongLength)
		}
		copy(c.st.Fprs[tag-0xC7][:], v)
	case 0xCA, 0xCB, 0xCC:
		if len(v) != 20 {
			return sw(card.SWWrongLength)
		}
		copy(c.st.CAFprs[tag-0xCA][:], v)
	case 0xCE, 0xCF, 0xD0:
		if len(v) != 4 {
			return sw(card.SWWrongLength)
		}
		c.st.Times[tag-0xCE] = binary.BigEndian.Uint32(v)
	case 0xD3:
		if len(v) == 0 {
			c.st.RC, c.st.RCTries = nil, 0
		} else {
			if len(v) < 8 || len(v) > 127 {
				return sw(card.SWWrongLength)
			}
			c.st.RC, c.st.RCTries = append([]byte(nil), v...), 3
		}
	default:
		return sw(card.SWDataNotFound)
	}
	return sw(c.save())
}

// supported lists the key types of this card: RSA 2048/3072/4096 in every
// slot; on 3.x cards also ECDSA P-256 and Ed25519 (signature and
// authentication) and ECDH P-256 and cv25519 (decryption).
func (c *Card) supported(slot int, a card.Algorithm) bool {
	switch a.ID {
	case card.AlgRSA:
		return a.RSABits == 2048 || a.RSABits == 3072 || a.RSABits == 4096
	}
	if c.spec2() {
		return false
	}
	switch a.ID {
	case card.AlgECDSA, card.AlgEdDSA:
		if slot == 1 {
			return false
		}
		return a.ID == card.AlgECDSA && bytes.Equal(a.OID, card.OIDNISTP256) ||
			a.ID == card.AlgEdDSA && bytes.Equal(a.OID, card.OIDEd25519)
	case card.AlgECDH:
		return slot == 1 && (bytes.Equal(a.OID, card.OIDNISTP256) || bytes.Equal(a.OID, card.OIDCurve25519))
	}
	return false
}

// slotOf maps a control reference template tag to a slot.
func slotOf(crt []byte) (int, bool) {
	if len(crt) < 1 {
		return 0, false
	}
	switch crt[0] {
	case 0xB6:
		return 0, true
	case 0xB8:
		return 1, true
	case 0xA4:
		return 2, true
	}
	return 0, false
}

// generate is GENERATE ASYMMETRIC KEY PAIR (spec 3.4 section 7.2.14).
func (c *Card) generate(cmd card.Command) ([]byte, uint16) {
	slot, ok := slotOf(cmd.Data)
	if !ok {
		return sw(card.SWIncorrectData)
	}
	switch cmd.P1 {
	case 0x81:
		k, err := c.st.key(slot)
		if err != nil {
			return sw(card.SWMemoryFailure)
		}
		if k == nil {
			return sw(card.SWDataNotFound)
		}
		return c.publicDO(k)
	case 0x80:
	default:
		return sw(card.SWWrongP1P2)
	}
	if !c.verified[card.PW3] {
		return sw(card.SWSecurityStatus)
	}
	a, err := card.ParseAlgorithm(c.st.Attrs[slot])
	if err != nil {
		return sw(card.SWMemoryFailure)
	}
	start := time.Now()
	k, err := newKey(a)
	if err != nil {
		return sw(card.SWMemoryFailure)
	}
	c.lastGen = time.Since(start)
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return sw(card.SWMemoryFailure)
	}
	c.st.Keys[slot], c.st.KeyOrigin[slot] = der, 1
	// The old fingerprint and time no longer describe the slot; the host
	// writes new ones (spec 3.4 section 7.2.14).
	c.st.Fprs[slot], c.st.Times[slot] = [20]byte{}, 0
	if slot == 0 {
		c.st.SigCount = 0
	}
	if s := c.save(); s != card.SWOK {
		return sw(s)
	}
	return c.publicDO(k)
}

func newKey(a card.Algorithm) (crypto.PrivateKey, error) {
	switch {
	case a.ID == card.AlgRSA:
		return rsa.GenerateKey(rand.Reader, a.RSABits)
	case a.ID == card.AlgECDSA:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case a.ID == card.AlgEdDSA:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	case a.ID == card.AlgECDH && bytes.Equal(a.OID, card.OIDCurve25519):
		return ecdh.X25519().GenerateKey(rand.Reader)
	case a.ID == card.AlgECDH:
		return ecdh.P256().GenerateKey(rand.Reader)
	}
	return nil, fmt.Errorf("unsupported %s", a)
}

func (c *Card) publicDO(k crypto.PrivateKey) ([]byte, uint16) {
	var pub crypto.PublicKey
	switch k := k.(type) {
	case *ecdh.PrivateKey:
		// ECDH keys: 86 holds the point (X25519: the native 32-byte u;
		// gpg adds the 40 prefix of its MPI form itself).
		p := k.PublicKey().Bytes()
		return card.AppendTLV(nil, 0x7F49, card.AppendTLV(nil, 0x86, p)), card.SWOK
	case crypto.Signer:
		pub = k.Public()
	default:
		return sw(card.SWMemoryFailure)
	}
	do, err := card.EncodePublicKeyDO(pub)
	if err != nil {
		return sw(card.SWMemoryFailure)
	}
	return do, card.SWOK
}

// sign is PSO: COMPUTE DIGITAL SIGNATURE (spec 3.4 section 7.2.10).
func (c *Card) sign(input []byte) ([]byte, uint16) {
	if !c.verified[card.PW1Sign] {
		return sw(card.SWSecurityStatus)
	}
	k, err := c.st.key(0)
	if err != nil {
		return sw(card.SWMemoryFailure)
	}
	if k == nil {
		return sw(card.SWDataNotFound)
	}
	var sig []byte
	switch k := k.(type) {
	case *rsa.PrivateKey:
		// input is a DigestInfo; the card only pads (PKCS#1 v1.5).
		if len(input) > k.Size()*4/10 {
			return sw(card.SWWrongLength)
		}
		sig, err = rsa.SignPKCS1v15(nil, k, crypto.Hash(0), input)
	case *ecdsa.PrivateKey:
		var r, s *big.Int
		if r, s, err = ecdsa.Sign(rand.Reader, k, input); err == nil {
			sig = append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
		}
	case ed25519.PrivateKey:
		sig = ed25519.Sign(k, input)
	default:
		return sw(card.SWConditionsOfUse)
	}
	if err != nil {
		return sw(card.SWNoDiagnosis)
	}
	if !c.st.PW1ValidForSeveral {
		delete(c.verified, card.PW1Sign)
	}
	c.st.SigCount++
	if s := c.save(); s != card.SWOK {
		return sw(s)
	}
	return sig, card.SWOK
}

// terminate is TERMINATE DF (spec 3.4 section 7.2.16): allowed with the
// admin PIN verified, or when it is blocked.
func (c *Card) terminate() ([]byte, uint16) {
	if !c.verified[card.PW3] && c.st.PW3Tries != 0 {
		return sw(card.SWSecurityStatus)
	}
	c.st.Terminated = true
	c.reset()
	return sw(c.save())
}

// activate is ACTIVATE FILE on a terminated application: everything goes
// back to the factory state (spec 3.4 section 7.2.17).
func (c *Card) activate() ([]byte, uint16) {
	c.st = factory(c.st.Version, c.st.Manufacturer, c.st.Serial)
	c.reset()
	return sw(c.save())
}
