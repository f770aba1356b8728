package boot

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/glint-boot/glint/internal/chipset"
	"github.com/glint-boot/glint/internal/hostcheck"
	"github.com/glint-boot/glint/internal/pcr"
)

// PlatformLocker is a Machine that can lock the platform just before the hand-over, as Heads'
// lock_chip does: the real machine (machine_linux.go); a test machine opts in by implementing
// it.
type PlatformLocker interface {
	// LockFlash asks the firmware to lock the flash (chipset.Lock: the finalize SMI, then the
	// registers read again to see whether the lock took).
	LockFlash() (*chipset.LockReport, error)
	// HostCheck judges the platform as glint leaves it to the OS (hostcheck.Run, phase
	// payload-locked).
	HostCheck() *hostcheck.Report
}

// lockPlatformBeforeKexec is the last thing glint does to the machine before it starts the OS
// (issue 19): lock the flash, check that the lock took, judge the rest of the platform, show
// the result and extend it into PCR 4.
//
// PCR 4 because it is glint's boot-mode PCR and this runs right after "leaving glint" moved it
// on: no sealed secret depends on what follows (they are sealed to PCR 4's normal-boot value,
// before "leaving"), while the OS, and an attestation server quoting its PCRs, sees a value
// that differs when the lock did not take. The measured text names the lock's outcome and each
// check's status, nothing that changes from one boot to the next, so the OS's PCR 4 stays
// predictable.
//
// A lock that did not take does not stop the boot (the owner cannot fix it from here); it is
// shown in red, logged and measured.
func (f *Flow) lockPlatformBeforeKexec() {
	pl, ok := f.Machine.(PlatformLocker)
	if !ok {
		return
	}
	start := time.Now()
	line, notLocked := lockLine(pl.LockFlash())
	rep := pl.HostCheck()
	elapsed := time.Since(start)
	if notLocked {
		f.Con.Banner(red, line)
	} else {
		f.Con.Printf("%s\n", line)
	}
	var summary []string
	if rep != nil {
		f.Con.Printf("platform check: %d pass, %d fail, %d cannot tell here, %d not applicable\n",
			rep.Count(hostcheck.Pass), rep.Count(hostcheck.Fail), rep.Count(hostcheck.CannotTell), rep.Count(hostcheck.NotApplicable))
		for _, r := range rep.Results {
			summary = append(summary, r.ID+"="+string(r.Status))
			if r.Status == hostcheck.Fail {
				f.Con.Printf("  FAIL %s: %s\n", r.Title, r.Detail)
			}
		}
		sort.Strings(summary)
	}
	event := "glint: platform lock: " + line
	if len(summary) > 0 {
		event += "; " + strings.Join(summary, " ")
	}
	switch {
	case f.tpm == nil:
		f.J.Logf("platform lock result not measured: no TPM")
	default:
		if err := f.measure(pcr.Measurement{PCR: pcr.BootMode, Description: event, Data: []byte(event)}); err != nil {
			f.J.Logf("platform lock result not measured: %v", err)
		}
	}
	f.J.Logf("%s (%d ms)", line, elapsed.Milliseconds())
}

// lockLine says in one line what chipset.Lock did, and whether the flash is known to be left
// unlocked. A machine whose flash controller glint cannot read (QEMU models none) is "cannot
// tell here", not "not locked".
func lockLine(r *chipset.LockReport, err error) (line string, notLocked bool) {
	switch {
	case err != nil:
		return fmt.Sprintf("flash lock: cannot tell here: %v", err), false
	case r.Took():
		return r.String(), false
	case r.After != nil && r.After.SPI == nil:
		return "flash lock: cannot tell here: " + r.After.SPIMissing, false
	}
	return r.String(), true
}
