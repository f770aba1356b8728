package rom

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/tpm"
)

// Predicting the PCRs glint seals to, from a firmware image alone, before
// it is flashed: so the TOTP/HOTP secret and the disk key can be re-sealed
// (TPM 1.2) or the new values approved (TPM 2.0) before the update, and the
// next boot shows the same code.
//
// The model, for coreboot 4.15 with a Linux payload whose /init is glint
// (the coreboot profile of package pcr):
//
//	PCR 0, 1  nothing measures them: all zeros.
//	PCR 2     coreboot (src/security/tpm/tspi/crtm.c): the FMAP area, the
//	          bootblock, then the stored bytes of every CBFS file coreboot
//	          loads as it boots (romstage, postcar, ramstage, payload), one
//	          TPM extend each. TPM 2.0 builds extend SHA-256 only (the SHA-1
//	          bank stays zero); TPM 1.2 builds extend SHA-1.
//	PCR 3     coreboot's runtime data (files named in
//	          CONFIG_TPM_MEASURED_BOOT_RUNTIME_DATA, MRC caches): zero when
//	          the build names none.
//	PCR 4     glint's boot mode: sealed at its value when glint starts,
//	          which is zero (glint extends a mode only to leave the normal
//	          boot).
//	PCR 5     glint: every kernel module it loads, in the order of the
//	          payload initramfs's /lib/modules/load-order.
//	PCR 6     glint: the LUKS header, measured when the disk key is
//	          unsealed; from the image alone only its start value (zero).
//	PCR 7     glint: the owner files (CBFS glint/*, else the payload's
//	          /etc/glint/*), name and content of each in name order.
//
// glint extends every active bank; the prediction gives SHA-1 and SHA-256
// for TPM 2.0 (the banks glint's machines run with) and SHA-1 for TPM 1.2.
//
// Limits: the list of files coreboot loads is board code, not image data.
// glint predicts the five stages; on boards that also read other CBFS files
// through coreboot's CBFS API (CPU microcode, VBT, SPD or MRC blobs, option
// ROMs) those measurements are missing and the prediction is wrong; the
// notes name such files when the image holds them. Prove the model on a
// machine once by comparing the prediction for its running image with its
// live PCRs (the e2e bench does this for QEMU q35, TPM 2.0 and 1.2). A
// module that fails to load is not measured; the prediction assumes all
// load.

// payloadOwnerFileCap is what the boot flow reads of each /etc/glint file
// (internal/boot payloadOwnerFiles).
const payloadOwnerFileCap = 1 << 20

// payloadOwnerFiles is the boot flow's fallback when CBFS has no owner
// files: the regular files directly in the initramfs's /etc/glint.
func payloadOwnerFiles(initramfs map[string][]byte) map[string][]byte {
	out := map[string][]byte{}
	for name, data := range initramfs {
		if dir, base := path.Split(name); dir == "etc/glint/" && base != "" && len(data) <= payloadOwnerFileCap {
			out[base] = data
		}
	}
	return out
}

// moduleMeasurements is what glint's /init extends into PCR 5: each module
// of /lib/modules/load-order (paths relative to /lib/modules; blank lines,
// comments and paths with ".." skipped) that exists, in order.
func moduleMeasurements(initramfs map[string][]byte) (ms []pcr.Measurement, missing []string) {
	order, ok := initramfs["lib/modules/load-order"]
	if !ok {
		return nil, nil
	}
	for _, line := range strings.Split(string(order), "\n") {
		rel := strings.TrimSpace(line)
		if rel == "" || strings.HasPrefix(rel, "#") || strings.Contains(rel, "..") {
			continue
		}
		data, ok := initramfs[strings.TrimPrefix(path.Join("lib/modules", rel), "/")]
		if !ok {
			missing = append(missing, rel)
			continue
		}
		ms = append(ms, pcr.Measurement{PCR: pcr.Modules, Description: "kernel module " + path.Base(rel), Data: data})
	}
	return ms, missing
}

// PredictedPCR is one PCR as the image will leave it when glint seals.
type PredictedPCR struct {
	Index int
	// Values per bank.
	Values map[tpm.Alg][]byte
	// Source says in words where the value comes from.
	Source string
}

