package hostcheck

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/glint-boot/glint/internal/chipset"
	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/tpm"
)

// Check IDs (stable: scripts and the attestation server key on them).
const (
	IDSPILock        = "spi.lock"
	IDSPIWrite       = "spi.write-protect"
	IDBIOSControl    = "spi.bios-control"
	IDDescriptor     = "spi.descriptor"
	IDSMRAM          = "smram.lock"
	IDME             = "me.state"
	IDTPM            = "tpm.present"
	IDPCRs           = "tpm.pcrs"
	IDEventLog       = "tpm.eventlog"
	IDIOMMU          = "iommu"
	IDKernelLockdown = "kernel.lockdown"
)

// Run runs every check against m in the given phase.
func Run(m Machine, phase Phase) *Report {
	r := &Report{Phase: phase, Chipset: "unknown", Source: "none"}
	var st *chipset.State
	var regErr error
	if m.Registers == nil {
		regErr = errors.New("no register source")
	} else if d, err := m.Registers(); err != nil {
		regErr = err
	} else {
		r.Source = d.Source
		st, regErr = chipset.Decode(d)
	}
	if st != nil {
		switch {
		case st.Chipset != nil:
			r.Chipset = fmt.Sprintf("%s, LPC %04x:%04x", st.Chipset.Name, st.LPCVendor, st.LPCDevice)
		case st.LPCVendor != 0:
			r.Chipset = fmt.Sprintf("LPC %04x:%04x (no register table)", st.LPCVendor, st.LPCDevice)
		}
	}
	var kspi *chipset.KernelSPI
	if m.KernelSPI != nil {
		kspi, _ = m.KernelSPI()
	}
	r.Results = append(r.Results,
		checkSPILock(st, regErr, kspi, phase),
		checkSPIWrite(st, regErr),
		checkBIOSControl(st, regErr, phase),
		checkDescriptor(st, regErr),
		checkSMRAM(st, regErr),
		checkME(st, regErr),
	)
	t := m.readTPM()
	var log *eventlog.Log
	var logErr error
	if m.EventLog != nil && m.Root != "" {
		log, logErr = m.EventLog()
	} else {
		logErr = errors.New("no event log source")
	}
	kind := m.firmwareKind(log)
	r.Results = append(r.Results,
		checkTPM(m, t),
		checkPCRs(m, t, kind),
		checkEventLog(m, t, log, logErr),
		checkIOMMU(m, phase),
		checkLockdown(m, phase),
	)
	return r
}

const actionReportChipset = "Send the output of `glint host check --dump` to the glint project so this chipset gets a register table."

// cannotTellRegisters explains a register check that has nothing to judge.
func cannotTellRegisters(id, title string, regErr error, missing string) Result {
	res := Result{ID: id, Title: title, Status: CannotTell}
	switch {
	case regErr != nil && errors.Is(regErr, chipset.ErrNotRoot):
		res.Detail, res.Action = regErr.Error(), "Run glint as root."
	case regErr != nil:
		res.Detail = "the chipset registers could not be read: " + regErr.Error()
		res.Action = "Run glint as root on the machine itself."
	default:
		res.Detail = missing
		if strings.Contains(missing, "no register table") {
			res.Action = actionReportChipset
		}
	}
	return res
}

func checkSPILock(st *chipset.State, regErr error, kspi *chipset.KernelSPI, phase Phase) Result {
	const title = "Flash controller configuration locked (HSFS.FLOCKDN)"
	var locked bool
	var how string
	switch {
	case st != nil && st.SPI != nil:
		locked, how = st.SPI.Locked, fmt.Sprintf("HSFS %#04x", st.SPI.HSFS)
	case kspi != nil:
		locked, how = kspi.Locked, "Linux's spi-intel driver ("+kspi.Path+")"
	case st == nil:
		return cannotTellRegisters(IDSPILock, title, regErr, "")
	default:
		return cannotTellRegisters(IDSPILock, title, nil, st.SPIMissing)
	}
	res := Result{ID: IDSPILock, Title: title}
	switch {
	case locked:
		res.Status, res.Detail = Pass, "locked: protected ranges and region permissions cannot change until the next reset ("+how+")"
	case phase == PhasePayload:
		res.Status, res.Detail = Pass, "not locked yet, as expected at this point: glint locks it just before starting the OS ("+how+")"
	default:
		res.Status = Fail
		res.Detail = "not locked: anything running as root can remove the flash protections (" + how + ")"
		res.Action = "Boot through glint's own firmware, which locks the flash before starting the OS; if it does, report this: the lock did not take."
	}
	return res
}

