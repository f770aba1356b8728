package chipset

import (
	"errors"
	"strings"
	"testing"
)

// smmHandler stands in for the firmware's SMM handler, which no emulator here can run on a
// 7-series chipset (QEMU models neither the PCH SPI controller nor coreboot's bd82x6x SMM
// code). It is a fault-injection fake: it applies what a given firmware does on
// APM_CNT_FINALIZE to the register state, so Lock's verification can be tested against
// handlers that lock, that do nothing, and ports that fail.
type smmHandler struct {
	state   synth
	onSMI   func(*synth) // what the firmware does; nil = nothing (coreboot's q35 handler is empty)
	writes  []byte
	failOut error
}

func (h *smmHandler) WritePort(port uint16, v byte) error {
	if h.failOut != nil {
		return h.failOut
	}
	if port == APMControlPort {
		h.writes = append(h.writes, v)
		if v == APMFinalize && h.onSMI != nil {
			h.onSMI(&h.state)
		}
	}
	return nil
}

func (h *smmHandler) snap() (*Dump, error) { return h.state.dump(), nil }

// corebootBD82x6xFinalize is intel_pch_finalize_smm's effect on the registers glint reads:
// SPIBAR+0x3804 |= FLOCKDN.
func corebootBD82x6xFinalize(s *synth) { s.hsfs |= hsfsFLOCKDN }

func TestLockTakes(t *testing.T) {
	h := &smmHandler{state: corebootPayloadBeforeLock(), onSMI: corebootBD82x6xFinalize}
	r, err := Lock(h, h.snap)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Sent || r.AlreadyLocked || !r.Took() || string(h.writes) != string([]byte{APMFinalize}) {
		t.Fatalf("report %+v, port writes %x", r, h.writes)
	}
	if r.Before.SPI.Locked || !r.After.SPI.Locked {
		t.Errorf("before/after FLOCKDN %t/%t", r.Before.SPI.Locked, r.After.SPI.Locked)
	}
	if !strings.Contains(r.String(), "locked") {
		t.Errorf("message %q", r)
	}
	// a second call finds it locked and sends nothing
	r, err = Lock(h, h.snap)
	if err != nil || !r.AlreadyLocked || r.Sent || len(h.writes) != 1 {
		t.Fatalf("second lock: %+v %v, writes %x", r, err, h.writes)
	}
}

func TestLockDidNotTake(t *testing.T) {
	// a firmware whose SMM handler ignores the request (coreboot 4.15 on q35 has an empty
	// southbridge_finalize_all): the report names FLOCKDN
	h := &smmHandler{state: corebootPayloadBeforeLock()}
	r, err := Lock(h, h.snap)
	if err != nil {
		t.Fatal(err)
	}
	if r.Took() || !r.Sent || len(r.Missing) != 1 || !strings.Contains(r.Missing[0], "FLOCKDN") {
		t.Fatalf("report %+v", r)
	}
	if !strings.Contains(r.String(), "NOT locked") {
		t.Errorf("message %q", r)
	}
	// a firmware without protected ranges: FLOCKDN alone freezes an unprotected flash
	s := corebootPayloadBeforeLock()
	s.pr = [5]uint32{}
	h = &smmHandler{state: s, onSMI: corebootBD82x6xFinalize}
	r, err = Lock(h, h.snap)
	if err != nil {
		t.Fatal(err)
	}
	if r.Took() || len(r.Missing) != 1 || !strings.Contains(r.Missing[0], "protected range") {
		t.Fatalf("report %+v", r)
	}
}

func TestLockErrors(t *testing.T) {
	h := &smmHandler{state: corebootPayloadBeforeLock(), failOut: errors.New("EPERM")}
	if _, err := Lock(h, h.snap); err == nil || !strings.Contains(err.Error(), "EPERM") {
		t.Errorf("port failure: %v", err)
	}
	d := corebootPayloadBeforeLock().dump()
	d.PCI[LPC][2], d.PCI[LPC][3] = 0x43, 0xA1
	if _, err := Lock(h, func() (*Dump, error) { return d, nil }); !errors.Is(err, ErrNoChipset) {
		t.Errorf("unknown chipset: %v", err)
	}
	if _, err := Lock(h, func() (*Dump, error) { return nil, errors.New("no /dev/mem") }); err == nil {
		t.Error("a failed read was not reported")
	}
}
