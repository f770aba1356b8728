//go:build unix

package flash

import (
	"os/exec"
	"syscall"
)

// detach puts flashrom in its own process group, so a Ctrl-C at the
// terminal reaches glint (which waits for the step to end) and not the
// flashrom in the middle of erasing a block.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}
