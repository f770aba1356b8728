// Package netconf brings up the payload's network: one Ethernet interface,
// configured by DHCPv4 (RFC 2131, options RFC 2132) or statically, with a
// default route, so glint can reach the attestation server before it boots
// the OS. It is small on purpose (the payload must fit in flash): a DHCP
// client over a packet socket and rtnetlink, no daemon, no renewal (the
// lease only has to outlive glint, which hands the machine to the OS within
// a minute).
//
//	lease, err := netconf.Up(ctx, netconf.Config{})            // DHCP on the first NIC with a link
//	lease, err := netconf.Up(ctx, netconf.Config{Static: &netconf.Static{
//		Addr: netip.MustParsePrefix("10.0.2.15/24"), Gateway: netip.MustParseAddr("10.0.2.2")}})
//
// Everything a DHCP server sends is untrusted: ParseMessage and
// parseUDPv4 check every length against what remains and a named cap, and
// are fuzzed. A hostile DHCP server on the LAN can misdirect the machine,
// but glint only talks TLS to a server whose key the owner configuration
// pins, so the worst it achieves is that no report goes out.
package netconf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
)

// DHCP message types (RFC 2132, 9.6).
const (
	Discover = 1
	Offer    = 2
	Request  = 3
	Decline  = 4
	Ack      = 5
	Nak      = 6
)

// Option codes used here (RFC 2132).
const (
	optSubnetMask   = 1
	optRouter       = 3
	optDNS          = 6
	optRequestedIP  = 50
	optLeaseTime    = 51
	optMessageType  = 53
	optServerID     = 54
	optParamRequest = 55
	optEnd          = 255
	optPad          = 0
)

// RFC 2131, 2: the fixed part is 236 bytes, then the magic cookie and
// options; a client must accept messages of at least 576 bytes (IP), and
// nothing honest exceeds an Ethernet frame.
const (
	fixedSize     = 236
	maxMessage    = 1500
	magicCookie   = 0x63825363
	maxDNSServers = 8
)

// ParseError says why bytes were refused as a DHCP message.
type ParseError struct {
	Offset int
	Field  string
	Reason string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("DHCP message: %s at byte %d: %s", e.Field, e.Offset, e.Reason)
}

// Message is the part of a DHCP reply the client uses.
type Message struct {
	Op       uint8
	XID      uint32
	Flags    uint16
	YourAddr netip.Addr // yiaddr
	HWAddr   [6]byte    // chaddr (Ethernet)
	Type     uint8      // option 53
	ServerID netip.Addr // option 54
	Mask     int        // option 1, as a prefix length (-1 if absent)
	Router   netip.Addr // option 3 (first)
	DNS      []netip.Addr
	Lease    uint32 // option 51, seconds
}

