package boot

import (
	"fmt"
	"strings"
)

// bootCandidates is the order findBoot tries devices in. want is the owner
// configuration's boot.device: "UUID=..." or "LABEL=..." is resolved among
// devs by resolve (rootfs.FindDevice: from the file systems' superblocks,
// exactly one match), "/dev/..." is taken as it is, "" means every device,
// internal disks first (order: blockdev.InternalFirst).
func bootCandidates(want string, devs []string, order func([]string) []string, resolve func(spec string, devs []string) (string, error)) ([]string, error) {
	switch {
	case want == "":
		return order(devs), nil
	case strings.HasPrefix(want, "/dev/"):
		return []string{want}, nil
	case strings.HasPrefix(want, "UUID=") || strings.HasPrefix(want, "LABEL="):
		d, err := resolve(want, devs)
		if err != nil {
			return nil, err
		}
		return []string{d}, nil
	}
	return nil, fmt.Errorf("boot.device must be UUID=..., LABEL=... or /dev/..., not %q", want)
}
