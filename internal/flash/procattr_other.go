//go:build !unix

package flash

import "os/exec"

func detach(cmd *exec.Cmd) {}
