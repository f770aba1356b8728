package hostcheck

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/chipset"
	"github.com/glint-boot/glint/internal/eventlog"
)

// The machines here combine two kinds of evidence, and say which:
//   - registers: the synthetic 7-series dumps in internal/chipset/testdata (built from the PCH
//     datasheet, not recorded: QEMU has no 7-series chipset), and dumps recorded in QEMU q35
//     (testdata/qemu-*.dump, by qemutest);
//   - TPM and log: the real coreboot 4.15 measurement logs and PCR values recorded in QEMU
//     with swtpm for internal/eventlog (its testdata/coreboot-tpm*.{mem,pcrs}).

const eventlogData = "../eventlog/testdata"

type fakeMachine struct {
	t    *testing.T
	root string
	mem  string
	dump string
}

// newCorebootMachine is a coreboot 4.15 machine with a TPM (tpm2 or tpm12), its recorded
// cbmem log and PCRs, and the given register dump.
func newCorebootMachine(t *testing.T, tpmName, dump string) *fakeMachine {
	t.Helper()
	f := &fakeMachine{t: t, root: t.TempDir(), dump: dump}
	f.mem = filepath.Join(f.root, "mem")
	writeSparseMemory(t, filepath.Join(eventlogData, "coreboot-"+tpmName+".mem"), f.mem)
	f.mkdir("sys/bus/coreboot/devices/coreboot0")
	class := "sys/class/tpm/tpm0"
	pcrs := readRecordedPCRs(t, filepath.Join(eventlogData, "coreboot-"+tpmName+".pcrs"))
	if tpmName == "tpm2" {
		f.write(class+"/tpm_version_major", "2\n")
		for i := 0; i <= 7; i++ {
			f.write(fmt.Sprintf("%s/pcr-sha256/%d", class, i), strings.ToUpper(pcrs["sha256"][i])+"\n")
			f.write(fmt.Sprintf("%s/pcr-sha1/%d", class, i), strings.ToUpper(pcrs["sha1"][i])+"\n")
		}
	} else {
		f.write(class+"/tpm_version_major", "1\n")
		var b strings.Builder // the TPM 1.2 driver's pcrs file format
		for i := 0; i < 24; i++ {
			h := pcrs["sha1"][i]
			fmt.Fprintf(&b, "PCR-%02d:", i)
			for j := 0; j < len(h); j += 2 {
				fmt.Fprintf(&b, " %s", strings.ToUpper(h[j:j+2]))
			}
			b.WriteString("\n")
		}
		f.write(class+"/pcrs", b.String())
	}
	return f
}

func (f *fakeMachine) mkdir(p string) {
	if err := os.MkdirAll(filepath.Join(f.root, p), 0o755); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeMachine) write(p, s string) {
	f.mkdir(filepath.Dir(p))
	if err := os.WriteFile(filepath.Join(f.root, p), []byte(s), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeMachine) machine() Machine {
	return Machine{
		Registers: func() (*chipset.Dump, error) {
			b, err := os.ReadFile(f.dump)
			if err != nil {
				return nil, err
			}
			return chipset.ParseDump(b)
		},
		Root: f.root,
		EventLog: func() (*eventlog.Log, error) {
			return eventlog.ReadFirmwareLogFrom(filepath.Join(f.root, "sys/kernel/security/tpm0/binary_bios_measurements"), f.mem)
		},
	}
}

func synthetic(name string) string {
	return filepath.Join("../chipset/testdata", "synthetic-"+name+".dump")
}

// writeSparseMemory turns eventlog's recorded sparse image ("GLINTMEM", then {addr u64, len
// u64, bytes}) into a sparse file whose offsets are physical addresses, as /dev/mem is.
func writeSparseMemory(t *testing.T, src, dst string) {
	b, err := os.ReadFile(src)
	if err != nil || !bytes.HasPrefix(b, []byte("GLINTMEM")) {
		t.Fatalf("%s: %v", src, err)
	}
	f, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(0x100000); err != nil { // low memory reads as zeros
		t.Fatal(err)
	}
	for b = b[8:]; len(b) >= 16; {
		addr, n := binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:])
		if n > uint64(len(b)-16) {
			t.Fatalf("%s: truncated chunk", src)
		}
		if _, err := f.WriteAt(b[16:16+n], int64(addr)); err != nil {
			t.Fatal(err)
		}
		b = b[16+n:]
	}
}

