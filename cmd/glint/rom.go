package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/rom"
	"github.com/glint-boot/glint/internal/safefile"
	"github.com/glint-boot/glint/internal/tpm"
)

func init() {
	register(command{name: "rom ls", summary: "list a coreboot image's flash map areas and CBFS files",
		usage: "FILE", run: runRomLs})
	register(command{name: "rom pcr2", summary: "predict the PCR 2 value coreboot 4.15 will measure for an image",
		usage: "[--json] FILE", run: runRomPCR2})
	register(command{name: "rom inspect", summary: "explain a firmware image: board, flash regions and permissions, ME, CBFS, owner keys, measurements",
		usage: "IMAGE [--json]", run: runRomInspect})
	register(command{name: "rom personalize", summary: "put the owner's public key(s) and configuration into a coreboot image",
		usage: "IMAGE --key owner.asc [--config FILE] [-o OUT]", run: runRomPersonalize})
	register(command{name: "rom predict", summary: "predict every PCR glint seals to, as this image will produce it",
		usage: "IMAGE [--tpm-version 2.0|1.2] [--json]", run: runRomPredict})
	register(command{name: "rom extract", summary: "write one CBFS file of an image, decompressed",
		usage: "IMAGE NAME [-o FILE]", run: runRomExtract})
	register(command{name: "rom relayout", summary: "move an Intel descriptor's regions (flashrom layout file), as ifdtool -n but never losing data",
		usage: "IMAGE --layout FILE -o OUT", run: runRomRelayout})
	register(command{name: "rom assemble", summary: "a whole-chip image: the descriptor, ME and GbE of your backup with a new coreboot BIOS region",
		usage: "--backup CHIP.rom --bios COREBOOT.rom -o OUT", run: runRomAssemble})
}

// cbfsAreas are the FMAP areas that hold a CBFS on coreboot images.
var cbfsAreas = []string{"COREBOOT", "FW_MAIN_A", "FW_MAIN_B", "RW_LEGACY"}

// parseInterspersed parses flags that may come before or after the
// positional arguments ("glint rom personalize IMAGE --key K"): Go's flag
// package stops at the first positional one.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func openImage(e *env, name string, args []string) (*rom.Image, error) {
	fs := commandFlags(e, name)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) != 1 {
		return nil, usageErrorf("usage: glint %s FILE", name)
	}
	return rom.FromFile(pos[0])
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
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErrorf("usage: glint rom pcr2 [--json] FILE")
	}
	img, err := rom.FromFile(pos[0])
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

