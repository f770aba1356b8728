package netconf

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"
)

// Config says how to bring the network up.
type Config struct {
	// Interface to use; "" picks the first Ethernet interface whose link
	// comes up.
	Interface string
	// Static configures the interface without DHCP when set.
	Static *Static
	// Timeout bounds the whole bring-up (default 20 s).
	Timeout time.Duration
	// LinkTimeout bounds the wait for a link (default 5 s): no cable, no
	// network, no reason to wait for DHCP.
	LinkTimeout time.Duration
	// ResolvConf, if set, is written with the DNS servers (the payload's
	// /etc/resolv.conf), so a server named by host name resolves.
	ResolvConf string
}

// Static is a fixed address.
type Static struct {
	Addr    netip.Prefix
	Gateway netip.Addr // may be invalid: no default route
	DNS     []netip.Addr
}

// Lease is what the interface was configured with.
type Lease struct {
	Interface string
	Addr      netip.Prefix
	Gateway   netip.Addr
	DNS       []netip.Addr
	Server    netip.Addr // the DHCP server (invalid for static)
}

func (l *Lease) String() string {
	s := fmt.Sprintf("%s %s", l.Interface, l.Addr)
	if l.Gateway.IsValid() {
		s += " via " + l.Gateway.String()
	}
	if l.Server.IsValid() {
		s += " (DHCP from " + l.Server.String() + ")"
	}
	return s
}

// ParseStatic reads "ADDR/PREFIX [gw GATEWAY] [dns SERVER...]".
func ParseStatic(s string) (*Static, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return nil, errors.New("static network: want ADDR/PREFIX [gw GATEWAY] [dns SERVER...]")
	}
	p, err := netip.ParsePrefix(f[0])
	if err != nil || !p.Addr().Is4() {
		return nil, fmt.Errorf("static network: %q is not an IPv4 address with a prefix length (10.0.2.15/24)", f[0])
	}
	st := &Static{Addr: p}
	for i := 1; i < len(f); i++ {
		switch f[i] {
		case "gw":
			if i+1 >= len(f) {
				return nil, errors.New("static network: gw needs an address")
			}
			if st.Gateway, err = netip.ParseAddr(f[i+1]); err != nil || !st.Gateway.Is4() {
				return nil, fmt.Errorf("static network: gateway %q is not an IPv4 address", f[i+1])
			}
			i++
		case "dns":
			for i+1 < len(f) && f[i+1] != "gw" {
				a, err := netip.ParseAddr(f[i+1])
				if err != nil {
					return nil, fmt.Errorf("static network: DNS server %q is not an address", f[i+1])
				}
				st.DNS = append(st.DNS, a)
				i++
			}
		default:
			return nil, fmt.Errorf("static network: %q: want gw or dns", f[i])
		}
	}
	return st, nil
}

// Up configures the network and returns the lease.
func Up(ctx context.Context, cfg Config) (*Lease, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 20 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if err := linkUp("lo"); err != nil {
		return nil, err
	}
	if cfg.LinkTimeout == 0 {
		cfg.LinkTimeout = 5 * time.Second
	}
	lctx, lcancel := context.WithTimeout(ctx, cfg.LinkTimeout)
	ifc, err := pickInterface(lctx, cfg.Interface)
	lcancel()
	if err != nil {
		return nil, err
	}
	lease := &Lease{Interface: ifc.Name}
	if cfg.Static != nil {
		lease.Addr, lease.Gateway, lease.DNS = cfg.Static.Addr, cfg.Static.Gateway, cfg.Static.DNS
	} else {
		var hw [6]byte
		copy(hw[:], ifc.HardwareAddr)
		m, err := dhcp(ctx, ifc.Index, hw)
		if err != nil {
			return nil, fmt.Errorf("DHCP on %s: %w", ifc.Name, err)
		}
		mask := m.Mask
		if mask < 0 {
			mask = 24
		}
		lease.Addr = netip.PrefixFrom(m.YourAddr, mask)
		lease.Gateway, lease.DNS, lease.Server = m.Router, m.DNS, m.ServerID
	}
	if err := addAddress(ifc.Index, lease.Addr); err != nil {
		return nil, fmt.Errorf("address %s on %s: %w", lease.Addr, ifc.Name, err)
	}
	if lease.Gateway.IsValid() {
		if err := addDefaultRoute(ifc.Index, lease.Gateway); err != nil {
			return nil, fmt.Errorf("default route via %s: %w", lease.Gateway, err)
		}
	}
	if cfg.ResolvConf != "" && len(lease.DNS) > 0 {
		var b strings.Builder
		for _, d := range lease.DNS {
			fmt.Fprintf(&b, "nameserver %s\n", d)
		}
		if err := os.WriteFile(cfg.ResolvConf, []byte(b.String()), 0o644); err != nil {
			return nil, err
		}
	}
	return lease, nil
}