// readRecordedPCRs reads eventlog's "bank index HEX" lines.
func readRecordedPCRs(t *testing.T, path string) map[string]map[int]string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[int]string{}
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		var bank, h string
		var i int
		if _, err := fmt.Sscanf(s.Text(), "%s %d %s", &bank, &i, &h); err != nil {
			continue
		}
		if out[bank] == nil {
			out[bank] = map[int]string{}
		}
		out[bank][i] = strings.ToLower(h)
	}
	return out
}

func expectStatuses(t *testing.T, r *Report, want map[string]Status) {
	t.Helper()
	for id, st := range want {
		got, ok := r.Get(id)
		if !ok {
			t.Errorf("%s: missing", id)
			continue
		}
		if got.Status != st {
			t.Errorf("%s: %s (%s), want %s", id, got.Status, got.Detail, st)
		}
		if got.Status == Fail && got.Action == "" {
			t.Errorf("%s: a failure without an action", id)
		}
	}
	if t.Failed() {
		t.Log("\n" + r.Text())
	}
}

func TestX230CorebootPhases(t *testing.T) {
	for _, tpmName := range []string{"tpm2", "tpm12"} {
		t.Run(tpmName, func(t *testing.T) {
			f := newCorebootMachine(t, tpmName, synthetic("x230-coreboot-before-lock"))
			r := Run(f.machine(), PhasePayload)
			expectStatuses(t, r, map[string]Status{
				IDSPILock: Pass, IDSPIWrite: Pass, IDBIOSControl: NotApplicable, IDDescriptor: Pass,
				IDSMRAM: Pass, IDME: Pass, IDTPM: Pass, IDPCRs: Pass, IDEventLog: Pass,
				IDIOMMU: NotApplicable, IDKernelLockdown: NotApplicable,
			})
			if res, _ := r.Get(IDSPILock); !strings.Contains(res.Detail, "expected") {
				t.Errorf("before the lock, an unlocked controller is not called expected: %q", res.Detail)
			}
			// the same registers after glint's lock request, or in the OS: a finding
			for _, phase := range []Phase{PhaseLocked, PhaseOS} {
				r := Run(f.machine(), phase)
				expectStatuses(t, r, map[string]Status{IDSPILock: Fail, IDBIOSControl: Fail})
			}
			// locked: everything holds; in the OS lockdown and the IOMMU are judged
			f.dump = synthetic("x230-coreboot-locked")
			f.write("sys/kernel/security/lockdown", "none [integrity] confidentiality\n")
			f.write("sys/firmware/acpi/tables/DMAR", "DMAR")
			f.mkdir("sys/class/iommu/dmar0")
			r = Run(f.machine(), PhaseOS)
			expectStatuses(t, r, map[string]Status{
				IDSPILock: Pass, IDSPIWrite: Pass, IDBIOSControl: NotApplicable, IDEventLog: Pass,
				IDIOMMU: Pass, IDKernelLockdown: Pass,
			})
			if r.Failed() != 0 {
				t.Errorf("a locked coreboot X230 has %d findings:\n%s", r.Failed(), r.Text())
			}
		})
	}
}

func TestRegisterFindings(t *testing.T) {
	for _, tc := range []struct {
		dump string
		want map[string]Status
	}{
		{"x230-unprotected", map[string]Status{IDSPIWrite: Fail, IDBIOSControl: Fail}},
		{"x230-vendor-bios", map[string]Status{IDSPILock: Pass, IDSPIWrite: Pass, IDBIOSControl: Pass, IDME: Pass}},
		{"x230-descriptor-unlocked", map[string]Status{IDDescriptor: Fail, IDSPIWrite: Pass}},
		{"x230-descriptor-override", map[string]Status{IDDescriptor: Fail}},
		{"x230-me-manufacturing", map[string]Status{IDME: Fail}},
	} {
		t.Run(tc.dump, func(t *testing.T) {
			f := newCorebootMachine(t, "tpm2", synthetic(tc.dump))
			expectStatuses(t, Run(f.machine(), PhaseOS), tc.want)
		})
	}
}

