package main

import (
	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/kexec"
	"github.com/glint-boot/glint/internal/rom"
	"github.com/glint-boot/glint/internal/tpm"
)

// firmwareEvents reads this machine's firmware measurement log (securityfs
// on UEFI, cbmem on coreboot) for the boot flow's explanations. Events
// without a description are named by their type, as sealed records have
// kept them since milestone 1.
func firmwareEvents(bank tpm.Alg) []eventlog.EventRecord {
	l, err := eventlog.ReadFirmwareLog()
	if err != nil {
		return nil
	}
	recs := l.Records(bank)
	for i := range recs {
		if recs[i].Description == "" {
			recs[i].Description = recs[i].Type.String()
		}
	}
	return recs
}

// firmwareOwnerFiles reads the owner's files (glint/*) from the running
// firmware image, mapped below 4 GiB and read through /dev/mem.
func firmwareOwnerFiles() (map[string][]byte, error) {
	img, err := rom.FromDevMem()
	if err != nil {
		return nil, err
	}
	return rom.OwnerFiles(img)
}

// kexecImage loads an image with the kernel's kexec and jumps into it.
func kexecImage(img kexec.Image) error {
	l := kexec.NewSystemLoader()
	if err := l.Load(img); err != nil {
		return err
	}
	return l.Exec()
}

// firmwareImage reads the whole running firmware image.
func firmwareImage() ([]byte, error) {
	img, err := rom.FromDevMem()
	if err != nil {
		return nil, err
	}
	return img.Data, nil
}