// Prediction is every PCR glint seals to, for one image and TPM family.
type Prediction struct {
	TPM   int // 20 or 12 (as tpm.Version)
	Banks []tpm.Alg
	PCRs  []PredictedPCR // 0..7
	// Log holds every predicted measurement (coreboot's into PCR 2,
	// glint's into 5 and 7) with its digests, for diffing with a live log.
	Log *eventlog.Log
	// OTP and Disk are the PCR sets the TOTP/HOTP secret and the disk key
	// are sealed to (pcr.Coreboot).
	OTP, Disk []int
	// OwnerFiles are the names of the owner files measured, and where they
	// came from ("CBFS" or "payload /etc/glint").
	OwnerFiles       []string
	OwnerFilesSource string
	// Notes are the limits that apply to this image.
	Notes []string
}

// PCR returns the predicted PCR index.
func (p *Prediction) PCR(index int) (PredictedPCR, bool) {
	for _, v := range p.PCRs {
		if v.Index == index {
			return v, true
		}
	}
	return PredictedPCR{}, false
}

// PredictOptions chooses what Predict cannot read from the image.
type PredictOptions struct {
	// TPM is 20 or 12; 0 takes it from the image's config (CONFIG_TPM2 /
	// CONFIG_TPM1).
	TPM int
}

// coreboot loads these through its CBFS API on some boards; when an image
// holds them, the five-stage model may miss measurements.
var maybeMeasured = []string{"cpu_microcode_blob.bin", "vbt.bin", "spd.bin", "mrc.bin", "fallback/verstage", "fallback/refcode", "cmos_default.bin", "ecfw1.bin", "ecfw2.bin"}

// Predict computes every PCR glint seals to for img (see the model above).
func Predict(img *Image, opt PredictOptions) (*Prediction, error) {
	build, _ := Identify(img)
	family := opt.TPM
	if family == 0 && build != nil {
		family = build.TPM
	}
	p := &Prediction{TPM: family, OTP: pcr.Coreboot.OTP, Disk: pcr.Coreboot.Disk}
	switch family {
	case 20:
		p.Banks = []tpm.Alg{tpm.SHA1, tpm.SHA256}
	case 12:
		p.Banks = []tpm.Alg{tpm.SHA1}
	default:
		return nil, errors.New("rom: the image's config names no TPM (CONFIG_TPM1/CONFIG_TPM2): say which TPM the machine has (glint rom predict --tpm-version 2.0 or 1.2)")
	}
	if build != nil && !build.MeasuredBoot && len(build.Config) > 0 {
		return nil, errors.New("rom: this coreboot was built without CONFIG_TPM_MEASURED_BOOT: it measures nothing, and glint's sealing would protect nothing of the firmware")
	}
	// coreboot's measurements: SHA-256 on TPM 2.0 builds, SHA-1 on TPM 1.2.
	cb, err := PredictCorebootPCR2(img)
	if err != nil {
		return nil, err
	}
	corebootBank := tpm.SHA256
	if family == 12 {
		corebootBank = tpm.SHA1
	}
	log := &eventlog.Log{Format: eventlog.FormatCorebootTCPA, Algs: p.Banks, Source: "predicted from " + img.Source}
	for _, e := range cb.Log.Events {
		e.Digests = map[tpm.Alg][]byte{corebootBank: e.Digests[corebootBank]}
		e.Index = len(log.Events)
		log.Events = append(log.Events, e)
	}

	// glint's measurements from what the image carries.
	var glint []pcr.Measurement
	_, initramfs, perr := img.PayloadFiles()
	if perr != nil {
		p.Notes = append(p.Notes, fmt.Sprintf("the payload's initramfs could not be read (%v): PCR 5 and the /etc/glint fallback are predicted empty", perr))
		initramfs = map[string][]byte{}
	}
	mods, missing := moduleMeasurements(initramfs)
	if len(missing) > 0 {
		p.Notes = append(p.Notes, fmt.Sprintf("load-order names %d modules the initramfs lacks (%s): glint skips them", len(missing), strings.Join(missing, ", ")))
	}
	glint = append(glint, mods...)
	owner, err := OwnerFiles(img)
	if err != nil {
		return nil, fmt.Errorf("rom: owner files: %w", err)
	}
	p.OwnerFilesSource = "CBFS " + OwnerFilePrefix + "*"
	if len(owner) == 0 {
		owner = payloadOwnerFiles(initramfs)
		p.OwnerFilesSource = "payload /etc/glint"
	}
	for n := range owner {
		p.OwnerFiles = append(p.OwnerFiles, n)
	}
	sort.Strings(p.OwnerFiles)
	glint = append(glint, pcr.OwnerFiles(owner)...)
	for _, m := range glint {
		d := map[tpm.Alg][]byte{}
		for _, b := range p.Banks {
			d[b] = m.Digest(b)
		}
		log.Events = append(log.Events, eventlog.Event{Index: len(log.Events), PCR: m.PCR, Type: eventlog.EvIPL, Digests: d, Description: m.Description})
	}
	p.Log = log

	sources := map[int]string{
		0: "reset value: nothing measures it on coreboot",
		1: "reset value: nothing measures it on coreboot",
		2: fmt.Sprintf("coreboot: %d measurements (FMAP, bootblock, stages, payload)", len(cb.Log.Events)),
		3: "reset value: coreboot measures no runtime data in this build",
		4: "boot mode at glint's start (normal boot)",
		5: fmt.Sprintf("glint: %d kernel modules from the payload", len(mods)),
		6: "start value; glint adds the LUKS header when it unseals the disk key",
		7: fmt.Sprintf("glint: owner files from %s: %s", p.OwnerFilesSource, strings.Join(p.OwnerFiles, ", ")),
	}
	if family == 20 {
		sources[2] += "; SHA-256 bank only (coreboot 4.15 extends no other)"
	}
	if len(p.OwnerFiles) == 0 {
		sources[7] = "reset value: the image holds no owner files"
	}
	for i := 0; i <= 7; i++ {
		v := PredictedPCR{Index: i, Values: map[tpm.Alg][]byte{}, Source: sources[i]}
		for _, b := range p.Banks {
			val := pcr.Zero(b)
			for _, e := range log.Events {
				if d, ok := e.Digests[b]; ok && e.PCR == i {
					val = pcr.Extend(b, val, d)
				}
			}
			v.Values[b] = val
		}
		p.PCRs = append(p.PCRs, v)
	}

	if build != nil && len(build.RuntimeData) > 0 {
		p.Notes = append(p.Notes, fmt.Sprintf("the build measures runtime data into PCR 3 (%s): PCR 3 is not predicted", strings.Join(build.RuntimeData, " ")))
	}
	for _, name := range maybeMeasured {
		if _, err := img.File("COREBOOT", name); err == nil {
			p.Notes = append(p.Notes, fmt.Sprintf("CBFS holds %s, which coreboot reads (and measures into PCR 2) on some boards: check the prediction against this board's live PCR 2 once", name))
		}
	}
	if build != nil && (build.VBoot || build.CBFSVerification) {
		p.Notes = append(p.Notes, "the image uses vboot or CBFS verification: coreboot then measures more than the five stages; the prediction is not valid for it")
	}
	return p, nil
}

