package tpm

import (
	"os"

	"golang.org/x/sys/unix"
)

// openBlocking opens a TPM character device in blocking mode. os.OpenFile
// would put a pollable device (the TPM driver implements poll) in
// non-blocking mode for Go's poller; the driver then runs the command
// asynchronously and its poll can report "readable" before the new response
// exists, so read returns 0 bytes (seen as EOF on /dev/tpmrm0 under QEMU).
// Blocking mode is the driver's simple contract: write runs the command,
// read returns its response.
func openBlocking(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}
