//go:build !linux

package ccid

import "errors"

// Find is only implemented on Linux (usbfs).
func Find() ([]Device, error) {
	return nil, errors.New("ccid: USB access is implemented for Linux only")
}

// Open is only implemented on Linux (usbfs).
func Open(Device) (*Reader, error) {
	return nil, errors.New("ccid: USB access is implemented for Linux only")
}