// Equal reports whether two predictions give the same values for every
// PCR and bank they share.
func (p *Prediction) Equal(o *Prediction) bool {
	for _, a := range p.PCRs {
		b, ok := o.PCR(a.Index)
		if !ok {
			return false
		}
		for bank, v := range a.Values {
			if w, ok := b.Values[bank]; ok && !bytes.Equal(v, w) {
				return false
			}
		}
	}
	return true
}

// Changed lists the PCRs whose value differs between two predictions.
func (p *Prediction) Changed(o *Prediction) []int {
	var out []int
	for _, a := range p.PCRs {
		b, ok := o.PCR(a.Index)
		if !ok {
			out = append(out, a.Index)
			continue
		}
		for bank, v := range a.Values {
			if w, ok := b.Values[bank]; ok && !bytes.Equal(v, w) {
				out = append(out, a.Index)
				break
			}
		}
	}
	return out
}

// CheckFirmwareLog compares what Predict expects coreboot to measure (PCRs
// 2 and 3) with coreboot's own log of a boot of the same image (cbmem's
// TCPA log: eventlog.ReadFirmwareLog on the running machine). No changes
// means the model holds for this board; an "added" event is a file this
// board's coreboot also measures, a "changed" one a file whose bytes
// differ. Run it once per board on the running image before relying on
// predictions for updates.
func (p *Prediction) CheckFirmwareLog(live *eventlog.Log) []eventlog.Change {
	keep := func(l *eventlog.Log) *eventlog.Log {
		out := &eventlog.Log{Format: l.Format, Algs: l.Algs, Source: l.Source}
		for _, e := range l.Events {
			if e.PCR == 2 || e.PCR == 3 {
				out.Events = append(out.Events, e)
			}
		}
		return out
	}
	return eventlog.Diff(keep(p.Log), keep(live))
}
