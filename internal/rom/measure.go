package rom

import (
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/tpm"
)

// corebootMeasured lists the CBFS files coreboot 4.15 measures into PCR 2 on
// a board without vboot, in the order the stages load them
// (src/security/tpm/tspi/crtm.c: tspi_measure_cbfs_hook for stages and
// payloads, TPM_CRTM_PCR = 2).
var corebootMeasured = []string{
	"bootblock",
	"fallback/romstage",
	"fallback/postcar",
	"fallback/ramstage",
	"fallback/payload",
}

// PCR2Prediction is what coreboot will measure into PCR 2 when it boots an
// image, and the PCR 2 values that follow.
type PCR2Prediction struct {
	// Log holds the measurements in order, named as coreboot names them,
	// with SHA-1 and SHA-256 digests, so it can be diffed against a live
	// log (eventlog.Diff) to say which stage differs.
	Log *eventlog.Log
	// PCR2 per bank, from reset (all zeros; coreboot measures nothing
	// into PCR 2 before this).
	PCR2 map[tpm.Alg][]byte
}

// PredictCorebootPCR2 computes PCR 2 for a coreboot 4.15 image: first the
// FMAP area "FMAP" ("FMAP: FMAP"), then the BOOTBLOCK area if the map has
// one, else the bootblock CBFS file, then the stored (possibly compressed)
// bytes of romstage, postcar, ramstage and payload from the COREBOOT CBFS
// ("FMAP: COREBOOT CBFS: <name>"). Files the image lacks are skipped, as
// coreboot never loads them.
func PredictCorebootPCR2(img *Image) (*PCR2Prediction, error) {
	l := &eventlog.Log{Format: eventlog.FormatCorebootTCPA, Algs: []tpm.Alg{tpm.SHA1, tpm.SHA256}, Source: "predicted from " + img.Source}
	add := func(name string, data []byte) {
		s1 := sha1.Sum(data)
		s256 := sha256.Sum256(data)
		l.Events = append(l.Events, eventlog.Event{
			Index: len(l.Events), PCR: 2, Type: eventlog.EvCorebootMeasurement,
			Digests:     map[tpm.Alg][]byte{tpm.SHA1: s1[:], tpm.SHA256: s256[:]},
			Description: truncName(name), Data: []byte(truncName(name)),
		})
	}
	fm, err := img.AreaData("FMAP")
	if err != nil {
		return nil, fmt.Errorf("predict PCR 2: coreboot measures the FMAP area first: %w", err)
	}
	add("FMAP: FMAP", fm)
	if bb, err := img.AreaData("BOOTBLOCK"); err == nil {
		add("FMAP: BOOTBLOCK", bb)
	}
	files, err := img.CBFS("COREBOOT")
	if err != nil {
		return nil, fmt.Errorf("predict PCR 2: %w", err)
	}
	for _, name := range corebootMeasured {
		if name == "bootblock" {
			if _, err := img.AreaData("BOOTBLOCK"); err == nil {
				continue
			}
		}
		var f *File
		for i := range files {
			if files[i].Name == name && !files[i].Empty() {
				f = &files[i]
				break
			}
		}
		if f == nil {
			if name == "fallback/payload" {
				return nil, errors.New("predict PCR 2: the image has no fallback/payload")
			}
			continue
		}
		add("FMAP: COREBOOT CBFS: "+name, f.Data)
	}
	p := &PCR2Prediction{Log: l, PCR2: map[tpm.Alg][]byte{}}
	for _, bank := range l.Algs {
		p.PCR2[bank] = l.Replay(bank)[2]
	}
	return p, nil
}

// truncName mirrors coreboot's strncpy into a 50-byte name field
// (TCPA_PCR_HASH_NAME - 1 characters), so names compare equal with a log.
func truncName(s string) string {
	if len(s) > 49 {
		return s[:49]
	}
	return s
}
