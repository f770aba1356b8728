package dongle

import (
	"encoding/binary"
	"testing"
)

// Vectors from the protocol notes (computed by the reference client's
// stm_crc32 over real requests).
func TestCRCVectors(t *testing.T) {
	var getStatus [ReportSize]byte
	if got := CRC(getStatus[:crcLen]); got != 0xef6eb7df {
		t.Errorf("GET_STATUS CRC = %08x, want ef6eb7df", got)
	}
	var verify [ReportSize]byte
	verify[0] = byte(cmdVerifyOTPCode)
	binary.LittleEndian.PutUint32(verify[1:], 755224)
	if got := CRC(verify[:crcLen]); got != 0xdc53da94 {
		t.Errorf("VERIFY 755224 CRC = %08x, want dc53da94", got)
	}
}

func BenchmarkCRC(b *testing.B) {
	var r [ReportSize]byte
	for b.Loop() {
		CRC(r[:crcLen])
	}
}
