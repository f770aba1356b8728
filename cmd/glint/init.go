package main

import (
	"io"
	"os"
	"strings"
	"time"

	"github.com/glint-boot/glint/internal/boot"
)

// buildTime is when this glint was built, set reproducibly from the commit
// date by the Makefile (-X main.buildDate=...). A clock before it is wrong.
var buildDate = "2026-11-25"

func buildTime() time.Time {
	t, err := time.Parse("2006-01-02", buildDate)
	if err != nil {
		return time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	}
	return t
}

// runInit is glint as PID 1 (the initramfs /init).
func runInit(e *env, args []string) error {
	return boot.Init(boot.InitOptions{
		TPM:       initTPMSpec(e.tpmSpec, args),
		BuildTime: buildTime(),
		RunCommand: func(args []string, out io.Writer) error {
			return run(args, strings.NewReader(""), out, out)
		},
	})
}

// initTPMSpec is the TPM the boot flow opens: --tpm SPEC or --tpm=SPEC among
// init's arguments (the kernel hands unknown command-line words to /init),
// else GLINT_TPM (the kernel puts unknown name=value words into init's
// environment), else "" for the flow's own search of /dev/tpmrm0 and
// /dev/tpm0. Every other argument is a kernel parameter and is ignored.
func initTPMSpec(envSpec string, args []string) string {
	spec := ""
	if os.Getenv("GLINT_TPM") != "" {
		spec = envSpec
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			continue // a kernel parameter
		}
		a = strings.TrimLeft(a, "-")
		switch {
		case a == "tpm" && i+1 < len(args):
			spec = args[i+1]
			i++
		case strings.HasPrefix(a, "tpm="):
			spec = strings.TrimPrefix(a, "tpm=")
		}
	}
	return spec
}
