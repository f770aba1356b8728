package boot

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/glint-boot/glint/internal/diskkey"
	"github.com/glint-boot/glint/internal/luks"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/seal"
	"github.com/glint-boot/glint/internal/tpm"
)

// diskKeyCpio unseals the disk unlock key (if one is sealed) and returns
// the cpio to append to the OS initrd. seal.ErrNotSealed means none is set
// up. In attended mode a failure is shown and the OS asks for its passphrase
// as usual; in unattended mode (servers) a failure stops the boot.
func (f *Flow) diskKeyCpio(forced bool, osInitrd io.Reader) ([]byte, error) {
	if f.Config.DiskUnlock == "off" || f.BootDir == "" {
		return nil, seal.ErrNotSealed
	}
	rec, err := seal.Load(f.BootDir, diskkey.Purpose)
	if err != nil {
		if errors.Is(err, seal.ErrNotSealed) {
			return nil, err
		}
		return nil, f.diskFailed(err)
	}
	if forced || f.tpm == nil {
		return nil, f.diskFailed(errors.New("this boot is forced or has no TPM: the disk key stays sealed"))
	}
	dev, err := findLUKS(rec.Extra["uuid"], rec.Extra["device"])
	if err != nil {
		return nil, f.diskFailed(err)
	}
	if err := diskkey.MeasureHeader(rec, dev, f.measure); err != nil {
		return nil, f.diskFailed(err)
	}
	var pin []byte
	tries := 1
	if rec.PIN {
		tries = 3
	}
	var key []byte
	for try := 1; try <= tries; try++ {
		if rec.PIN {
			p, perr := f.Con.PromptSecret("Disk unlock PIN: ")
			if perr != nil {
				return nil, perr
			}
			pin = []byte(p)
		}
		key, err = seal.Unseal(f.tpm, rec, pin, f.Profile, f.sealEvents())
		wipe(pin)
		if err == nil || !errors.Is(err, tpm.ErrAuthFail) {
			break
		}
		f.Con.Printf("wrong PIN (try %d of %d)\n", try, tries)
	}
	if err != nil {
		return nil, f.diskFailed(err)
	}
	defer luks.Wipe(key)
	tab, style := KeyCrypttab(osInitrd, rec.Extra["uuid"], rec.Extra["name"])
	cpio, err := luks.BuildKeyCpio(key, tab, style)
	if err != nil {
		return nil, f.diskFailed(err)
	}
	f.Con.Printf("disk unlock key released for LUKS volume %s\n", rec.Extra["uuid"])
	return cpio, nil
}

// diskFailed reports a withheld disk key. Attended: the boot continues and
// the OS asks for the passphrase. Unattended: the boot stops.
func (f *Flow) diskFailed(err error) error {
	f.Con.Banner(red, "DISK KEY WITHHELD")
	f.Con.Printf("disk key: %v\n", err)
	if f.Config.DiskUnlock == "unattended" {
		f.problems = append(f.problems, "disk key withheld: "+err.Error())
		f.Con.Printf("unattended mode: not booting without the disk key; the cause above must be fixed by the owner\n")
		return fmt.Errorf("disk key withheld: %w", err)
	}
	f.Con.Printf("the OS will ask for the disk passphrase\n")
	return seal.ErrNotSealed
}

// findLUKS finds the block device with the LUKS UUID (the recorded device
// path may have changed name since sealing).
func findLUKS(uuid, recorded string) (string, error) {
	cands := []string{recorded}
	if uuid != "" {
		cands = append(cands, filepath.Join("/dev/disk/by-uuid", uuid))
	}
	cands = append(cands, blockDevices()...)
	for _, c := range cands {
		if c == "" {
			continue
		}
		h, err := luks.ReadHeader(c)
		if err == nil && (uuid == "" || strings.EqualFold(h.UUID, uuid)) {
			return c, nil
		}
	}
	if _, err := os.Stat(recorded); err != nil && uuid == "" {
		return "", err
	}
	return "", fmt.Errorf("no LUKS volume with UUID %s found (disk missing or header replaced)", uuid)
}

// SealDisk adds a TPM-sealed key to a LUKS keyslot of device and stores the
// record on /boot. PCR 4 is sealed at its normal-boot value and PCR 6 at
// "extended with this header"; the other PCRs of the profile's disk set at
// their current values.
func (f *Flow) SealDisk(device string, passphrase, pin []byte, name string) (*seal.Record, error) {
	if f.tpm == nil {
		return nil, errors.New("no TPM")
	}
	var set []int
	for _, i := range f.Profile.Disk {
		if i != pcr.LUKS {
			set = append(set, i)
		}
	}
	vals, predicted, err := f.otpPolicy(set)
	if err != nil {
		return nil, err
	}
	// PCR 6 before glint extends the header into it: predicted from the
	// firmware log on a running OS, else its value now.
	start, have := f.startPCRs[pcr.LUKS]
	if !have {
		cur, err := f.tpm.ReadPCRs(f.bank, []int{pcr.LUKS})
		if err != nil {
			return nil, err
		}
		start = cur[pcr.LUKS]
	}
	rec, err := diskkey.Seal(f.tpm, diskkey.SealRequest{
		Device: device, Passphrase: passphrase, PIN: pin, Name: name, Profile: f.Profile,
		Bank: f.bank, Values: vals, Predicted: predicted, PCR6Start: start,
		Events: f.sealEvents(), Now: f.Now(), Slot: -1,
	})
	if err != nil {
		return nil, err
	}
	if err := f.withWritableBoot(func() error { return seal.Save(f.BootDir, rec) }); err != nil {
		return nil, err
	}
	return rec, nil
}

// UnsealDisk measures the LUKS header (PCR 6), checks it and unseals the
// disk key: what the boot does before kexec, for tests and recovery.
func (f *Flow) UnsealDisk(device string, pin []byte) ([]byte, error) {
	rec, err := seal.Load(f.BootDir, diskkey.Purpose)
	if err != nil {
		return nil, err
	}
	if device == "" {
		if device, err = findLUKS(rec.Extra["uuid"], rec.Extra["device"]); err != nil {
			return nil, err
		}
	}
	if err := diskkey.MeasureHeader(rec, device, f.measure); err != nil {
		return nil, err
	}
	return seal.Unseal(f.tpm, rec, pin, f.Profile, f.sealEvents())
}

// KeyCrypttab decides the crypttab the key cpio carries: the OS initrd's own
// entries (so its mapper names, root_crypt or luks-<uuid>, and its other
// volumes survive) with the sealed volume pointed at the injected key, in
// the OS initrd's dialect. If the initrd cannot be read, both dialects with
// the name recorded at seal time.
func KeyCrypttab(osInitrd io.Reader, uuid, name string) ([]luks.CrypttabEntry, luks.Style) {
	style := luks.StyleBoth
	var osTab []luks.CrypttabEntry
	if info, err := luks.ReadInitrd(osInitrd); err == nil {
		style, osTab = info.Style, info.Crypttab
	}
	listed := false
	for _, e := range osTab {
		if strings.EqualFold(e.UUID(), uuid) {
			listed = true
		}
	}
	if !listed && name != "" {
		return append(osTab, luks.KeyEntry(name, uuid, "luks")), style
	}
	return luks.MergeCrypttab(osTab, []string{uuid}), style
}
