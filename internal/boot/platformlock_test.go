package boot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/chipset"
	"github.com/glint-boot/glint/internal/hostcheck"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/tpm"
)

// lockingMachine is the test machine with an X230's chipset behind it. The registers come
// from internal/chipset's synthetic 7-series dumps (built from the datasheet, not recorded:
// these boards do not run in QEMU); the finalize SMI is a fake port that swaps the "before"
// registers for the "after" ones, because the SMM handler that really sets FLOCKDN only runs
// on the hardware. chipset.Lock, the decoding and the checks are the real code.
type lockingMachine struct {
	*fakeMachine
	before, after *chipset.Dump
	sent          int
}

func (m *lockingMachine) WritePort(port uint16, value byte) error {
	if port == chipset.APMControlPort && value == chipset.APMFinalize {
		m.sent++
	}
	return nil
}

func (m *lockingMachine) snapshot() (*chipset.Dump, error) {
	if m.sent > 0 {
		return m.after, nil
	}
	return m.before, nil
}

func (m *lockingMachine) LockFlash() (*chipset.LockReport, error) {
	return chipset.Lock(m, m.snapshot)
}

func (m *lockingMachine) HostCheck() *hostcheck.Report {
	d, _ := m.snapshot()
	return hostcheck.Run(hostcheck.FromDump(d), hostcheck.PhaseLocked)
}

func syntheticDump(t *testing.T, name string) *chipset.Dump {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "chipset", "testdata", "synthetic-x230-"+name+".dump"))
	must(t, err)
	d, err := chipset.ParseDump(raw)
	must(t, err)
	return d
}

// The flash is locked, the result shown, and measured into PCR 4 right after "leaving
// glint", before the kexec; a lock that does not take is shown in red and measured too,
// and the OS still starts.
func TestFlowLocksPlatformBeforeKexec(t *testing.T) {
	for _, c := range []struct {
		name, after string
		want        string
		red         bool
	}{
		{"lock takes", "coreboot-locked", "flash lock: locked", false},
		{"lock does not take", "coreboot-before-lock", "flash lock: NOT locked", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := newBench(t, tpm.Version20)
			out := b.power(tpm.Version20, ownerPass+"\ny\n\n")
			if !strings.Contains(out, "Set-up complete") {
				t.Fatalf("set-up failed:\n%s", out)
			}
			m := &lockingMachine{fakeMachine: b.machine, before: syntheticDump(t, "coreboot-before-lock"), after: syntheticDump(t, c.after)}
			out = b.powerMachine(m, tpm.Version20, "")
			if len(b.machine.kexecs) != 1 {
				t.Fatalf("%d kexecs, want 1:\n%s", len(b.machine.kexecs), out)
			}
			if m.sent != 1 {
				t.Errorf("finalize SMI sent %d times, want once", m.sent)
			}
			i := strings.Index(out, c.want)
			if i < 0 || i > strings.Index(out, "glint: kexec") {
				t.Fatalf("%q not shown before the kexec:\n%s", c.want, out)
			}
			if red := strings.Contains(out, red+" "+c.want) || strings.Contains(out, red+c.want); red != c.red {
				t.Errorf("shown in red: %v, want %v:\n%s", red, c.red, out)
			}
			if !strings.Contains(out, "platform check: ") {
				t.Errorf("no platform check summary:\n%s", out)
			}
			// PCR 4: ... "leaving glint", then the lock's result, nothing after it
			ev := b.last.state.Events()
			var pcr4 []string
			for _, e := range ev {
				if e.PCR == pcr.BootMode {
					pcr4 = append(pcr4, e.Description)
				}
			}
			t.Logf("PCR 4 events: %q\n%s", pcr4, out[strings.Index(out, "flash lock"):])
			n := len(pcr4)
			if n < 2 || pcr4[n-2] != pcr.ModeLeaving || !strings.HasPrefix(pcr4[n-1], "glint: platform lock: "+c.want) {
				t.Fatalf("PCR 4 events end %q, want leaving glint then the lock result", pcr4)
			}
			if !strings.Contains(pcr4[n-1], "spi.lock=") {
				t.Errorf("measured result lacks the check statuses: %q", pcr4[n-1])
			}
		})
	}
}