// ParseMessage decodes a DHCP message (RFC 2131, 2; RFC 2132 options).
func ParseMessage(untrusted []byte) (*Message, error) {
	fail := func(off int, field, format string, a ...any) (*Message, error) {
		return nil, &ParseError{Offset: off, Field: field, Reason: fmt.Sprintf(format, a...)}
	}
	if len(untrusted) > maxMessage {
		return fail(0, "message", "%d bytes, limit %d", len(untrusted), maxMessage)
	}
	if len(untrusted) < fixedSize+4 {
		return fail(0, "message", "%d bytes, shorter than a DHCP message (%d)", len(untrusted), fixedSize+4)
	}
	m := &Message{Op: untrusted[0], XID: binary.BigEndian.Uint32(untrusted[4:]), Flags: binary.BigEndian.Uint16(untrusted[10:]), Mask: -1}
	if untrusted[1] != 1 || untrusted[2] != 6 {
		return fail(1, "htype/hlen", "not Ethernet (%d/%d)", untrusted[1], untrusted[2])
	}
	m.YourAddr = netip.AddrFrom4([4]byte(untrusted[16:20]))
	copy(m.HWAddr[:], untrusted[28:34])
	if binary.BigEndian.Uint32(untrusted[fixedSize:]) != magicCookie {
		return fail(fixedSize, "magic cookie", "not a DHCP message (BOOTP without options)")
	}
	opts := untrusted[fixedSize+4:]
	off := fixedSize + 4
	seen := map[uint8]bool{}
	for len(opts) > 0 {
		code := opts[0]
		if code == optEnd {
			break
		}
		if code == optPad {
			opts, off = opts[1:], off+1
			continue
		}
		if len(opts) < 2 {
			return fail(off, "option", "option %d has no length", code)
		}
		n := int(opts[1])
		if n > len(opts)-2 {
			return fail(off, "option", "option %d claims %d bytes, %d remain", code, n, len(opts)-2)
		}
		v := opts[2 : 2+n]
		// RFC 3396 lets long options be split; the ones glint reads are
		// short, and a second copy is refused rather than guessed at.
		if seen[code] && (code == optMessageType || code == optServerID || code == optSubnetMask) {
			return fail(off, "option", "option %d given twice", code)
		}
		seen[code] = true
		switch code {
		case optMessageType:
			if n != 1 {
				return fail(off, "message type", "%d bytes, want 1", n)
			}
			m.Type = v[0]
		case optServerID:
			if n != 4 {
				return fail(off, "server identifier", "%d bytes, want 4", n)
			}
			m.ServerID = netip.AddrFrom4([4]byte(v))
		case optSubnetMask:
			if n != 4 {
				return fail(off, "subnet mask", "%d bytes, want 4", n)
			}
			ones, ok := maskBits(v)
			if !ok {
				return fail(off, "subnet mask", "%d.%d.%d.%d is not a contiguous mask", v[0], v[1], v[2], v[3])
			}
			m.Mask = ones
		case optRouter:
			if n < 4 || n%4 != 0 {
				return fail(off, "router", "%d bytes, want a multiple of 4", n)
			}
			m.Router = netip.AddrFrom4([4]byte(v[:4]))
		case optDNS:
			if n%4 != 0 {
				return fail(off, "DNS servers", "%d bytes, want a multiple of 4", n)
			}
			for i := 0; i+4 <= n && len(m.DNS) < maxDNSServers; i += 4 {
				m.DNS = append(m.DNS, netip.AddrFrom4([4]byte(v[i:i+4])))
			}
		case optLeaseTime:
			if n != 4 {
				return fail(off, "lease time", "%d bytes, want 4", n)
			}
			m.Lease = binary.BigEndian.Uint32(v)
		}
		opts, off = opts[2+n:], off+2+n
	}
	return m, nil
}

func maskBits(v []byte) (int, bool) {
	x := binary.BigEndian.Uint32(v)
	ones := 0
	for x&0x80000000 != 0 {
		ones++
		x <<= 1
	}
	return ones, x == 0
}

// request builds a client message (DISCOVER or REQUEST) with the
// broadcast flag set, so the server answers a client that has no address
// yet by broadcast (RFC 2131, 4.1).
func request(typ uint8, xid uint32, hw [6]byte, requested, server netip.Addr) []byte {
	b := make([]byte, fixedSize, 300)
	b[0], b[1], b[2] = 1, 1, 6 // BOOTREQUEST, Ethernet, 6-byte addresses
	binary.BigEndian.PutUint32(b[4:], xid)
	binary.BigEndian.PutUint16(b[10:], 0x8000)
	copy(b[28:], hw[:])
	b = binary.BigEndian.AppendUint32(b, magicCookie)
	b = append(b, optMessageType, 1, typ)
	if requested.IsValid() {
		a := requested.As4()
		b = append(b, optRequestedIP, 4)
		b = append(b, a[:]...)
	}
	if server.IsValid() {
		a := server.As4()
		b = append(b, optServerID, 4)
		b = append(b, a[:]...)
	}
	b = append(b, optParamRequest, 4, optSubnetMask, optRouter, optDNS, optLeaseTime)
	b = append(b, optEnd)
	// Pad to the BOOTP minimum of 300 bytes some servers expect.
	for len(b) < 300 {
		b = append(b, optPad)
	}
	return b
}

// answers reports whether m is a server's reply to our transaction.
func answers(m *Message, xid uint32, hw [6]byte) bool {
	return m.Op == 2 && m.XID == xid && bytes.Equal(m.HWAddr[:], hw[:])
}