// pickInterface brings up the named interface, or every Ethernet interface,
// and returns the first whose link (carrier) comes up.
func pickInterface(ctx context.Context, name string) (*net.Interface, error) {
	var cands []net.Interface
	all, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	for _, i := range all {
		if name != "" && i.Name != name {
			continue
		}
		if i.Flags&net.FlagLoopback != 0 || len(i.HardwareAddr) != 6 {
			continue
		}
		cands = append(cands, i)
	}
	if len(cands) == 0 {
		if name != "" {
			return nil, fmt.Errorf("no Ethernet interface %q (is its driver in the kernel?)", name)
		}
		return nil, errors.New("no Ethernet interface: the kernel has no driver for this machine's network card")
	}
	for _, c := range cands {
		if err := linkUp(c.Name); err != nil {
			return nil, err
		}
	}
	for {
		for i := range cands {
			if carrier(cands[i].Name) {
				return &cands[i], nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no network link on %s (cable unplugged?)", names(cands))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func names(is []net.Interface) string {
	var n []string
	for _, i := range is {
		n = append(n, i.Name)
	}
	return strings.Join(n, ", ")
}

// carrier reports IFF_RUNNING: the link is up (netdevice(7)).
func carrier(name string) bool {
	i, err := net.InterfaceByName(name)
	return err == nil && i.Flags&net.FlagRunning != 0
}

// dhcp runs DISCOVER / OFFER / REQUEST / ACK (RFC 2131, 3.1), retrying
// each request with backoff until ctx ends.
func dhcp(ctx context.Context, ifindex int, hw [6]byte) (*Message, error) {
	conn, err := openPacket(ifindex)
	if err != nil {
		return nil, err
	}
	defer conn.close()
	var xb [4]byte
	rand.Read(xb[:])
	xid := binary.BigEndian.Uint32(xb[:])
	any4, bcast := netip.IPv4Unspecified(), netip.AddrFrom4([4]byte{255, 255, 255, 255})
	offer, err := exchange(ctx, conn, udpv4(any4, bcast, request(Discover, xid, hw, netip.Addr{}, netip.Addr{})), xid, hw, Offer)
	if err != nil {
		return nil, fmt.Errorf("no offer: %w", err)
	}
	ack, err := exchange(ctx, conn, udpv4(any4, bcast, request(Request, xid, hw, offer.YourAddr, offer.ServerID)), xid, hw, Ack)
	if err != nil {
		return nil, fmt.Errorf("offer of %s not confirmed: %w", offer.YourAddr, err)
	}
	if !ack.YourAddr.IsValid() || ack.YourAddr.IsUnspecified() {
		return nil, errors.New("the server acknowledged no address")
	}
	return ack, nil
}

func exchange(ctx context.Context, conn *packetConn, pkt []byte, xid uint32, hw [6]byte, want uint8) (*Message, error) {
	wait := 500 * time.Millisecond
	for {
		if err := conn.send(pkt); err != nil {
			return nil, err
		}
		deadline := time.Now().Add(wait)
		for time.Now().Before(deadline) {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			raw, err := conn.recv(time.Until(deadline))
			if err != nil {
				return nil, err
			}
			if raw == nil {
				break // timed out
			}
			payload, err := parseUDPv4(raw)
			if err != nil {
				continue
			}
			m, err := ParseMessage(payload)
			if err != nil || !answers(m, xid, hw) {
				continue
			}
			if m.Type == Nak {
				return nil, errors.New("the server refused (DHCPNAK)")
			}
			if m.Type == want {
				return m, nil
			}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		wait = min(2*wait, 4*time.Second)
	}
}
