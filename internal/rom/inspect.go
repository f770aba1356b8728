package rom

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/glint-boot/glint/internal/ownerconfig"
	"github.com/glint-boot/glint/internal/tpm"
)

// Inspection is everything glint can tell an owner about a firmware image
// before it is flashed: what board it is for, how the flash is divided and
// who may write what, the ME, the coreboot files and the free space, the
// owner's keys and configuration inside, and what coreboot will measure.
// It is built from untrusted bytes: every part that cannot be read is
// reported in Problems, never fatal.
type Inspection struct {
	Source string `json:"source"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`

	Build      *BuildReport      `json:"build,omitempty"`
	Descriptor *DescriptorReport `json:"descriptor,omitempty"`
	ME         *MEReportJSON     `json:"me,omitempty"`
	FMAP       []AreaReport      `json:"fmap,omitempty"`
	CBFS       []CBFSReport      `json:"cbfs,omitempty"`
	Payload    *PayloadReport    `json:"payload,omitempty"`
	Owner      *OwnerReport      `json:"owner,omitempty"`
	// Measured is what coreboot will measure into PCR 2, in order.
	Measured []MeasuredReport `json:"measured,omitempty"`
	Problems []string         `json:"problems,omitempty"`
}

// BuildReport is Build without the full config.
type BuildReport struct {
	Board           string `json:"board"`
	Vendor          string `json:"vendor,omitempty"`
	Part            string `json:"part,omitempty"`
	Kconfig         string `json:"kconfig,omitempty"`
	CorebootVersion string `json:"coreboot_version,omitempty"`
	ROMSize         int64  `json:"rom_size,omitempty"`
	TPM             string `json:"tpm,omitempty"`
	MeasuredBoot    bool   `json:"measured_boot"`
	Payload         string `json:"payload,omitempty"`
}

// DescriptorReport is the Intel Flash Descriptor in words.
type DescriptorReport struct {
	Version   int            `json:"ifd_version"`
	Chipset   string         `json:"chipset"`
	FlashSize int64          `json:"flash_size"`
	Regions   []RegionReport `json:"regions"`
	Masters   []MasterReport `json:"masters"`
	// Locked: the host CPU cannot rewrite the descriptor (internal
	// flashing then writes the BIOS region only).
	Locked bool `json:"locked"`
	// HostWritable lists the regions software on the CPU may write.
	HostWritable []string `json:"host_writable"`
	MEDisable    string   `json:"me_disable_strap"`
}

// RegionReport is one descriptor region.
type RegionReport struct {
	Name  string `json:"name"`
	Short string `json:"short"`
	Used  bool   `json:"used"`
	Base  uint32 `json:"base"`
	Limit uint32 `json:"limit"`
	Size  int64  `json:"size"`
}

// MasterReport is one FLMSTR register in words.
type MasterReport struct {
	Name  string   `json:"name"`
	Raw   string   `json:"raw"`
	Read  []string `json:"read"`
	Write []string `json:"write"`
}

// MEReportJSON is the ME report for JSON.
type MEReportJSON struct {
	State      string   `json:"state"`
	Summary    string   `json:"summary"`
	Version    string   `json:"version,omitempty"`
	Kept       []string `json:"partitions_with_data,omitempty"`
	Emptied    []string `json:"partitions_emptied,omitempty"`
	Shrunk     bool     `json:"shrunk"`
	FreeTail   int64    `json:"region_free_bytes"`
	DisableBit string   `json:"disable_strap,omitempty"`
	DisableSet bool     `json:"disable_strap_set"`
	Notes      []string `json:"notes,omitempty"`
}

// AreaReport is one FMAP area.
type AreaReport struct {
	Name   string `json:"name"`
	Offset uint32 `json:"offset"`
	Size   uint32 `json:"size"`
}

// CBFSReport is one CBFS.
type CBFSReport struct {
	Area  string       `json:"area"`
	Size  int64        `json:"size"`
	Used  int64        `json:"used"`
	Free  int64        `json:"free"`
	Files []FileReport `json:"files"`
}

