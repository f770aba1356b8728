package client

import (
	"errors"
	"fmt"
	"io"
	"os"

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
