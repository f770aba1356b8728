package boot

import (
	"os"

	"golang.org/x/sys/unix"
)

// ttyEcho returns a function that switches echo on or off on every given
// terminal (serial console and VGA console together).
func ttyEcho(ttys ...*os.File) func(on bool) {
	return func(on bool) {
		for _, t := range ttys {
			fd := int(t.Fd())
			tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
			if err != nil {
				continue
			}
			if on {
				tio.Lflag |= unix.ECHO
			} else {
				tio.Lflag &^= unix.ECHO
			}
			unix.IoctlSetTermios(fd, unix.TCSETS, tio)
		}
	}
}