func checkSPIWrite(st *chipset.State, regErr error) Result {
	const title = "BIOS region write-protected"
	if st == nil {
		return cannotTellRegisters(IDSPIWrite, title, regErr, "")
	}
	if st.SPI == nil {
		return cannotTellRegisters(IDSPIWrite, title, nil, st.SPIMissing)
	}
	res := Result{ID: IDSPIWrite, Title: title}
	var prs []string
	for i, p := range st.SPI.Protected {
		if p.Enabled() {
			prs = append(prs, fmt.Sprintf("PR%d %#x-%#x%s", i, p.Base, p.Limit, map[bool]string{true: " write-protected", false: " read-protected only"}[p.WriteProtect]))
		}
	}
	bios, haveBIOS := st.SPI.BIOSRegion()
	where := "no BIOS region in the descriptor"
	if haveBIOS {
		where = fmt.Sprintf("BIOS region %#x-%#x", bios.Base, bios.Limit)
	}
	rangesText := "no protected ranges"
	if len(prs) > 0 {
		rangesText = strings.Join(prs, ", ")
	}
	switch {
	case chipset.RangesProtectBIOS(st):
		res.Status, res.Detail = Pass, where+" covered by "+rangesText
	case chipset.BIOSControlProtects(st):
		res.Status = Pass
		res.Detail = fmt.Sprintf("%s: BIOS_CNTL %#02x lets only SMM write (BIOSWE clear, BLE and SMM_BWP set); %s", where, st.BIOS.Raw, rangesText)
	default:
		res.Status = Fail
		res.Detail = fmt.Sprintf("%s is writable from the running system: %s, and BIOS_CNTL does not keep writes to SMM", where, rangesText)
		res.Action = "Flash a firmware that protects its flash: glint's board ROMs set protected ranges (coreboot CONFIG_BOOTMEDIA_LOCK_CONTROLLER)."
	}
	return res
}

func checkBIOSControl(st *chipset.State, regErr error, phase Phase) Result {
	const title = "BIOS_CNTL write enable and lock (BIOSWE, BLE, SMM_BWP)"
	if st == nil || st.BIOS == nil {
		missing := ""
		if st != nil {
			missing = st.BIOSMissing
		}
		return cannotTellRegisters(IDBIOSControl, title, regErr, missing)
	}
	b := st.BIOS
	bits := fmt.Sprintf("BIOS_CNTL %#02x: BIOSWE %d, BLE %d", b.Raw, btoi(b.WriteEnable), btoi(b.LockEnable))
	if b.HasSMMBWP {
		bits += fmt.Sprintf(", SMM_BWP %d", btoi(b.SMMBWP))
	}
	res := Result{ID: IDBIOSControl, Title: title}
	// On coreboot the protected ranges do the work; BIOS_CNTL only matters without them.
	rangesHold := chipset.RangesProtectBIOS(st) && (st.SPI.Locked || phase == PhasePayload)
	switch {
	case rangesHold:
		res.Status = NotApplicable
		res.Detail = bits + "; the protected ranges already block every write through the SPI controller, whatever these bits say (fwupd and CHIPSEC flag them on coreboot machines; that is a false alarm)"
	case chipset.BIOSControlProtects(st):
		res.Status, res.Detail = Pass, bits+": writes only from SMM"
	default:
		res.Status = Fail
		var why []string
		if b.WriteEnable {
			why = append(why, "writes are enabled right now")
		}
		if !b.LockEnable {
			why = append(why, "anyone can enable writes (BLE clear)")
		}
		if b.HasSMMBWP && !b.SMMBWP {
			why = append(why, "a second CPU can write while the SMI handler runs (SMM_BWP clear)")
		}
		if !b.HasSMMBWP {
			why = append(why, "this chipset has no SMM_BWP, so BIOS_CNTL alone cannot close the race")
		}
		res.Detail = bits + ": " + strings.Join(why, "; ")
		res.Action = "Use a firmware that write-protects the flash with protected ranges (glint's board ROMs do)."
	}
	return res
}

