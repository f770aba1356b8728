// Command glint is a tamper-evident boot system: as /init (PID 1) of a
// coreboot/LinuxBoot payload it measures, attests and boots; on a workstation
// it is the CLI for the same verbs. See the README for the threat model.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "glint: %v\n", err)
		os.Exit(exitCode(err))
	}
}
