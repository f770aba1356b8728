package reown

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/ownerconfig"
	"github.com/glint-boot/glint/internal/rom"
	"github.com/glint-boot/glint/internal/tpm"
)

// keptOwnerFiles are the firmware's owner files a re-ownership keeps: the
// owner configuration (shown, and kept unless the owner asks for the
// defaults) and the firmware publisher's release key (it only lets the
// owner install updates the publisher signed). Everything else under
// glint/ belonged to the previous owner and is removed: above all an
// approval key (glint/approval.*), with which the previous owner could
// approve PCR values and so open the new owner's sealed secrets, and the
// keys trusted for USB boot.
var keptOwnerFiles = map[string]bool{rom.OwnerConfigFile: true, "publisher.asc": true}

// firmware is step 4: the new owner's public key (and the configuration)
// into the firmware image, which is then written to the chip. The PCR
// values the new image will produce are predicted (rom.Predict) so that
// step 5 seals the TOTP secret to the next boot's values.
//
// Repeating it is harmless: an image that already holds the new owner's
// files is personalised to the same bytes, and writing identical bytes
// changes nothing.
func (s *session) firmware(ctx context.Context) error {
	w := s.w
	if err := s.ensureOwner(); err != nil {
		return err
	}
	if w.Firmware == nil {
		return errors.New("glint cannot reach the flash chip here")
	}
	w.say("Reading the firmware (%s)...\n", w.Firmware)
	cur, err := w.Firmware.Read(ctx)
	if err != nil {
		return fmt.Errorf("read the firmware: %s", describeFlashError(err))
	}
	img, err := rom.FromBytes(cur)
	if err != nil {
		return err
	}
	next, files, err := s.personalize(img)
	if err != nil {
		return err
	}
	predCur, err := rom.Predict(img, rom.PredictOptions{})
	if err != nil {
		return fmt.Errorf("predict the PCRs of the current firmware: %w", err)
	}
	predNext, err := rom.Predict(next, rom.PredictOptions{})
	if err != nil {
		return fmt.Errorf("predict the PCRs of the new firmware: %w", err)
	}
	changed := predCur.Changed(predNext)
	s.j.Predicted = map[string]map[string]string{}
	for _, b := range predNext.Banks {
		m := map[string]string{}
		for _, i := range changed {
			if p, ok := predNext.PCR(i); ok && p.Values[b] != nil {
				m[strconv.Itoa(i)] = hex.EncodeToString(p.Values[b])
			}
		}
		s.j.Predicted[b.String()] = m
	}
	w.say("The new firmware changes PCR %s (the owner files glint measures); everything else stays as it is.\n", joinInts(changed))
	s.warnIfModelOff(predCur)

	sum := sha256.Sum256(next.Data)
	s.j.ImageSHA256 = hex.EncodeToString(sum[:])
	if bytes.Equal(next.Data, cur) {
		w.say("The firmware already holds your key (an earlier run of this step wrote it).\n")
	} else {
		ok, err := yes(w.UI, KeyFirmwareFlash, fmt.Sprintf("Write the new firmware to %s now? ", w.Firmware), "")
		if err == nil && !ok {
			err = fmt.Errorf("%w: the firmware was not written", ErrDeclined)
		}
		if err != nil {
			return err
		}
		if err := w.Firmware.Write(ctx, next.Data, func(format string, a ...any) { w.say("  "+format+"\n", a...) }); err != nil {
			return fmt.Errorf("write the firmware: %s", describeFlashError(err))
		}
		w.say("Firmware written: it holds your key from the next power-on.\n")
	}
	s.image, s.ownerFiles = next.Data, files
	return nil
}