func checkDescriptor(st *chipset.State, regErr error) Result {
	const title = "Flash descriptor and region permissions"
	if st == nil {
		return cannotTellRegisters(IDDescriptor, title, regErr, "")
	}
	if st.SPI == nil {
		return cannotTellRegisters(IDDescriptor, title, nil, st.SPIMissing)
	}
	s := st.SPI
	res := Result{ID: IDDescriptor, Title: title}
	frap := fmt.Sprintf("FRAP %#08x", s.FRAP)
	switch {
	case !s.DescriptorValid:
		res.Status = Fail
		res.Detail = "the flash has no valid Intel flash descriptor (HSFS.FDV clear): no region permissions apply"
		res.Action = "Flash a complete image with a descriptor (glint's maximized ROM keeps your own)."
	case s.DescriptorOverride:
		res.Status = Fail
		res.Detail = "the descriptor-override strap is active (HSFS.FDOPSS clear): region permissions are ignored and every region is writable"
		res.Action = "Remove the service jumper or the wire on the descriptor-override pin, then power-cycle."
	default:
		var open []string
		for _, reg := range []int{chipset.RegionDescriptor, chipset.RegionME} {
			if st.SPI.Regions[reg].Used && s.HostCanWrite(reg) {
				open = append(open, chipset.RegionName(reg))
			}
		}
		if len(open) > 0 {
			res.Status = Fail
			res.Detail = fmt.Sprintf("%s: the running system may rewrite the %s region(s)", frap, strings.Join(open, " and "))
			res.Action = "Lock the descriptor (ifdtool --lock, or glint's maximized build) and reflash it once from outside the OS."
		} else {
			res.Status = Pass
			res.Detail = frap + ": descriptor and ME regions are read-only to the host"
		}
	}
	return res
}

func checkSMRAM(st *chipset.State, regErr error) Result {
	const title = "SMRAM locked (D_LCK)"
	if st == nil || st.SMRAM == nil {
		missing := ""
		if st != nil {
			missing = st.SMRAMMissing
		}
		return cannotTellRegisters(IDSMRAM, title, regErr, missing)
	}
	v := fmt.Sprintf("SMRAM control %#02x", st.SMRAM.Raw)
	switch {
	case st.SMRAM.Locked && !st.SMRAM.Open:
		return Result{ID: IDSMRAM, Title: title, Status: Pass, Detail: v + ": locked, closed to code outside SMM"}
	case st.SMRAM.Locked:
		return Result{ID: IDSMRAM, Title: title, Status: Fail, Detail: v + ": locked OPEN (D_OPEN set): SMM memory is visible to the OS",
			Action: "Report this firmware bug to its maker; do not rely on SMM protections on this machine."}
	}
	return Result{ID: IDSMRAM, Title: title, Status: Fail, Detail: v + ": not locked: the OS can reconfigure SMRAM and take over SMM",
		Action: "Use a firmware that locks SMRAM before the payload runs (coreboot does on the X230/T430)."}
}

func checkME(st *chipset.State, regErr error) Result {
	const title = "Management Engine state"
	if st == nil {
		return cannotTellRegisters(IDME, title, regErr, "")
	}
	if st.ME == nil {
		if st.Chipset != nil && !st.Chipset.HasME() {
			return Result{ID: IDME, Title: title, Status: NotApplicable, Detail: st.MEMissing}
		}
		return cannotTellRegisters(IDME, title, nil, st.MEMissing)
	}
	res := Result{ID: IDME, Title: title, Detail: st.ME.String()}
	switch v := st.ME.Verdict(); v {
	case chipset.MEHalted:
		res.Status = Pass
		res.Detail = "neutered: the ME stopped during bring-up and runs no firmware modules; " + res.Detail
	case chipset.MEDisabled:
		res.Status = Pass
		res.Detail = "disabled; " + res.Detail
	case chipset.MERunning:
		res.Status = Pass
		res.Detail = "running its full firmware (not neutered); " + res.Detail
	case chipset.MEManufacturingMode:
		res.Status = Fail
		res.Detail = "in manufacturing mode: the descriptor and ME settings are still open to change; " + res.Detail
		res.Action = "Flash a descriptor and ME that leave manufacturing mode (glint's maximized build from your own backup)."
	case chipset.MESecurityOverride:
		res.Status = Fail
		res.Detail = "in security-override mode: flash permissions are bypassed; " + res.Detail
		res.Action = "Remove the service jumper (descriptor override) and power-cycle."
	case chipset.MEDebug:
		res.Status = Fail
		res.Detail = "in debug mode; " + res.Detail
		res.Action = "Reflash the ME region from a production image."
	default:
		res.Status = CannotTell
		res.Detail = "the ME status register reads as " + fmt.Sprintf("%#08x", st.ME.HFS)
	}
	return res
}

