package client

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/physmem"
)

// ReadEventLog returns the firmware measurement log as bytes to send: the
// TCG log Linux exposes in securityfs (UEFI, SeaBIOS, newer coreboot), else
// coreboot 4.15's own TCPA log from cbmem through /dev/mem, written back in
// coreboot's layout. The server parses it; the client only reads it.
func ReadEventLog(securityfsPath, memPath string) ([]byte, error) {
	if f, err := os.Open(securityfsPath); err == nil {
		b, err := io.ReadAll(io.LimitReader(f, eventlog.MaxLogSize+1))
		f.Close()
		if err == nil && len(b) > 0 && len(b) <= eventlog.MaxLogSize {
			return b, nil
		}
	}
	mem, err := physmem.OpenPath(memPath)
	if err != nil {
		return nil, fmt.Errorf("%w: neither %s nor %s is readable (%v)", eventlog.ErrNotFound, securityfsPath, memPath, err)
	}
	defer mem.Close()
	l, err := eventlog.ReadCorebootLog(mem)
	if err != nil {
		return nil, err
	}
	if l.Format != eventlog.FormatCorebootTCPA {
		return nil, errors.New("coreboot keeps a TCG-format log in cbmem that Linux does not expose; glint cannot send it yet (mount securityfs, or use coreboot's TCPA log)")
	}
	return eventlog.MarshalTCPA(l, len(l.Events))
}

// DMI reads a DMI field Linux exposes (/sys/class/dmi/id), "" if absent.
func DMI(field string) string {
	b, err := os.ReadFile("/sys/class/dmi/id/" + field)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// FirmwareLabel names the running firmware image from DMI (coreboot fills
// bios_vendor/bios_version with its own version and build): the label a
// report carries, from the OS and from the payload alike.
func FirmwareLabel() string {
	l := strings.TrimSpace(DMI("bios_vendor") + " " + DMI("bios_version"))
	if d := DMI("bios_date"); d != "" {
		l += " (" + d + ")"
	}
	return l
}

// Printable drops control characters (but newlines) from text a server
// sent, so it cannot drive the terminal or the boot console.
func Printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r >= 0x20 && r != 0x7f && !(r >= 0x80 && r < 0xa0) {
			return r
		}
		return -1
	}, s)
}
