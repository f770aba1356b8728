package dongle

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

const proUevent = "DRIVER=hid-generic\nHID_ID=0003:000020A0:00004108\nHID_NAME=Nitrokey Nitrokey Pro\nHID_PHYS=usb-0000:00:1d.0-1.2/input0\nHID_UNIQ=\nMODALIAS=hid:b0003g0001v000020A0p00004108\n"

func TestParseUevent(t *testing.T) {
	u, err := ParseUevent([]byte(proUevent))
	if err != nil {
		t.Fatal(err)
	}
	if u != (Uevent{Bus: 3, VID: 0x20a0, PID: 0x4108, Name: "Nitrokey Nitrokey Pro"}) {
		t.Errorf("got %+v", u)
	}
	for _, bad := range []string{"", "HID_NAME=x\n", "HID_ID=0003:20A0\n", "HID_ID=0003:000020A0:0001FFFF\n", "HID_ID=zz:1:2\n"} {
		var pe *ParseError
		if _, err := ParseUevent([]byte(bad)); !errors.As(err, &pe) {
			t.Errorf("ParseUevent(%q) = %v, want *ParseError", bad, err)
		}
	}
}

func TestFind(t *testing.T) {
	sys := fstest.MapFS{
		"class/hidraw/hidraw0/device/uevent": {Data: []byte("HID_ID=0003:0000046D:0000C52B\nHID_NAME=Logitech\n")},
		"class/hidraw/hidraw2/device/uevent": {Data: []byte(proUevent)},
		"class/hidraw/hidraw1/device/uevent": {Data: []byte("HID_ID=0003:0000316D:00004C4B\nHID_NAME=Purism Librem Key\n")},
	}
	found, err := Find(sys)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 2 || found[0].Node != "hidraw1" || found[0].Model.Name != "Librem Key" ||
		found[1].Node != "hidraw2" || found[1].Model.Name != "Nitrokey Pro" {
		t.Errorf("Find = %+v", found)
	}

	// Plugged in, but a libusb tool detached usbhid: no hidraw node.
	detached := fstest.MapFS{
		"bus/usb/devices/1-1.2/idVendor":     {Data: []byte("20a0\n")},
		"bus/usb/devices/1-1.2/idProduct":    {Data: []byte("4108\n")},
		"class/hidraw/hidraw0/device/uevent": {Data: []byte("HID_ID=0003:0000046D:0000C52B\n")},
	}
	_, err = Find(detached)
	if !errors.Is(err, ErrNoDongle) || !strings.Contains(err.Error(), "Nitrokey Pro is plugged in but has no hidraw") {
		t.Errorf("detached: err = %v", err)
	}
	if _, err := Find(fstest.MapFS{}); !errors.Is(err, ErrNoDongle) {
		t.Errorf("empty: err = %v", err)
	}
}

// TestOpenRealHidraw exercises the ioctl path on this machine's real
// hidraw devices if there are any (CI has none; a dongle cannot be
// attached here). It only reads the device list and opens nothing that is
// not a known dongle.
func TestOpenRealHidraw(t *testing.T) {
	if _, err := os.Stat("/sys/class/hidraw"); err != nil {
		t.Skip("no /sys/class/hidraw on this machine: the hidraw ioctl path is only exercised with a dongle attached")
	}
	_, f, err := Open(os.DirFS("/sys"), "/dev")
	if errors.Is(err, ErrNoDongle) {
		t.Skip("no dongle attached: the hidraw ioctl path is only exercised with a Nitrokey Pro, Storage or Librem Key plugged in")
	}
	if err != nil {
		t.Fatalf("open %s: %v", filepath.Join("/dev", f.Node), err)
	}
}
