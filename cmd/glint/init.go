package main

import (
	"io"
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
		BuildTime:      buildTime(),
		OwnerFiles:     firmwareOwnerFiles,
		FirmwareEvents: firmwareEvents,
		Kexec:          kexecImage,
		ROMImage:       firmwareImage,
		RunCommand: func(args []string, out io.Writer) error {
			return run(args, strings.NewReader(""), out, out)
		},
	})
}