func runRomInspect(e *env, args []string) error {
	fs := commandFlags(e, "rom inspect")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErrorf("usage: glint rom inspect IMAGE [--json]")
	}
	img, err := rom.FromFile(pos[0])
	if err != nil {
		return err
	}
	r := rom.Inspect(img, time.Now())
	if *asJSON {
		return writeJSON(e.stdout, r)
	}
	printInspection(e.stdout, r)
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func kib(n int64) string {
	if n%1024 == 0 || n >= 1<<20 {
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

func printInspection(w io.Writer, r *rom.Inspection) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("Image:    %s, %s, sha256 %s\n", printableLine(r.Source), kib(r.Size), r.SHA256)
	if b := r.Build; b != nil {
		p("Board:    %s", printableLine(b.Board))
		if b.Kconfig != "" {
			p(" (%s)", b.Kconfig)
		}
		p("\nBuild:    coreboot %s, TPM %s, measured boot %s, payload %s\n", orDash(b.CorebootVersion), orDash(b.TPM), onOff(b.MeasuredBoot), orDash(b.Payload))
	}
	if d := r.Descriptor; d != nil {
		lock := "LOCKED: internal flashing can write only " + strings.Join(d.HostWritable, ", ")
		if !d.Locked {
			lock = "NOT locked: it lets software on the CPU rewrite it (the host may write " + strings.Join(d.HostWritable, ", ") + ")"
		}
		p("\nIntel flash descriptor: IFD v%d, %s, %s flash\n  descriptor %s\n", d.Version, d.Chipset, kib(d.FlashSize), lock)
		p("  %-18s %-23s %10s\n", "REGION", "RANGE", "SIZE")
		for _, reg := range d.Regions {
			if !reg.Used {
				p("  %-18s unused\n", reg.Name)
				continue
			}
			p("  %-18s 0x%08x-0x%08x %10s\n", reg.Name, reg.Base, reg.Limit, kib(reg.Size))
		}
		for _, m := range d.Masters {
			p("  master %-14s %s: read %s; write %s\n", m.Name, m.Raw, orNone(m.Read), orNone(m.Write))
		}
		if d.MEDisable != "" {
			p("  ME soft-disable strap: %s\n", d.MEDisable)
		}
	} else {
		p("\nIntel flash descriptor: none (an image of the BIOS region only, or not an Intel board)\n")
	}
	if me := r.ME; me != nil {
		p("Intel ME: %s\n", me.Summary)
		for _, n := range me.Notes {
			p("  note: %s\n", n)
		}
	}
	if len(r.FMAP) > 0 {
		p("\nFlash map (FMAP):\n")
		for _, a := range r.FMAP {
			p("  %-24s 0x%08x %10s\n", printableLine(a.Name), a.Offset, kib(int64(a.Size)))
		}
	}
	for _, c := range r.CBFS {
		p("\nCBFS in %s: %s, %s used, %s free\n", c.Area, kib(c.Size), kib(c.Used), kib(c.Free))
		p("  %-32s %-10s %-12s %9s %s\n", "NAME", "OFFSET", "TYPE", "SIZE", "COMPRESSION")
		for _, f := range c.Files {
			comp := f.Compression
			if f.Decompressed != 0 {
				comp += fmt.Sprintf(" (%d)", f.Decompressed)
			}
			p("  %-32s 0x%08x %-12s %9d %s\n", printableLine(f.Name), f.Offset, f.Type, f.Size, comp)
		}
	}
	if pl := r.Payload; pl != nil {
		p("\nPayload: Linux, kernel %s, initrd %s, %d kernel modules glint loads\n  command line: %s\n", kib(int64(pl.KernelSize)), kib(int64(pl.InitrdSize)), pl.Modules, printableLine(pl.Cmdline))
	}
	if o := r.Owner; o != nil {
		if len(o.Files) == 0 {
			p("\nOwner files: none (glint rom personalize IMAGE --key owner.asc puts your key in)\n")
		} else {
			p("\nOwner files: %s\n", strings.Join(o.Files, ", "))
		}
		for _, k := range o.Keys {
			exp := "never expires"
			if !k.Expires.IsZero() {
				exp = "expires " + k.Expires.UTC().Format("2006-01-02")
			}
			status := "OK, glint verifies with key " + k.SigningKey
			if k.Problem != "" {
				status = "UNUSABLE: " + k.Problem
			}
			p("  key %s %s\n      %s, created %s, %s: %s\n", k.Fingerprint, printableLine(strings.Join(k.UserIDs, ", ")), k.Algorithm, k.Created.UTC().Format("2006-01-02"), exp, status)
		}
		if o.Config != "" {
			p("  configuration (glint/config):\n")
			for _, l := range strings.Split(strings.TrimRight(o.Config, "\n"), "\n") {
				p("    | %s\n", printableLine(l))
			}
			if o.ConfigError != "" {
				p("  configuration REFUSED at boot: %s\n", o.ConfigError)
			}
		}
	}
	if len(r.Measured) > 0 {
		p("\ncoreboot will measure into PCR 2 (sha256 of the stored bytes):\n")
		for _, m := range r.Measured {
			p("  %s  %s\n", m.SHA256, printableLine(m.Description))
		}
		p("  (glint rom predict IMAGE: every PCR glint seals to)\n")
	}
	if len(r.Problems) == 0 {
		p("\nProblems: none found\n")
		return
	}
	p("\nPROBLEMS:\n")
	for _, pr := range r.Problems {
		p("  - %s\n", printableLine(pr))
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "nothing"
	}
	return strings.Join(s, " ")
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "OFF"
}

// maxOwnerFileArg bounds --key and --config files.
const maxOwnerFileArg = 1 << 20

func readSmallFile(path, what string) ([]byte, error) {
	b, err := safefile.ReadCapped(path, maxOwnerFileArg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return b, nil
}

func runRomPersonalize(e *env, args []string) error {
	fs := commandFlags(e, "rom personalize")
	keyFile := fs.String("key", "", "the owner's OpenPGP public key(s), armored (gpg --armor --export KEYID)")
	configFile := fs.String("config", "", "the owner configuration (docs/user-guide.md); default: keep the image's")
	out := fs.String("o", "", "write the personalized image here (default: replace IMAGE)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *keyFile == "" {
		return usageErrorf("usage: glint rom personalize IMAGE --key owner.asc [--config FILE] [-o OUT]")
	}
	img, err := rom.FromFile(pos[0])
	if err != nil {
		return err
	}
	keys, err := readSmallFile(*keyFile, "owner key file")
	if err != nil {
		return err
	}
	var config []byte
	if *configFile != "" {
		if config, err = readSmallFile(*configFile, "owner configuration"); err != nil {
			return err
		}
	}
	next, infos, err := rom.Personalize(img, rom.Personalization{Keys: keys, Config: config})
	for _, k := range infos {
		status := "OK"
		if k.Problem != "" {
			status = "UNUSABLE: " + k.Problem
		}
		fmt.Fprintf(e.stdout, "owner key %s %s (%s): %s\n", k.Fingerprint, printableLine(strings.Join(k.UserIDs, ", ")), k.Algorithm, status)
	}
	if err != nil {
		return fmt.Errorf("%s was not changed: %w", pos[0], err)
	}
	dst := *out
	if dst == "" {
		dst = pos[0]
	}
	perm := os.FileMode(0o644)
	if st, err := os.Stat(pos[0]); err == nil {
		perm = st.Mode().Perm()
	}
	if err := safefile.Write(dst, next.Data, perm); err != nil {
		return err
	}
	written := []string{rom.OwnerKeyCBFSName}
	if config != nil {
		written = append(written, rom.OwnerConfigCBFSName)
	}
	fmt.Fprintf(e.stdout, "wrote %s: %s\n", dst, strings.Join(written, ", "))
	if p, err := rom.Predict(next, rom.PredictOptions{}); err == nil {
		v, _ := p.PCR(7)
		bank := p.Banks[len(p.Banks)-1]
		fmt.Fprintf(e.stdout, "PCR 7 (owner files) will be %s %x\n", bank, v.Values[bank])
	}
	fmt.Fprintf(e.stdout, "before flashing, see every PCR it will produce: glint rom predict %s\n", dst)
	return nil
}

// predictJSON is the --json form of a prediction.
type predictJSON struct {
	Image      string                 `json:"image"`
	TPM        string                 `json:"tpm"`
	OTP        []int                  `json:"otp_pcrs"`
	Disk       []int                  `json:"disk_pcrs"`
	PCRs       []predictPCRJSON       `json:"pcrs"`
	OwnerFiles []string               `json:"owner_files"`
	Events     []eventlog.EventRecord `json:"events"`
	Notes      []string               `json:"notes,omitempty"`
}

type predictPCRJSON struct {
	Index  int    `json:"index"`
	SHA1   string `json:"sha1,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	Source string `json:"source"`
}

func parseTPMFlag(s string) (int, error) {
	switch s {
	case "":
		return 0, nil
	case "2.0", "2":
		return 20, nil
	case "1.2":
		return 12, nil
	}
	return 0, usageErrorf("--tpm-version %q: want 2.0 or 1.2", s)
}

func runRomPredict(e *env, args []string) error {
	fs := commandFlags(e, "rom predict")
	family := fs.String("tpm-version", "", "the machine's TPM, 2.0 or 1.2 (default: what the image was built for)")
	asJSON := fs.Bool("json", false, "print the prediction as JSON")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErrorf("usage: glint rom predict IMAGE [--tpm-version 2.0|1.2] [--json]")
	}
	fam, err := parseTPMFlag(*family)
	if err != nil {
		return err
	}
	img, err := rom.FromFile(pos[0])
	if err != nil {
		return err
	}
	p, err := rom.Predict(img, rom.PredictOptions{TPM: fam})
	if err != nil {
		return err
	}
	tpmName := map[int]string{20: "2.0", 12: "1.2"}[p.TPM]
	if *asJSON {
		j := predictJSON{Image: img.Source, TPM: tpmName, OTP: p.OTP, Disk: p.Disk, OwnerFiles: p.OwnerFiles, Notes: p.Notes}
		for _, v := range p.PCRs {
			j.PCRs = append(j.PCRs, predictPCRJSON{Index: v.Index, SHA1: hexOrEmpty(v.Values[tpm.SHA1]), SHA256: hexOrEmpty(v.Values[tpm.SHA256]), Source: v.Source})
		}
		for _, b := range p.Banks {
			j.Events = append(j.Events, p.Log.Records(b)...)
		}
		return writeJSON(e.stdout, j)
	}
	fmt.Fprintf(e.stdout, "PCRs after booting %s with TPM %s, as glint seals them\n", printableLine(img.Source), tpmName)
	fmt.Fprintf(e.stdout, "(the TOTP/HOTP secret is sealed to PCRs %s, the disk key to %s)\n\n", joinInts(p.OTP), joinInts(p.Disk))
	for _, b := range p.Banks {
		fmt.Fprintf(e.stdout, "%s bank:\n", b)
		for _, v := range p.PCRs {
			fmt.Fprintf(e.stdout, "  PCR %d  %x\n", v.Index, v.Values[b])
		}
	}
	fmt.Fprintf(e.stdout, "\nwhere each value comes from:\n")
	for _, v := range p.PCRs {
		fmt.Fprintf(e.stdout, "  PCR %d  %s\n", v.Index, printableLine(v.Source))
	}
	fmt.Fprintf(e.stdout, "\nmeasurements (%s digests):\n", p.Banks[len(p.Banks)-1])
	last := p.Banks[len(p.Banks)-1]
	for _, ev := range p.Log.Events {
		d, ok := ev.Digests[last]
		if !ok {
			d = ev.Digests[tpm.SHA1]
		}
		fmt.Fprintf(e.stdout, "  PCR %d  %x  %s\n", ev.PCR, d, printableLine(ev.Description))
	}
	if len(p.Notes) > 0 {
		fmt.Fprintf(e.stdout, "\nNOTES:\n")
		for _, n := range p.Notes {
			fmt.Fprintf(e.stdout, "  - %s\n", printableLine(n))
		}
	}
	return nil
}

func hexOrEmpty(b []byte) string {
	if b == nil {
		return ""
	}
	return hex.EncodeToString(b)
}

func joinInts(s []int) string {
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = fmt.Sprint(v)
	}
	return strings.Join(parts, ",")
}

func runRomExtract(e *env, args []string) error {
	fs := commandFlags(e, "rom extract")
	out := fs.String("o", "", "write the file here (default: standard output)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usageErrorf("usage: glint rom extract IMAGE NAME [-o FILE]")
	}
	img, err := rom.FromFile(pos[0])
	if err != nil {
		return err
	}
	f, err := img.File("COREBOOT", pos[1])
	if errors.Is(err, rom.ErrNotFound) {
		return fmt.Errorf("%s has no CBFS file %q (glint rom inspect lists them)", pos[0], pos[1])
	}
	if err != nil {
		return err
	}
	data, err := f.Contents()
	if err != nil {
		return err
	}
	if *out == "" {
		_, err = e.stdout.Write(data)
		return err
	}
	return safefile.Write(*out, data, 0o644)
}

func runRomRelayout(e *env, args []string) error {
	fs := commandFlags(e, "rom relayout")
	layout := fs.String("layout", "", "flashrom layout file: one \"base:limit region\" line per region (fd, bios, me, gbe, pd)")
	out := fs.String("o", "", "write the new image here")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *layout == "" || *out == "" {
		return usageErrorf("usage: glint rom relayout IMAGE --layout FILE -o OUT")
	}
	img, err := rom.FromFile(pos[0])
	if err != nil {
		return err
	}
	text, err := readSmallFile(*layout, "layout file")
	if err != nil {
		return err
	}
	spans, err := rom.ParseFlashromLayout(text)
	if err != nil {
		return err
	}
	next, err := rom.Relayout(img.Data, spans)
	if err != nil {
		return fmt.Errorf("nothing written: %w", err)
	}
	if err := safefile.Write(*out, next, 0o644); err != nil {
		return err
	}
	d, err := rom.ParseDescriptor(next)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %s with the regions:\n", *out)
	for _, r := range d.Regions {
		if r.Used() {
			fmt.Fprintf(e.stdout, "  %s\n", r)
		}
	}
	fmt.Fprintf(e.stdout, "Intel ME: %s\n", rom.AnalyzeME(next, d).Summary())
	return nil
}

func runRomAssemble(e *env, args []string) error {
	fs := commandFlags(e, "rom assemble")
	backup := fs.String("backup", "", "a read of your whole chip (glint flash backup): its descriptor, ME and GbE are kept")
	bios := fs.String("bios", "", "the coreboot image for this board and layout (only its BIOS region is used)")
	out := fs.String("o", "", "write the whole-chip image here")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *backup == "" || *bios == "" || *out == "" {
		return usageErrorf("usage: glint rom assemble --backup CHIP.rom --bios COREBOOT.rom -o OUT")
	}
	full, err := rom.FromFile(*backup)
	if err != nil {
		return err
	}
	build, err := rom.FromFile(*bios)
	if err != nil {
		return err
	}
	img, err := rom.Assemble(full, build)
	if err != nil {
		return fmt.Errorf("nothing written: %w", err)
	}
	if err := safefile.Write(*out, img.Data, 0o644); err != nil {
		return err
	}
	off, size := img.BIOSRegion()
	fmt.Fprintf(e.stdout, "wrote %s: descriptor, ME and GbE from %s, BIOS region 0x%x-0x%x from %s\n", *out, *backup, off, off+size-1, *bios)
	fmt.Fprintf(e.stdout, "check it before flashing: glint rom inspect %s\n", *out)
	return nil
}