func TestMeasurementFindings(t *testing.T) {
	f := newCorebootMachine(t, "tpm2", synthetic("x230-coreboot-locked"))
	// PCR 2 changed behind the log's back: the replay names it
	f.write("sys/class/tpm/tpm0/pcr-sha256/2", strings.Repeat("AB", 32)+"\n")
	r := Run(f.machine(), PhaseOS)
	expectStatuses(t, r, map[string]Status{IDEventLog: Fail, IDPCRs: Pass})
	if res, _ := r.Get(IDEventLog); !strings.Contains(res.Detail, "PCR 2") {
		t.Errorf("replay failure does not name PCR 2: %s", res.Detail)
	}
	// coreboot that measured nothing
	f.write("sys/class/tpm/tpm0/pcr-sha256/2", strings.Repeat("00", 32)+"\n")
	expectStatuses(t, Run(f.machine(), PhaseOS), map[string]Status{IDPCRs: Fail})
	// the same PCRs on UEFI: 0-7 must all be filled
	f.write("sys/class/tpm/tpm0/pcr-sha256/2", strings.Repeat("AB", 32)+"\n")
	f.mkdir("sys/firmware/efi")
	r = Run(f.machine(), PhaseOS)
	expectStatuses(t, r, map[string]Status{IDPCRs: Fail})
	if res, _ := r.Get(IDPCRs); !strings.Contains(res.Detail, "0, 1, 3") {
		t.Errorf("UEFI PCR finding: %s", res.Detail)
	}
	// no TPM at all
	os.RemoveAll(filepath.Join(f.root, "sys/class/tpm"))
	expectStatuses(t, Run(f.machine(), PhaseOS), map[string]Status{IDTPM: Fail, IDPCRs: CannotTell, IDEventLog: CannotTell})
}

func TestOSFindings(t *testing.T) {
	f := newCorebootMachine(t, "tpm2", synthetic("x230-coreboot-locked"))
	expectStatuses(t, Run(f.machine(), PhaseOS), map[string]Status{IDKernelLockdown: Fail, IDIOMMU: Fail})
	f.write("sys/kernel/security/lockdown", "[none] integrity confidentiality\n")
	f.write("sys/firmware/acpi/tables/DMAR", "DMAR")
	r := Run(f.machine(), PhaseOS)
	expectStatuses(t, r, map[string]Status{IDKernelLockdown: Fail, IDIOMMU: Fail})
	if res, _ := r.Get(IDIOMMU); !strings.Contains(res.Action, "intel_iommu=on") {
		t.Errorf("IOMMU action: %q", res.Action)
	}
}

func TestFromDumpJudgesRegistersOnly(t *testing.T) {
	b, err := os.ReadFile(synthetic("x230-coreboot-locked"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := chipset.ParseDump(b)
	if err != nil {
		t.Fatal(err)
	}
	r := Run(FromDump(d), PhaseOS)
	expectStatuses(t, r, map[string]Status{IDSPILock: Pass, IDSPIWrite: Pass, IDTPM: CannotTell,
		IDEventLog: CannotTell, IDKernelLockdown: CannotTell})
	if !strings.Contains(r.Source, "synthetic") || !strings.Contains(r.Chipset, "7 Series") {
		t.Errorf("report header: %q / %q", r.Source, r.Chipset)
	}
	js, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Phase   string `json:"phase"`
		Results []struct {
			ID, Status string
		} `json:"results"`
		Summary map[string]int `json:"summary"`
	}
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if back.Phase != "os" || len(back.Results) != 11 || back.Summary["pass"] != r.Count(Pass) {
		t.Errorf("JSON: %s", js)
	}
}

func TestNoRegisters(t *testing.T) {
	f := newCorebootMachine(t, "tpm2", filepath.Join(t.TempDir(), "missing"))
	r := Run(f.machine(), PhaseOS)
	for _, id := range []string{IDSPILock, IDSPIWrite, IDBIOSControl, IDDescriptor, IDSMRAM, IDME} {
		if res, _ := r.Get(id); res.Status != CannotTell {
			t.Errorf("%s: %s without registers", id, res.Status)
		}
	}
	k := Machine{Root: f.root, KernelSPI: func() (*chipset.KernelSPI, bool) {
		return &chipset.KernelSPI{Path: "/sys/bus/platform/devices/intel-spi/intel_spi_locked", Locked: true}, true
	}}
	if res, _ := Run(k, PhaseOS).Get(IDSPILock); res.Status != Pass || !strings.Contains(res.Detail, "spi-intel") {
		t.Errorf("kernel's intel_spi_locked not used: %+v", res)
	}
}
