package main

import "errors"

// runInit is glint as PID 1. Replaced by the boot flow (internal/boot).
func runInit(e *env, args []string) error {
	return errors.New("boot flow not built yet")
}
