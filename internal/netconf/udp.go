package netconf

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// A client without an address sends and receives DHCP through a packet
// socket: it writes the IPv4 and UDP headers itself (RFC 791, RFC 768) and
// picks replies out of every IPv4 packet the interface receives.

const (
	portServer = 67
	portClient = 68
	ipv4Header = 20
	udpHeader  = 8
	protoUDP   = 17
)

// udpv4 wraps payload in IPv4 and UDP headers from src:68 to dst:67.
func udpv4(src, dst netip.Addr, payload []byte) []byte {
	total := ipv4Header + udpHeader + len(payload)
	b := make([]byte, total)
	b[0] = 0x45 // version 4, header of 5 words
	binary.BigEndian.PutUint16(b[2:], uint16(total))
	b[8] = 64 // TTL
	b[9] = protoUDP
	s, d := src.As4(), dst.As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	binary.BigEndian.PutUint16(b[10:], checksum(b[:ipv4Header]))
	u := b[ipv4Header:]
	binary.BigEndian.PutUint16(u[0:], portClient)
	binary.BigEndian.PutUint16(u[2:], portServer)
	binary.BigEndian.PutUint16(u[4:], uint16(udpHeader+len(payload)))
	// UDP checksum 0: none (RFC 768; allowed over IPv4).
	copy(u[udpHeader:], payload)
	return b
}

// checksum is the Internet checksum (RFC 1071).
func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// parseUDPv4 returns the payload of an IPv4 packet if it is an unfragmented
// UDP datagram from port 67 to port 68 with a correct IP header checksum;
// anything else the interface sees is not for the DHCP client.
func parseUDPv4(untrusted []byte) ([]byte, error) {
	if len(untrusted) < ipv4Header+udpHeader {
		return nil, &ParseError{Field: "IPv4 header", Reason: "shorter than IPv4 and UDP headers"}
	}
	if untrusted[0]>>4 != 4 {
		return nil, &ParseError{Field: "IPv4 version", Reason: "not IPv4"}
	}
	ihl := int(untrusted[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(untrusted[2:]))
	if ihl < ipv4Header || total < ihl+udpHeader || total > len(untrusted) {
		return nil, &ParseError{Field: "IPv4 lengths", Reason: fmt.Sprintf("header %d, total %d, %d received", ihl, total, len(untrusted))}
	}
	if checksum(untrusted[:ihl]) != 0 {
		return nil, &ParseError{Field: "IPv4 checksum", Reason: "wrong"}
	}
	if untrusted[9] != protoUDP {
		return nil, &ParseError{Field: "IPv4 protocol", Reason: fmt.Sprintf("protocol %d, not UDP", untrusted[9])}
	}
	if frag := binary.BigEndian.Uint16(untrusted[6:]); frag&0x3fff != 0 {
		return nil, &ParseError{Field: "IPv4 fragment", Reason: "fragmented"}
	}
	u := untrusted[ihl:total]
	if binary.BigEndian.Uint16(u[0:]) != portServer || binary.BigEndian.Uint16(u[2:]) != portClient {
		return nil, &ParseError{Field: "UDP ports", Reason: "not DHCP server to client"}
	}
	n := int(binary.BigEndian.Uint16(u[4:]))
	if n < udpHeader || n > len(u) {
		return nil, &ParseError{Field: "UDP length", Reason: fmt.Sprintf("%d, %d available", n, len(u))}
	}
	return u[udpHeader:n], nil
}