func checkTPM(m Machine, t tpmInfo) Result {
	const title = "TPM present"
	switch {
	case m.Root == "":
		return Result{ID: IDTPM, Title: title, Status: CannotTell, Detail: "judging a register dump: no system to look at"}
	case !t.present:
		return Result{ID: IDTPM, Title: title, Status: Fail, Detail: "no TPM found (/sys/class/tpm/tpm0 is missing)",
			Action: "Enable the TPM in the firmware; without one glint can neither seal secrets nor prove what booted."}
	case t.version == tpm.Version12:
		return Result{ID: IDTPM, Title: title, Status: Pass, Detail: "TPM 1.2 (SHA-1 PCRs only)"}
	case t.version == tpm.Version20:
		return Result{ID: IDTPM, Title: title, Status: Pass, Detail: "TPM 2.0"}
	}
	return Result{ID: IDTPM, Title: title, Status: CannotTell, Detail: "a TPM is present but its version is unknown: " + errString(t.pcrErr)}
}

// measuredPCRs are the PCRs each firmware kind fills before the payload runs: coreboot 4.15
// measures its stages and the payload into PCR 2 (CONFIG_PCR_SRTM) only; UEFI fills 0-7 (TCG
// PFP: at least the separators); an unknown firmware is held to PCR 0, the CRTM.
var measuredPCRs = map[string][]int{"coreboot": {2}, "uefi": {0, 1, 2, 3, 4, 5, 6, 7}, "unknown": {0}}

func checkPCRs(m Machine, t tpmInfo, kind string) Result {
	const title = "Firmware measurements in the PCRs"
	res := Result{ID: IDPCRs, Title: title}
	switch {
	case m.Root == "" || !t.present:
		res.Status, res.Detail = CannotTell, "no TPM to read"
		return res
	case t.pcrs == nil:
		res.Status, res.Detail = CannotTell, "the PCRs could not be read: "+errString(t.pcrErr)
		return res
	}
	var empty []string
	for _, i := range measuredPCRs[kind] {
		if isReset(t.pcrs[i]) {
			empty = append(empty, fmt.Sprint(i))
		}
	}
	want := fmt.Sprintf("%s firmware measures into PCR %s", kind, joinInts(measuredPCRs[kind]))
	if len(empty) > 0 {
		res.Status = Fail
		res.Detail = fmt.Sprintf("%s; PCR %s still hold the reset value: the firmware did not measure itself", want, strings.Join(empty, ", "))
		res.Action = "Use a firmware built with measured boot (coreboot CONFIG_TPM_MEASURED_BOOT; glint's ROMs are)."
		return res
	}
	res.Status = Pass
	res.Detail = want + "; none holds its reset value (" + t.bank.String() + " bank)"
	return res
}

// replayPCRs are the PCRs the firmware log is replayed against: 4-7 also hold glint's own
// measurements (boot manager, modules, disks, configuration), which the firmware's log does
// not list, so they are verified by glint's boot flow instead.
var replayPCRs = []int{0, 1, 2, 3}

