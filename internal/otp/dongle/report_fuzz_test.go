package dongle

import (
	"encoding/binary"
	"testing"
)

func FuzzParseResponse(f *testing.F) {
	// Real answers, built as the firmware builds them: GET_STATUS of a
	// v0.15 Pro, a VERIFY hit at offset 0, a VERIFY miss, a wrong PIN, a
	// busy answer.
	getStatus, _ := newRequest(cmdGetStatus, nil)
	st := Response{Command: byte(cmdGetStatus), RequestCRC: getStatus.crc()}
	st.Payload[0], st.Payload[1] = 15, 0
	binary.LittleEndian.PutUint32(st.Payload[2:], 0x000a1b2c)
	b := MarshalResponse(st)
	f.Add(b[:])
	verify, _ := newRequest(cmdVerifyOTPCode, []byte{0x18, 0x86, 0x0b, 0x00})
	hit := Response{Command: byte(cmdVerifyOTPCode), RequestCRC: verify.crc()}
	hit.Payload[0] = 1
	b = MarshalResponse(hit)
	f.Add(b[:])
	miss := hit
	miss.Payload[0], miss.Payload[1] = 0, 0xFE
	b = MarshalResponse(miss)
	f.Add(b[:])
	b = MarshalResponse(Response{Command: byte(cmdFirstAuthenticate), Status: StatusWrongPassword})
	f.Add(b[:])
	b[0] = deviceBusy
	f.Add(b[:])
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, untrusted []byte) {
		r, err := ParseResponse(untrusted)
		if err != nil {
			return
		}
		out := MarshalResponse(r)
		r2, err := ParseResponse(out[:])
		if err != nil || !r2.CRCValid {
			t.Fatalf("re-parse: %v, CRC valid %v", err, r2.CRCValid)
		}
		r2.CRCValid = r.CRCValid
		if r2 != r {
			t.Fatalf("round trip changed the response:\n%+v\n%+v", r, r2)
		}
		if r.CRCValid && out != [ReportSize]byte(untrusted) {
			t.Fatal("a response with a valid CRC did not marshal back to itself")
		}
	})
}
