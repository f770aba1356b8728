package boot

import (
	"errors"
	"fmt"
	"io"

	"github.com/glint-boot/glint/internal/seal"
	"github.com/glint-boot/glint/internal/sealed"
	"github.com/glint-boot/glint/internal/secret"
	"github.com/glint-boot/glint/internal/tpm"
)

// diskKeyCpio unseals the disk unlock key (if one is sealed) and returns
// the cpio to append to the OS initrd. seal.ErrNotSealed means none is set
// up. In attended mode a failure is shown and the OS asks for its passphrase
// as usual; in unattended mode (servers) a failure stops the boot.
func (f *Flow) diskKeyCpio(forced bool, osInitrd io.Reader) ([]byte, error) {
	if f.Config.DiskUnlock == "off" || f.BootDir == "" || !f.Config.Boot.Mode.TamperChecks() {
		return nil, seal.ErrNotSealed
	}
	rec, err := sealed.LoadDisk(f.BootDir)
	if err != nil {
		if errors.Is(err, seal.ErrNotSealed) {
			return nil, err
		}
		return nil, f.diskFailed(err)
	}
	if f.platformErr != nil {
		return nil, f.diskFailed(fmt.Errorf("the disk key stays sealed: %w", f.platformErr))
	}
	if forced || f.tpm == nil {
		return nil, f.diskFailed(errors.New("this boot is forced or has no TPM: the disk key stays sealed"))
	}
	dev, err := sealed.FindLUKS(rec)
	if err != nil {
		return nil, f.diskFailed(err)
	}
	if err := f.state.MeasureDiskHeader(rec, dev); err != nil {
		return nil, f.diskFailed(err)
	}
	tries := 1
	if rec.PIN {
		tries = 3
	}
	var key []byte
	for try := 1; try <= tries; try++ {
		var pin []byte
		if rec.PIN {
			p, perr := f.Con.PromptSecret("Disk unlock PIN: ")
			if perr != nil {
				return nil, perr
			}
			pin = p
		}
		key, err = f.state.UnsealDisk(rec, pin)
		secret.Wipe(pin)
		if err == nil || !errors.Is(err, tpm.ErrAuthFail) {
			break
		}
		f.Con.Printf("wrong PIN (try %d of %d)\n", try, tries)
	}
	if err != nil {
		if errors.Is(err, tpm.ErrLockout) {
			if st, serr := f.tpm.LockoutStatus(); serr == nil {
				f.Con.Printf("%s\n", st.Explain())
			}
		}
		return nil, f.diskFailed(err)
	}
	defer secret.Wipe(key)
	// A network-bound key also needs the attestation server's half.
	full, err := f.networkDiskKey(rec, key)
	if err != nil {
		return nil, f.diskFailed(err)
	}
	defer secret.Wipe(full)
	cpio, err := sealed.DiskKeyCpio(full, osInitrd, rec)
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
		// A server that stops here tells its attestation server why.
		f.reportOnce()
		return fmt.Errorf("disk key withheld: %w", err)
	}
	f.Con.Printf("the OS will ask for the disk passphrase\n")
	return seal.ErrNotSealed
}
