// Package readers finds the owner's OpenPGP card: through pcscd when it
// runs (a workstation, where pcscd or gpg's scdaemon may already hold the
// token), else directly over USB CCID (usbfs; glint's initramfs, or a
// workstation without pcscd).
//
// A reader spec names one:
//
//	""  or auto        pcscd if it lists a card, else the first USB CCID device
//	pcsc               the first pcscd reader holding a card
//	pcsc:NAME          the pcscd reader NAME ("Nitrokey Nitrokey 3 [CCID/ICCD Interface] 00 00")
//	usb                the first USB CCID interface
//	usb:BUS/ADDR       that USB device (lsusb's numbers, e.g. usb:001/004)
//	usb:VID:PID        the first device with that id (e.g. usb:20a0:42b2, a Nitrokey 3)
//
// The environment variable GLINT_CARD gives the default spec.
package readers

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/glint-boot/glint/internal/card"
	"github.com/glint-boot/glint/internal/card/ccid"
	"github.com/glint-boot/glint/internal/card/pcsc"
)

// Info describes one reader or token found.
type Info struct {
	Spec        string // what Open takes to pick exactly this one
	Description string
	CardPresent bool
}

// List returns every pcscd reader and USB CCID interface found; errors of
// one source are returned only when nothing was found.
func List() ([]Info, error) {
	var out []Info
	var errs []error
	if _, err := os.Stat(pcsc.Socket()); err == nil {
		if c, err := pcsc.Dial(""); err == nil {
			rs, err := c.Readers()
			c.Close()
			if err != nil {
				errs = append(errs, err)
			}
			for _, r := range rs {
				out = append(out, Info{Spec: "pcsc:" + r.Name, Description: "pcscd reader " + r.Name, CardPresent: r.CardPresent})
			}
		} else {
			errs = append(errs, err)
		}
	}
	devs, err := ccid.Find()
	if err != nil {
		errs = append(errs, err)
	}
	for _, d := range devs {
		out = append(out, Info{Spec: fmt.Sprintf("usb:%03d/%03d", d.Bus, d.Addr), Description: "USB " + d.String(), CardPresent: true})
	}
	if len(out) == 0 && len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// ErrNoCard means no reader with a card was found.
var ErrNoCard = errors.New("no OpenPGP card found: plug in the security key (Nitrokey, YubiKey, Librem Key...) and try again")

// Open opens the transport spec names (see the package comment).
func Open(spec string) (card.Transport, string, error) {
	if spec == "" {
		spec = os.Getenv("GLINT_CARD")
	}
	kind, arg, _ := strings.Cut(spec, ":")
	switch kind {
	case "", "auto":
		if t, name, err := openPCSC(""); err == nil {
			return t, name, nil
		} else if !errors.Is(err, ErrNoCard) && !errors.Is(err, os.ErrNotExist) {
			// pcscd runs but failed: say so rather than trying USB, which
			// would fail too while pcscd holds the device.
			return nil, "", err
		}
		return openUSB("")
	case "pcsc":
		return openPCSC(arg)
	case "usb":
		return openUSB(arg)
	}
	return nil, "", fmt.Errorf("unknown card reader %q: use auto, pcsc[:NAME] or usb[:BUS/ADDR|:VID:PID]", spec)
}

func openPCSC(name string) (card.Transport, string, error) {
	if _, err := os.Stat(pcsc.Socket()); err != nil {
		return nil, "", fmt.Errorf("pcscd is not running (%w)", err)
	}
	c, err := pcsc.Dial("")
	if err != nil {
		return nil, "", err
	}
	rs, err := c.Readers()
	if err != nil {
		c.Close()
		return nil, "", err
	}
	for _, r := range rs {
		if (name == "" && r.CardPresent) || r.Name == name {
			t, err := c.Connect(r.Name)
			if err != nil {
				c.Close()
				return nil, "", err
			}
			return t, "pcscd reader " + r.Name, nil
		}
	}
	c.Close()
	if name != "" {
		return nil, "", fmt.Errorf("pcscd has no reader %q: %w", name, ErrNoCard)
	}
	return nil, "", fmt.Errorf("pcscd lists no card: %w", ErrNoCard)
}

func openUSB(arg string) (card.Transport, string, error) {
	devs, err := ccid.Find()
	if err != nil {
		return nil, "", err
	}
	for _, d := range devs {
		if !matchUSB(d, arg) {
			continue
		}
		r, err := ccid.Open(d)
		if err != nil {
			return nil, "", err
		}
		return r, d.String(), nil
	}
	if arg != "" {
		return nil, "", fmt.Errorf("no USB CCID device %s: %w", arg, ErrNoCard)
	}
	return nil, "", ErrNoCard
}

func matchUSB(d ccid.Device, arg string) bool {
	if arg == "" {
		return true
	}
	if b, a, ok := strings.Cut(arg, "/"); ok {
		bus, err1 := strconv.Atoi(b)
		addr, err2 := strconv.Atoi(a)
		return err1 == nil && err2 == nil && bus == d.Bus && addr == d.Addr
	}
	if v, p, ok := strings.Cut(arg, ":"); ok {
		vid, err1 := strconv.ParseUint(v, 16, 16)
		pid, err2 := strconv.ParseUint(p, 16, 16)
		return err1 == nil && err2 == nil && uint16(vid) == d.Vendor && uint16(pid) == d.Product
	}
	return false
}

// OpenCard opens the spec's transport and the OpenPGP application on it.
func OpenCard(spec string) (*card.Card, string, error) {
	t, name, err := Open(spec)
	if err != nil {
		return nil, "", err
	}
	c, err := card.Open(t)
	if err != nil {
		t.Close()
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}
	return c, name, nil
}
