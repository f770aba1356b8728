package netconf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// linkUp sets IFF_UP on an interface (SIOCSIFFLAGS, netdevice(7)).
func linkUp(name string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("interface %s: %w", name, err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring %s up: %w", name, err)
	}
	return nil
}

// packetConn is an AF_PACKET datagram socket for IPv4 on one interface
// (packet(7)): the kernel adds and strips the Ethernet header.
type packetConn struct {
	fd      int
	ifindex int
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func openPacket(ifindex int) (*packetConn, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_IP)))
	if err != nil {
		return nil, fmt.Errorf("packet socket (CONFIG_PACKET): %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: ifindex}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &packetConn{fd: fd, ifindex: ifindex}, nil
}

func (c *packetConn) close() { unix.Close(c.fd) }

func (c *packetConn) send(pkt []byte) error {
	to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: c.ifindex, Halen: 6,
		Addr: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	return unix.Sendto(c.fd, pkt, 0, to)
}

// recv returns the next packet, or nil when wait passes first.
func (c *packetConn) recv(wait time.Duration) ([]byte, error) {
	if wait <= 0 {
		return nil, nil
	}
	fds := []unix.PollFd{{Fd: int32(c.fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, int(wait/time.Millisecond)+1)
	if errors.Is(err, unix.EINTR) {
		return nil, nil
	}
	if err != nil || n == 0 {
		return nil, err
	}
	buf := make([]byte, maxMessage+ipv4Header+udpHeader+64)
	m, _, err := unix.Recvfrom(c.fd, buf, 0)
	if err != nil {
		return nil, err
	}
	return buf[:m], nil
}

// rtnetlink (rtnetlink(7)): one request, one acknowledgement.

func netlinkRequest(typ uint16, body []byte) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	msg := make([]byte, unix.SizeofNlMsghdr, unix.SizeofNlMsghdr+len(body))
	msg = append(msg, body...)
	binary.NativeEndian.PutUint32(msg[0:], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:], typ)
	binary.NativeEndian.PutUint16(msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_REPLACE)
	binary.NativeEndian.PutUint32(msg[8:], 1) // sequence
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return err
	}
	// NLMSG_ERROR carries the result: errno 0 is the acknowledgement.
	if n < unix.SizeofNlMsghdr+4 || binary.NativeEndian.Uint16(buf[4:]) != unix.NLMSG_ERROR {
		return errors.New("rtnetlink: no acknowledgement")
	}
	if e := int32(binary.NativeEndian.Uint32(buf[unix.SizeofNlMsghdr:])); e != 0 {
		return unix.Errno(-e)
	}
	return nil
}

func rtattr(typ uint16, v []byte) []byte {
	n := unix.SizeofRtAttr + len(v)
	b := make([]byte, (n+3)&^3)
	binary.NativeEndian.PutUint16(b[0:], uint16(n))
	binary.NativeEndian.PutUint16(b[2:], typ)
	copy(b[unix.SizeofRtAttr:], v)
	return b
}

// addAddress is RTM_NEWADDR: ip addr add PREFIX dev IF.
func addAddress(ifindex int, p netip.Prefix) error {
	a := p.Addr().As4()
	body := make([]byte, unix.SizeofIfAddrmsg)
	body[0] = unix.AF_INET
	body[1] = byte(p.Bits())
	body[3] = unix.RT_SCOPE_UNIVERSE
	binary.NativeEndian.PutUint32(body[4:], uint32(ifindex))
	body = append(body, rtattr(unix.IFA_LOCAL, a[:])...)
	body = append(body, rtattr(unix.IFA_ADDRESS, a[:])...)
	return netlinkRequest(unix.RTM_NEWADDR, body)
}

// addDefaultRoute is RTM_NEWROUTE: ip route add default via GW dev IF.
func addDefaultRoute(ifindex int, gw netip.Addr) error {
	g := gw.As4()
	body := make([]byte, unix.SizeofRtMsg)
	body[0] = unix.AF_INET
	body[4] = unix.RT_TABLE_MAIN
	body[5] = unix.RTPROT_BOOT
	body[6] = unix.RT_SCOPE_UNIVERSE
	body[7] = unix.RTN_UNICAST
	body = append(body, rtattr(unix.RTA_GATEWAY, g[:])...)
	var idx [4]byte
	binary.NativeEndian.PutUint32(idx[:], uint32(ifindex))
	body = append(body, rtattr(unix.RTA_OIF, idx[:])...)
	return netlinkRequest(unix.RTM_NEWROUTE, body)
}