// FileReport is one CBFS file.
type FileReport struct {
	Name         string `json:"name"`
	Type         string `json:"type"`
	Offset       int64  `json:"offset"`
	Size         int    `json:"size"`
	Compression  string `json:"compression"`
	Decompressed uint32 `json:"decompressed_size,omitempty"`
	HashAlg      uint8  `json:"hash_alg,omitempty"`
	Hash         string `json:"hash,omitempty"`
	SHA256       string `json:"sha256"` // of the stored bytes: what coreboot measures
}

// PayloadReport is the Linux payload.
type PayloadReport struct {
	Cmdline    string `json:"cmdline"`
	KernelSize uint32 `json:"kernel_size"`
	InitrdSize uint32 `json:"initrd_size"`
	Modules    int    `json:"modules"`
}

// OwnerReport is the owner's files in the image.
type OwnerReport struct {
	Files       []string   `json:"files"`
	Keys        []OwnerKey `json:"keys,omitempty"`
	KeyProblem  string     `json:"key_problem,omitempty"`
	Config      string     `json:"config,omitempty"`
	ConfigError string     `json:"config_error,omitempty"`
}

// MeasuredReport is one coreboot measurement.
type MeasuredReport struct {
	PCR         int    `json:"pcr"`
	Description string `json:"description"`
	SHA256      string `json:"sha256"`
	SHA1        string `json:"sha1"`
}

// Inspect reads everything it can from img. now decides key expiry.
func Inspect(img *Image, now time.Time) *Inspection {
	sum := sha256.Sum256(img.Data)
	r := &Inspection{Source: img.Source, Size: int64(len(img.Data)), SHA256: hex.EncodeToString(sum[:])}
	problem := func(format string, a ...any) { r.Problems = append(r.Problems, fmt.Sprintf(format, a...)) }

	if b, err := Identify(img); err == nil || b != nil && len(b.Config) > 0 {
		r.Build = &BuildReport{Board: b.Board.String(), Vendor: b.Board.Vendor, Part: b.Board.Part, Kconfig: b.Board.Kconfig,
			CorebootVersion: b.CorebootVersion, ROMSize: b.ROMSize, MeasuredBoot: b.MeasuredBoot, Payload: b.Payload}
		switch b.TPM {
		case 20:
			r.Build.TPM = "2.0"
		case 12:
			r.Build.TPM = "1.2"
		}
		if b.ROMSize != 0 && b.ROMSize != r.Size {
			problem("the build was configured for a %d KiB flash, the image has %d KiB", b.ROMSize>>10, r.Size>>10)
		}
		if !b.MeasuredBoot {
			problem("coreboot was built without CONFIG_TPM_MEASURED_BOOT: it measures nothing, so glint's sealing cannot tell this firmware from another")
		}
	} else if img.FMAP != nil {
		problem("no board identity in CBFS (build_info, config): glint cannot check that this image is for your machine")
	}

	if d := img.Descriptor; d != nil {
		r.Descriptor = describeDescriptor(d)
		for _, p := range d.Check(r.Size) {
			problem("descriptor: %s", p)
		}
		if img.FMAP != nil {
			for _, p := range CheckFMAPAgainstDescriptor(img.FMAP, d) {
				problem("coreboot's flash map does not match the descriptor: %s (coreboot must be built for the descriptor's layout: a maximized descriptor needs a maximized coreboot)", p)
			}
		}
		me := AnalyzeME(img.Data, d)
		r.ME = &MEReportJSON{State: string(me.State), Summary: me.Summary(), Kept: me.Kept, Emptied: me.Emptied,
			Shrunk: me.Shrunk, FreeTail: me.FreeTail, Notes: me.Notes}
		if me.Firmware != nil {
			r.ME.Version = me.Firmware.Version
		}
		if me.Disable.Present {
			r.ME.DisableBit, r.ME.DisableSet = me.Disable.Name, me.Disable.Set
		}
	}

	if img.FMAP == nil {
		problem("no coreboot flash map: this is not a coreboot image (vendor firmware?)")
		return r
	}
	for _, a := range img.FMAP.Areas {
		r.FMAP = append(r.FMAP, AreaReport{a.Name, a.Offset, a.Size})
	}
	for _, area := range []string{"COREBOOT", "FW_MAIN_A", "FW_MAIN_B", "RW_LEGACY"} {
		a, ok := img.FMAP.Area(area)
		if !ok {
			continue
		}
		files, err := img.CBFS(area)
		if err != nil {
			problem("CBFS in %s: %v", area, err)
			continue
		}
		c := CBFSReport{Area: area, Size: int64(a.Size)}
		for _, f := range files {
			if f.Empty() {
				c.Free += int64(len(f.Data))
				continue
			}
			s := sha256.Sum256(f.Data)
			fr := FileReport{Name: f.Name, Type: f.Type.String(), Offset: f.Offset, Size: len(f.Data), Compression: f.Compression.String(),
				HashAlg: f.HashAlg, SHA256: hex.EncodeToString(s[:])}
			if f.Compression != CompressNone {
				fr.Decompressed = f.DecompressedSize
			}
			if len(f.Hash) > 0 {
				fr.Hash = hex.EncodeToString(f.Hash)
			}
			c.Files = append(c.Files, fr)
		}
		c.Used = c.Size - c.Free
		r.CBFS = append(r.CBFS, c)
	}
	if h, err := img.MasterHeader(); err == nil {
		for _, p := range h.Problems(img) {
			problem("CBFS master header: %s", p)
		}
	}

	if p, files, err := img.PayloadFiles(); err == nil {
		r.Payload = &PayloadReport{Cmdline: p.Cmdline}
		if p.Kernel != nil {
			r.Payload.KernelSize = p.Kernel.MemLen
		}
		if p.Initrd != nil {
			r.Payload.InitrdSize = p.Initrd.MemLen
		}
		mods, _ := moduleMeasurements(files)
		r.Payload.Modules = len(mods)
	}

	r.Owner = &OwnerReport{}
	owner, err := OwnerFiles(img)
	if err != nil {
		problem("owner files: %v", err)
	}
	for n := range owner {
		r.Owner.Files = append(r.Owner.Files, OwnerFilePrefix+n)
	}
	sort.Strings(r.Owner.Files)
	if keys, ok := owner[OwnerKeyFile]; ok {
		k, err := CheckOwnerKeys(keys, now)
		r.Owner.Keys = k
		if err != nil {
			r.Owner.KeyProblem = err.Error()
			problem("owner keys: %v", err)
		}
	}
	if cfg, ok := owner[OwnerConfigFile]; ok {
		lines := strings.Split(string(cfg[:min(len(cfg), 4096)]), "\n")
		for i, l := range lines {
			lines[i] = cName([]byte(l)) // no terminal control from a crafted file
		}
		r.Owner.Config = strings.Join(lines, "\n")
		if _, err := ownerconfig.Parse(cfg); err != nil {
			r.Owner.ConfigError = err.Error()
			problem("owner configuration: %v", err)
		}
	}

	if cb, err := PredictCorebootPCR2(img); err == nil {
		for _, e := range cb.Log.Events {
			r.Measured = append(r.Measured, MeasuredReport{PCR: e.PCR, Description: e.Description,
				SHA256: hex.EncodeToString(e.Digests[tpm.SHA256]), SHA1: hex.EncodeToString(e.Digests[tpm.SHA1])})
		}
	} else {
		problem("what coreboot measures: %v", err)
	}
	return r
}

