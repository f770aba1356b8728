package dongle

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Protocol says how glint talks to a dongle model.
type Protocol int

const (
	// ProtocolFeatureReports is the Nitrokey Pro report protocol (this
	// package's Client).
	ProtocolFeatureReports Protocol = iota + 1
	// ProtocolCTAPHID is the Nitrokey 3's Secrets App over CTAPHID vendor
	// command 0x70; glint does not speak it yet.
	ProtocolCTAPHID
)

// Model is a dongle glint knows by its USB IDs (Heads
// initrd/etc/dongle-versions; Nitrokey hotp-verification src/device.c).
type Model struct {
	Name     string
	VID, PID uint16
	Protocol Protocol
}

// Models lists the dongles with HOTP verification.
var Models = []Model{
	{"Nitrokey Pro", 0x20a0, 0x4108, ProtocolFeatureReports},
	{"Nitrokey Storage", 0x20a0, 0x4109, ProtocolFeatureReports},
	{"Librem Key", 0x316d, 0x4c4b, ProtocolFeatureReports},
	{"Nitrokey 3", 0x20a0, 0x42b2, ProtocolCTAPHID},
}

// Found is a dongle's hidraw node.
type Found struct {
	Model Model
	Node  string // "hidraw3": open /dev/hidraw3
}

// Uevent is what a hidraw device's uevent file says about its HID device.
type Uevent struct {
	Bus      uint16 // 0x0003 = USB
	VID, PID uint16
	Name     string
}

// ParseUevent reads the HID_ID and HID_NAME lines of
// /sys/class/hidraw/hidrawN/device/uevent, e.g.
// "HID_ID=0003:000020A0:00004108". Other lines are ignored.
func ParseUevent(untrusted []byte) (Uevent, error) {
	var u Uevent
	if len(untrusted) > maxUevent {
		return u, &ParseError{Offset: maxUevent, Field: "uevent", Err: fmt.Errorf("%d bytes, more than %d", len(untrusted), maxUevent)}
	}
	haveID := false
	off := 0
	for _, line := range strings.Split(string(untrusted), "\n") {
		lineOff := off
		off += len(line) + 1
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch key {
		case "HID_ID":
			parts := strings.Split(val, ":")
			if len(parts) != 3 {
				return u, &ParseError{Offset: int64(lineOff), Field: "HID_ID", Err: fmt.Errorf("want BUS:VID:PID, got %q", val)}
			}
			var nums [3]uint64
			for i, p := range parts {
				// The kernel prints 4 and 8 hex digits; the values are 16-bit.
				n, err := strconv.ParseUint(p, 16, 32)
				if err != nil || n > 0xFFFF || len(p) > 8 {
					return u, &ParseError{Offset: int64(lineOff), Field: "HID_ID", Err: fmt.Errorf("%q is not a 16-bit hex number", p)}
				}
				nums[i] = n
			}
			u.Bus, u.VID, u.PID = uint16(nums[0]), uint16(nums[1]), uint16(nums[2])
			haveID = true
		case "HID_NAME":
			u.Name = val
		}
	}
	if !haveID {
		return u, &ParseError{Offset: int64(len(untrusted)), Field: "HID_ID", Err: errors.New("no HID_ID line")}
	}
	return u, nil
}

const (
	maxUevent = 4096 // a sysfs attribute is at most one page
	busUSB    = 0x0003
)

// ErrNoDongle: no known dongle is plugged in (or it has no hidraw node).
var ErrNoDongle = errors.New("no Nitrokey Pro, Nitrokey Storage, Librem Key or Nitrokey 3 found: plug in the dongle")

// Find lists known dongles among the hidraw devices, reading sysfs (pass
// os.DirFS("/sys")). When a known dongle is on the USB bus but has no
// hidraw node, the error says why: a libusb program (Nitrokey's own
// hotp_verification, for one) detached the kernel's usbhid driver and did
// not re-attach it.
func Find(sysfs fs.FS) ([]Found, error) {
	entries, err := fs.ReadDir(sysfs, "class/hidraw")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("list hidraw devices: %w", err)
	}
	var found []Found
	for _, e := range entries {
		raw, err := readSmall(sysfs, path.Join("class/hidraw", e.Name(), "device/uevent"))
		if err != nil {
			continue
		}
		u, err := ParseUevent(raw)
		if err != nil || u.Bus != busUSB {
			continue
		}
		for _, m := range Models {
			if m.VID == u.VID && m.PID == u.PID {
				found = append(found, Found{Model: m, Node: e.Name()})
			}
		}
	}
	if len(found) > 0 {
		sort.Slice(found, func(i, j int) bool { return found[i].Node < found[j].Node })
		return found, nil
	}
	if m, ok := onUSBBus(sysfs); ok {
		return nil, fmt.Errorf("a %s is plugged in but has no hidraw device: a libusb tool probably detached the kernel's HID driver; "+
			"unplug the dongle and plug it in again: %w", m.Name, ErrNoDongle)
	}
	return nil, ErrNoDongle
}

func readSmall(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxUevent))
}

// onUSBBus looks for a known dongle in /sys/bus/usb/devices.
func onUSBBus(sysfs fs.FS) (Model, bool) {
	entries, err := fs.ReadDir(sysfs, "bus/usb/devices")
	if err != nil {
		return Model{}, false
	}
	for _, e := range entries {
		dir := path.Join("bus/usb/devices", e.Name())
		v, err1 := readSmall(sysfs, dir+"/idVendor")
		p, err2 := readSmall(sysfs, dir+"/idProduct")
		if err1 != nil || err2 != nil {
			continue
		}
		vid, err1 := strconv.ParseUint(strings.TrimSpace(string(v)), 16, 16)
		pid, err2 := strconv.ParseUint(strings.TrimSpace(string(p)), 16, 16)
		if err1 != nil || err2 != nil {
			continue
		}
		for _, m := range Models {
			if uint64(m.VID) == vid && uint64(m.PID) == pid {
				return m, true
			}
		}
	}
	return Model{}, false
}
