package swtpmtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/glint-boot/glint/internal/tpm"
)

// Manufacture gives dir a factory-fresh TPM of family v, replacing any TPM
// state there, for a TPM that something other than this package runs (the
// emulated laptop's QEMU, which attaches swtpm through its control
// channel). Unlike the TPMs Start runs, a TPM 2.0 made here also has an
// endorsement key (swtpm_setup --createek), as a TPM in a laptop does; a
// TPM 1.2 is owned with the well-known secrets, as for Start.
func Manufacture(v tpm.Version, dir string) error {
	if _, err := exec.LookPath("swtpm_setup"); err != nil {
		return errors.New("swtpm_setup is not installed (apt-get install swtpm-tools)")
	}
	// swtpm keeps the saved volatile state beside the permanent one: a
	// factory-fresh TPM has neither.
	for _, f := range []string{stateFile(v), "tpm2-00.volatilestate", "tpm-00.volatilestate", "tpm2-00.savestate", "tpm-00.savestate"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return setup(v, dir, true)
}

// setup runs swtpm_setup on dir: TPM 2.0 with the sha1 and sha256 banks
// (what PC Client machines ship with), an EK if ek; TPM 1.2 with an EK and
// owned with the TCG well-known secrets.
func setup(v tpm.Version, dir string, ek bool) error {
	var args []string
	if v == tpm.Version20 {
		args = []string{"--tpm2", "--tpmstate", dir, "--pcr-banks", "sha1,sha256"}
		if ek {
			args = append(args, "--createek")
		}
	} else {
		args = []string{"--tpmstate", dir, "--createek"}
	}
	out, err := exec.Command("swtpm_setup", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("swtpm_setup %v: %v\n%s", args, err, out)
	}
	if v == tpm.Version12 {
		return takeOwnership12(dir)
	}
	return nil
}

// FreePortPair finds a TCP port p on 127.0.0.1 such that p and p+1 are
// free right now (swtpm's command and control channels, as tpm2-tools'
// swtpm TCTI expects them).
func FreePortPair() (int, error) { return freePortPair() }
