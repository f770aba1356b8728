package boot

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/glint-boot/glint/internal/tpm"
)

// ClockIndex is the TPM 2.0 NV index where glint keeps the last boot's
// clock reading (the RTC and the TPM's Clock at that moment): 16 bytes,
// the RTC in Unix seconds and the TPM's Clock in milliseconds, big-endian.
// It sits beside the rollback counter (0x0180474c) in the owner range.
// Defined at set-up with the owner's authorisation; written at every boot
// with its (empty) index authorisation. Code after glint can write it too:
// it can hide a jump from the next check, never fake the TPM's Clock.
const ClockIndex = 0x0180474d

const clockRecordSize = 16

// defineClockIndex creates ClockIndex at set-up (TPM 2.0; TPM 1.2 has no
// clock that survives power-off).
func (f *Flow) defineClockIndex() {
	if f.tpm.Version() != tpm.Version20 {
		return
	}
	err := f.tpm.NVDefine(tpm.NVSpace{Index: ClockIndex, Size: clockRecordSize})
	if err != nil && !errors.Is(err, tpm.ErrOwnerAuth) {
		f.J.Logf("clock record index: %v", err)
	}
}

// checkClock compares the RTC with the TPM's Clock against the last
// boot's reading (tpm.CheckRTC): an RTC that went back is named, because it
// means someone set it ahead before (to collect TOTP codes for a later
// date) or back now. Then this boot's reading is stored.
func (f *Flow) checkClock() {
	if f.tpm.Version() != tpm.Version20 {
		return
	}
	ci, err := f.tpm.ReadClock()
	if err != nil {
		f.J.Logf("TPM clock: %v", err)
		return
	}
	now := tpm.ClockReading{RTC: f.now(), TPMClock: ci.Clock, ResetCount: ci.ResetCount}
	old, err := f.tpm.NVRead(ClockIndex)
	switch {
	case errors.Is(err, tpm.ErrNotDefined):
		return // set up before glint kept clock readings
	case err == nil && len(old) == clockRecordSize:
		prev := tpm.ClockReading{
			RTC:      time.Unix(int64(binary.BigEndian.Uint64(old)), 0),
			TPMClock: time.Duration(binary.BigEndian.Uint64(old[8:])) * time.Millisecond,
		}
		if prev.RTC.Unix() != 0 {
			if err := tpm.CheckRTC(prev, now); err != nil {
				f.Con.Banner(yellow, "CLOCK JUMPED BACK since the last boot")
				f.problem("clock: %v", err)
			}
		}
	}
	rec := binary.BigEndian.AppendUint64(nil, uint64(now.RTC.Unix()))
	rec = binary.BigEndian.AppendUint64(rec, uint64(ci.Clock/time.Millisecond))
	if err := f.tpm.NVWrite(ClockIndex, rec); err != nil {
		f.J.Logf("store the clock reading: %v", err)
	}
}
