package boot

import (
	"context"

	"github.com/glint-boot/glint/internal/netconf"
)

// NetworkUp configures the first Ethernet card with a link (or the one cfg
// names) by DHCP or statically, in Go: the payload has no ip or udhcpc.
func (m *linuxMachine) NetworkUp(ctx context.Context, cfg netconf.Config) (string, error) {
	lease, err := netconf.Up(ctx, cfg)
	if err != nil {
		return "", err
	}
	return lease.String(), nil
}