// personalize puts the owner key (and the kept configuration) into img
// and removes the previous owner's other files.
func (s *session) personalize(img *rom.Image) (*rom.Image, map[string][]byte, error) {
	w := s.w
	files, err := rom.OwnerFiles(img)
	if err != nil {
		return nil, nil, fmt.Errorf("the firmware's owner files: %w", err)
	}
	out := img
	var removed []string
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if n == rom.OwnerKeyFile || keptOwnerFiles[n] {
			continue
		}
		if out, err = out.RemoveFile("COREBOOT", rom.OwnerFilePrefix+n); err != nil {
			return nil, nil, fmt.Errorf("remove %s%s: %w", rom.OwnerFilePrefix, n, err)
		}
		removed = append(removed, rom.OwnerFilePrefix+n)
	}
	if len(removed) > 0 {
		w.say("Removing the previous owner's %s from the firmware.\n", strings.Join(removed, ", "))
	}
	cfg, err := s.chooseConfig(files[rom.OwnerConfigFile])
	if err != nil {
		return nil, nil, err
	}
	next, _, err := rom.Personalize(out, rom.Personalization{Keys: s.ownerASC, Config: cfg, Now: w.now()})
	if err != nil {
		return nil, nil, err
	}
	if cfg == nil {
		// Personalize keeps an existing configuration when given none: the
		// defaults mean removing it.
		if _, ferr := next.File("COREBOOT", rom.OwnerConfigCBFSName); ferr == nil {
			if next, err = next.RemoveFile("COREBOOT", rom.OwnerConfigCBFSName); err != nil {
				return nil, nil, err
			}
		}
	}
	nextFiles, err := rom.OwnerFiles(next)
	if err != nil {
		return nil, nil, err
	}
	return next, nextFiles, nil
}

// chooseConfig shows the current owner configuration and asks whether to
// keep it (nil: the defaults, no glint/config).
func (s *session) chooseConfig(cur []byte) ([]byte, error) {
	w := s.w
	if len(cur) == 0 {
		w.say("The firmware has no owner configuration: glint's defaults apply (docs/user-guide.md).\n")
		return nil, nil
	}
	if _, err := ownerconfig.Parse(cur); err != nil {
		w.say("The firmware's owner configuration is not valid (%v): it is replaced by glint's defaults.\n", err)
		return nil, nil
	}
	w.say("The firmware's owner configuration (glint/config), set by the previous owner:\n%s", indent(string(cur)))
	a, err := w.UI.Ask(Question{Key: KeyFirmwareConfig, Prompt: "Keep it, or use glint's defaults? ", Choices: []string{"keep", "default"}, Default: "keep"})
	if err != nil {
		return nil, err
	}
	if string(a) == "keep" {
		return cur, nil
	}
	return nil, nil
}

// warnIfModelOff compares the prediction for the running image with the
// PCRs now, for the PCRs the new image changes: when they differ, the
// firmware running is not the image on the chip, or the model does not fit
// this board, and the sealed TOTP secret may not open at the next boot.
func (s *session) warnIfModelOff(predCur *rom.Prediction) {
	w := s.w
	st, err := w.Sealing()
	if err != nil || st.TPM == nil {
		return
	}
	now, err := w.TPM.ReadPCRs(st.Bank, []int{7})
	if err != nil {
		return
	}
	if p, ok := predCur.PCR(7); ok && p.Values[st.Bank] != nil && !bytes.Equal(p.Values[st.Bank], now[7]) {
		w.say("Note: PCR 7 now (%x) is not what the chip's current image predicts (%x): the running firmware's owner files are not the chip's. If the TOTP code is missing at the next boot, seal it again from the boot menu (r).\n", now[7], p.Values[st.Bank])
	}
}

// nextValues are the journal's predicted values for bank, as the sealing
// wants them, and the predicted events for those PCRs (for explanations).
func (s *session) nextValues(bank tpm.Alg) (map[int][]byte, []eventlog.EventRecord, error) {
	vals := map[int][]byte{}
	for idx, h := range s.j.Predicted[bank.String()] {
		i, err := strconv.Atoi(idx)
		if err != nil {
			return nil, nil, err
		}
		b, err := hex.DecodeString(h)
		if err != nil {
			return nil, nil, err
		}
		vals[i] = b
	}
	if len(vals) == 0 {
		return nil, nil, fmt.Errorf("the journal has no predicted %s values", bank)
	}
	var events []eventlog.EventRecord
	if s.ownerFiles == nil {
		return vals, nil, nil
	}
	img, err := rom.FromBytes(s.image)
	if err != nil {
		return vals, nil, nil
	}
	if p, err := rom.Predict(img, rom.PredictOptions{}); err == nil {
		for _, e := range p.Log.Events {
			if _, ok := vals[e.PCR]; ok && e.Digests[bank] != nil {
				events = append(events, eventlog.EventRecord{PCR: e.PCR, Type: e.Type, Description: e.Description, Alg: bank, Digest: e.Digests[bank]})
			}
		}
	}
	return vals, events, nil
}

func joinInts(xs []int) string {
	var out []string
	for _, x := range xs {
		out = append(out, strconv.Itoa(x))
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("    " + l + "\n")
	}
	return b.String()
}
