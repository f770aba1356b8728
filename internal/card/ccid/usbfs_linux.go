package ccid

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// usbfs ioctls (linux/usbdevice_fs.h).
const (
	usbdevfsBulk             = 0xC0185502 // _IOWR('U', 2, struct usbdevfs_bulktransfer)
	usbdevfsClaimInterface   = 0x8004550F // _IOR('U', 15, unsigned int)
	usbdevfsReleaseInterface = 0x80045510 // _IOR('U', 16, unsigned int)
	usbdevfsClearHalt        = 0x80045515 // _IOR('U', 21, unsigned int)
)

// bulkTransfer is struct usbdevfs_bulktransfer.
type bulkTransfer struct {
	ep, len, timeout uint32 // timeout in ms
	_                uint32
	data             unsafe.Pointer
}

// SysfsRoot is where Find looks for USB devices.
var SysfsRoot = "/sys/bus/usb/devices"

// DevRoot holds the usbfs device nodes (devtmpfs makes them).
var DevRoot = "/dev/bus/usb"

// Find lists every CCID interface on the USB buses.
func Find() ([]Device, error) {
	entries, err := os.ReadDir(SysfsRoot)
	if err != nil {
		return nil, fmt.Errorf("list USB devices (is usbcore loaded and sysfs mounted?): %w", err)
	}
	var out []Device
	for _, e := range entries {
		if strings.Contains(e.Name(), ":") { // an interface, not a device
			continue
		}
		dir := filepath.Join(SysfsRoot, e.Name())
		raw, err := os.ReadFile(filepath.Join(dir, "descriptors"))
		if err != nil || len(raw) < 18 {
			continue
		}
		ifs, err := ParseConfig(raw[18:]) // skip the 18-byte device descriptor
		if err != nil || len(ifs) == 0 {
			continue
		}
		d := Device{SysPath: dir}
		d.Bus, _ = strconv.Atoi(sysfsString(dir, "busnum"))
		d.Addr, _ = strconv.Atoi(sysfsString(dir, "devnum"))
		v, _ := strconv.ParseUint(sysfsString(dir, "idVendor"), 16, 16)
		p, _ := strconv.ParseUint(sysfsString(dir, "idProduct"), 16, 16)
		d.Vendor, d.Product = uint16(v), uint16(p)
		d.Manufacturer, d.ProductName, d.Serial = sysfsString(dir, "manufacturer"), sysfsString(dir, "product"), sysfsString(dir, "serial")
		for _, i := range ifs {
			dd := d
			dd.Interface, dd.BulkIn, dd.BulkOut, dd.MaxPacket, dd.Descriptor = i.number, i.bulkIn, i.bulkOut, i.maxPacket, i.desc
			out = append(out, dd)
		}
	}
	return out, nil
}

func sysfsString(dir, name string) string {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil || len(b) > 256 {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Open claims d's CCID interface and powers its card on.
func Open(d Device) (*Reader, error) {
	b, err := openBulk(d)
	if err != nil {
		return nil, err
	}
	r, err := NewReader(b, d.Descriptor)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("%s: %w", d, err)
	}
	return r, nil
}

type usbfsBulk struct {
	f         *os.File
	iface     uint32
	in, out   byte
	maxPacket int
	// zlp: end an Out whose length is a multiple of the packet size with a
	// zero-length packet. Only QEMU's usb-ccid needs it (it takes a full
	// packet as "more follows" whatever dwLength says); real readers go by
	// dwLength, and some would read the ZLP as a broken message.
	zlp bool
}

func openBulk(d Device) (*usbfsBulk, error) {
	node := filepath.Join(DevRoot, fmt.Sprintf("%03d", d.Bus), fmt.Sprintf("%03d", d.Addr))
	f, err := os.OpenFile(node, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s (%s): %w", node, d, err)
	}
	b := &usbfsBulk{f: f, iface: uint32(d.Interface), in: d.BulkIn, out: d.BulkOut, maxPacket: d.MaxPacket,
		zlp: d.Manufacturer == "QEMU"}
	if err := b.ioctl(usbdevfsClaimInterface, unsafe.Pointer(&b.iface)); err != nil {
		f.Close()
		if errors.Is(err, unix.EBUSY) {
			return nil, fmt.Errorf("the CCID interface of %s is in use (pcscd or gpg's scdaemon? stop them, e.g. gpgconf --kill scdaemon): %w", d, err)
		}
		return nil, fmt.Errorf("claim the CCID interface of %s: %w", d, err)
	}
	return b, nil
}

func (b *usbfsBulk) ioctl(req uintptr, arg unsafe.Pointer) error {
	for {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, b.f.Fd(), req, uintptr(arg))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return e
		}
		return nil
	}
}

func (b *usbfsBulk) bulk(ep byte, p []byte, timeout time.Duration) (int, error) {
	ms := uint32(timeout / time.Millisecond)
	if ms == 0 {
		ms = 1
	}
	t := bulkTransfer{ep: uint32(ep), len: uint32(len(p)), timeout: ms}
	if len(p) > 0 {
		t.data = unsafe.Pointer(&p[0])
	}
	for {
		n, _, e := unix.Syscall(unix.SYS_IOCTL, b.f.Fd(), usbdevfsBulk, uintptr(unsafe.Pointer(&t)))
		switch e {
		case 0:
			return int(n), nil
		case unix.EINTR:
			continue
		case unix.ETIMEDOUT:
			return 0, ErrTimeout
		case unix.EPIPE: // endpoint stalled: clear it so the next call works
			epn := uint32(ep)
			b.ioctl(usbdevfsClearHalt, unsafe.Pointer(&epn))
		case unix.ENODEV:
			return 0, errors.New("the token was unplugged")
		}
		return 0, e
	}
}

func (b *usbfsBulk) Out(msg []byte) error {
	if _, err := b.bulk(b.out, msg, 5*time.Second); err != nil {
		return err
	}
	if b.zlp && len(msg)%b.maxPacket == 0 {
		if _, err := b.bulk(b.out, nil, 5*time.Second); err != nil {
			return err
		}
	}
	return nil
}

func (b *usbfsBulk) In(p []byte, timeout time.Duration) (int, error) {
	return b.bulk(b.in, p, timeout)
}

func (b *usbfsBulk) MaxPacket() int { return b.maxPacket }

// Close releases the interface (so another program, or the HOTP code on a
// Nitrokey 3, can use the device) and closes the node.
func (b *usbfsBulk) Close() error {
	err := b.ioctl(usbdevfsReleaseInterface, unsafe.Pointer(&b.iface))
	if cerr := b.f.Close(); err == nil {
		err = cerr
	}
	return err
}
