package main

import (
	"encoding/hex"
	"fmt"

	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/rom"
	"github.com/glint-boot/glint/internal/tpm"
)

func init() {
	register(command{name: "rom ls", summary: "list a coreboot image's flash map areas and CBFS files",
		usage: "FILE", run: runRomLs})
	register(command{name: "rom pcr2", summary: "predict the PCR 2 value coreboot 4.15 will measure for an image",
		usage: "[--json] FILE", run: runRomPCR2})
}

// cbfsAreas are the FMAP areas that hold a CBFS on coreboot images.
var cbfsAreas = []string{"COREBOOT", "FW_MAIN_A", "FW_MAIN_B", "RW_LEGACY"}

func openImage(e *env, name string, args []string) (*rom.Image, error) {
	fs := commandFlags(e, name)
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if len(fs.Args()) != 1 {
		return nil, usageErrorf("usage: glint %s FILE", name)
	}
	return rom.FromFile(fs.Args()[0])
}

func runRomLs(e *env, args []string) error {
	img, err := openImage(e, "rom ls", args)
	if err != nil {
		return err
	}
	f := img.FMAP
	if f == nil {
		return fmt.Errorf("%s has no coreboot flash map (an Intel descriptor image without coreboot?): see glint rom inspect", img.Source)
	}
	fmt.Fprintf(e.stdout, "FMAP %q v%d.%d at 0x%x, flash 0x%x bytes\n", f.Name, f.VersionMajor, f.VersionMinor, f.Offset, f.Size)
	fmt.Fprintf(e.stdout, "  %-24s %-10s %-10s\n", "AREA", "OFFSET", "SIZE")
	for _, a := range f.Areas {
		fmt.Fprintf(e.stdout, "  %s\n", a)
	}
	for _, area := range cbfsAreas {
		if _, ok := f.Area(area); !ok {
			continue
		}
		files, err := img.CBFS(area)
		if err != nil {
			return fmt.Errorf("CBFS in %s: %w", area, err)
		}
		fmt.Fprintf(e.stdout, "\nCBFS in %s:\n  %-36s %-10s %-14s %10s %s\n", area, "NAME", "OFFSET", "TYPE", "SIZE", "COMPRESSION")
		for _, c := range files {
			name := c.Name
			if c.Empty() {
				name = "(empty)"
			}
			comp := c.Compression.String()
			if c.Compression != rom.CompressNone {
				comp += fmt.Sprintf(" (%d decompressed)", c.DecompressedSize)
			}
			fmt.Fprintf(e.stdout, "  %-36s 0x%08x %-14s %10d %s\n", printableLine(name), c.Offset, c.Type, len(c.Data), comp)
		}
	}
	return nil
}

func runRomPCR2(e *env, args []string) error {
	fs := commandFlags(e, "rom pcr2")
	asJSON := fs.Bool("json", false, "print the measurements as stored event records (sha256)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if len(fs.Args()) != 1 {
		return usageErrorf("usage: glint rom pcr2 [--json] FILE")
	}
	img, err := rom.FromFile(fs.Args()[0])
	if err != nil {
		return err
	}
	p, err := rom.PredictCorebootPCR2(img)
	if err != nil {
		return err
	}
	if *asJSON {
		b, err := eventlog.MarshalRecords(p.Log.Records(tpm.SHA256))
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s\n", b)
		return nil
	}
	for _, ev := range p.Log.Events {
		fmt.Fprintf(e.stdout, "  %s  %s\n", hex.EncodeToString(ev.Digests[tpm.SHA256]), ev.Description)
	}
	fmt.Fprintf(e.stdout, "PCR 2 sha1   %x\nPCR 2 sha256 %x\n", p.PCR2[tpm.SHA1], p.PCR2[tpm.SHA256])
	return nil
}
