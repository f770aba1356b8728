package dongle

import (
	"encoding/binary"
	"testing"
	"time"
)

// hostileDevice answers every request with fuzzer-chosen bytes, fixed up
// so the client accepts them (ready, valid CRC, echoing the request's CRC
// and command). A fake, because no real dongle can be made to send
// arbitrary answers; it shows that whatever a device (or something posing
// as one) answers, the client neither panics nor loops.
type hostileDevice struct {
	answers [][]byte
	i       int
	lastReq [ReportSize]byte
}

func (d *hostileDevice) SetFeature(buf []byte) error {
	copy(d.lastReq[:], buf[1:])
	return nil
}

func (d *hostileDevice) GetFeature(buf []byte) (int, error) {
	var a [ReportSize]byte
	if len(d.answers) > 0 {
		copy(a[:], d.answers[d.i%len(d.answers)])
		d.i++
	}
	a[respDeviceStatusOff] = deviceReady
	a[respCommandOff] = d.lastReq[0]
	copy(a[respRequestCRCOff:respRequestCRCOff+4], d.lastReq[crcLen:])
	binary.LittleEndian.PutUint32(a[crcLen:], CRC(a[:crcLen]))
	copy(buf[1:], a[:])
	return HIDBufferSize, nil
}

func (d *hostileDevice) Close() error { return nil }

func FuzzClientAnswers(f *testing.F) {
	ok := make([]byte, ReportSize)
	ok[respPayloadOff] = 3 // 3 retries / valid
	f.Add(ok, ok)
	wrongPIN := make([]byte, ReportSize)
	wrongPIN[respStatusOff] = byte(StatusWrongPassword)
	f.Add(ok, wrongPIN)
	storage := make([]byte, ReportSize)
	storage[respPayloadOff] = 1 // firmware minor 1: the Storage path
	f.Add(storage, ok)
	f.Fuzz(func(t *testing.T, a, b []byte) {
		dev := &hostileDevice{answers: [][]byte{a, b}}
		c := &Client{Dev: dev, Sleep: func(time.Duration) {}, Polls: 3}
		c.Info()
		c.Verify(755224)
		c.Program([]byte("12345678"), []byte("12345678901234567890"), 7)
	})
}