func checkEventLog(m Machine, t tpmInfo, log *eventlog.Log, logErr error) Result {
	const title = "Firmware event log replays to the PCRs"
	res := Result{ID: IDEventLog, Title: title}
	switch {
	case m.Root == "" || !t.present || t.pcrs == nil:
		res.Status, res.Detail = CannotTell, "no TPM PCRs to compare with"
		return res
	case logErr != nil:
		res.Status, res.Detail = CannotTell, "no firmware event log: "+logErr.Error()
		res.Action = "Run glint as root with securityfs mounted (coreboot's log is read from /dev/mem)."
		return res
	}
	pcrs := map[int][]byte{}
	for _, i := range replayPCRs {
		pcrs[i] = t.pcrs[i]
	}
	if err := log.Verify(t.bank, pcrs); err != nil {
		res.Status = Fail
		res.Detail = fmt.Sprintf("%s log (%s): %v", log.Format, log.Source, err)
		res.Action = "Do not trust this boot's measurements: something ran that the log hides, or the log was altered. Reflash the firmware from a known-good image."
		return res
	}
	res.Status = Pass
	res.Detail = fmt.Sprintf("%d events in the %s log (%s) reproduce PCR 0-3 in the %s bank", len(log.Events), log.Format, log.Source, t.bank.String())
	return res
}

func checkIOMMU(m Machine, phase Phase) Result {
	const title = "IOMMU (protection against DMA from devices)"
	res := Result{ID: IDIOMMU, Title: title}
	if m.Root == "" {
		res.Status, res.Detail = CannotTell, "judging a register dump: no system to look at"
		return res
	}
	dmar := m.exists("sys/firmware/acpi/tables/DMAR") || m.exists("sys/firmware/acpi/tables/IVRS")
	units, _ := readDirNames(m.path("sys/class/iommu"))
	switch {
	case phase.inPayload():
		res.Status = NotApplicable
		res.Detail = "glint's payload does not turn the IOMMU on (i915 on Ivy Bridge misbehaves with it); the OS should"
		if dmar {
			res.Detail += "; the firmware describes one (ACPI DMAR)"
		}
	case len(units) > 0:
		res.Status, res.Detail = Pass, "active: "+strings.Join(units, ", ")
	case dmar:
		res.Status = Fail
		res.Detail = "the firmware describes an IOMMU (ACPI DMAR) but the kernel did not turn it on"
		res.Action = "Add intel_iommu=on to the kernel command line (glint boot entries: edit grub.cfg and re-sign)."
	default:
		res.Status = Fail
		res.Detail = "no IOMMU: the firmware describes none (no ACPI DMAR/IVRS table), so any device can read and write memory"
		res.Action = "Enable VT-d in the firmware (coreboot on the X230/T430 provides a DMAR table)."
	}
	return res
}

func checkLockdown(m Machine, phase Phase) Result {
	const title = "Kernel lockdown"
	res := Result{ID: IDKernelLockdown, Title: title}
	if m.Root == "" {
		res.Status, res.Detail = CannotTell, "judging a register dump: no system to look at"
		return res
	}
	if phase.inPayload() {
		res.Status = NotApplicable
		res.Detail = "glint's payload must read /dev/mem and start unsigned kernels; lockdown is for the OS"
		return res
	}
	s, err := m.readTrim("sys/kernel/security/lockdown")
	switch {
	case err != nil:
		res.Status = Fail
		res.Detail = "this kernel offers no lockdown (no /sys/kernel/security/lockdown; is securityfs mounted?)"
		res.Action = "Use a kernel built with the lockdown LSM (Debian's is) and boot it with lockdown=integrity."
	case strings.Contains(s, "[none]"):
		res.Status = Fail
		res.Detail = "off (" + s + "): root can change the running kernel, load unsigned modules and rewrite memory"
		res.Action = "Add lockdown=integrity to the kernel command line."
	case strings.Contains(s, "[integrity]") || strings.Contains(s, "[confidentiality]"):
		res.Status, res.Detail = Pass, "on ("+s+")"
	default:
		res.Status, res.Detail = CannotTell, "unexpected lockdown state "+s
	}
	return res
}

func isReset(v []byte) bool {
	return len(v) == 0 || bytes.Count(v, []byte{0}) == len(v) || bytes.Count(v, []byte{0xff}) == len(v)
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	if len(xs) == 8 {
		return "0-7"
	}
	return strings.Join(s, ", ")
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func errString(err error) string {
	if err == nil {
		return "unknown"
	}
	return err.Error()
}

func readDirNames(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out, nil
}
