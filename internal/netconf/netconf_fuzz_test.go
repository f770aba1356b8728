package netconf

import (
	"net/netip"
	"testing"
)

// sampleOffer is a DHCPOFFER as QEMU's user-mode network (slirp) sends it
// to a client with hardware address 52:54:00:12:34:56: 10.0.2.15/24,
// router and DNS 10.0.2.2/10.0.2.3, lease one day.
func sampleOffer() []byte {
	hw := [6]byte{0x52, 0x54, 0, 0x12, 0x34, 0x56}
	b := request(Offer, 0x1234abcd, hw, netip.Addr{}, netip.Addr{})
	b[0] = 2
	copy(b[16:], []byte{10, 0, 2, 15})
	opts := []byte{53, 1, Offer, 54, 4, 10, 0, 2, 2, 1, 4, 255, 255, 255, 0, 3, 4, 10, 0, 2, 2, 6, 4, 10, 0, 2, 3, 51, 4, 0, 1, 0x51, 0x80, 255}
	return append(b[:fixedSize+4], opts...)
}

func FuzzParseMessage(f *testing.F) {
	f.Add(sampleOffer())
	f.Add(request(Discover, 1, [6]byte{1, 2, 3, 4, 5, 6}, netip.Addr{}, netip.Addr{}))
	f.Fuzz(func(t *testing.T, untrusted []byte) {
		m, err := ParseMessage(untrusted)
		if err != nil {
			return
		}
		if len(m.DNS) > maxDNSServers || m.Mask > 32 {
			t.Fatalf("accepted %+v", m)
		}
	})
}

func FuzzParseUDPv4(f *testing.F) {
	any4, bcast := netip.IPv4Unspecified(), netip.AddrFrom4([4]byte{255, 255, 255, 255})
	reply := udpv4(any4, bcast, sampleOffer())
	// as a server sends it: ports swapped
	reply[20], reply[21], reply[22], reply[23] = 0, 67, 0, 68
	f.Add(reply)
	f.Fuzz(func(t *testing.T, untrusted []byte) {
		p, err := parseUDPv4(untrusted)
		if err != nil {
			return
		}
		if len(p) > len(untrusted) {
			t.Fatal("payload longer than the packet")
		}
	})
}

func TestParseOffer(t *testing.T) {
	m, err := ParseMessage(sampleOffer())
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != Offer || m.YourAddr != netip.MustParseAddr("10.0.2.15") || m.Mask != 24 ||
		m.Router != netip.MustParseAddr("10.0.2.2") || len(m.DNS) != 1 || m.Lease != 86400 || m.ServerID != netip.MustParseAddr("10.0.2.2") {
		t.Fatalf("%+v", m)
	}
	if !answers(m, 0x1234abcd, [6]byte{0x52, 0x54, 0, 0x12, 0x34, 0x56}) || answers(m, 1, m.HWAddr) {
		t.Fatal("transaction matching is wrong")
	}
	for _, bad := range [][]byte{sampleOffer()[:200], append(sampleOffer()[:fixedSize+4], 53, 9)} {
		if _, err := ParseMessage(bad); err == nil {
			t.Fatalf("accepted %x", bad)
		}
	}
	st, err := ParseStatic("10.0.2.15/24 gw 10.0.2.2 dns 10.0.2.3")
	if err != nil || st.Gateway != netip.MustParseAddr("10.0.2.2") || len(st.DNS) != 1 {
		t.Fatalf("%+v %v", st, err)
	}
}