func describeDescriptor(d *Descriptor) *DescriptorReport {
	r := &DescriptorReport{Version: int(d.Version), Chipset: d.Chipset, FlashSize: d.FlashSize(), Locked: d.Locked()}
	names := func(bits uint16) []string {
		out := []string{}
		for _, reg := range d.Regions {
			if reg.Used() && bits&(1<<reg.ID) != 0 {
				out = append(out, reg.ID.Short())
			}
		}
		return out
	}
	for _, reg := range d.Regions {
		if reg.Used() || reg.ID.String() != "Reserved" {
			r.Regions = append(r.Regions, RegionReport{Name: reg.ID.String(), Short: reg.ID.Short(), Used: reg.Used(), Base: reg.Base, Limit: reg.Limit, Size: reg.Size()})
		}
	}
	for _, m := range d.Masters {
		r.Masters = append(r.Masters, MasterReport{Name: m.Name, Raw: fmt.Sprintf("0x%08x", m.Raw), Read: names(m.Read), Write: names(m.Write)})
	}
	r.HostWritable = names(d.HostMaster().Write)
	if d.MEDisable.Present {
		r.MEDisable = fmt.Sprintf("%s %v", d.MEDisable.Name, map[bool]string{true: "set", false: "not set"}[d.MEDisable.Set])
	}
	return r
}
