package dongle

import (
	"encoding/binary"
	"fmt"
)

// Report layout (Nitrokey Pro firmware src/keyboard/report_protocol.c,
// parse_report; client src/structs.h). Every exchange is one 64-byte HID
// Feature report with report ID 0: the host sends a request with
// SET_REPORT and polls the answer with GET_REPORT.
const (
	// ReportSize is the payload of one Feature report.
	ReportSize = 64
	// HIDBufferSize is what hidraw and Device work with: the report ID
	// byte (0) followed by the report.
	HIDBufferSize = 1 + ReportSize

	crcLen = 60 // the CRC covers bytes 0..59, stored at 60..63

	// Request: [0] command, [1..59] payload, [60..63] CRC.
	reqPayloadOff = 1
	reqPayloadLen = crcLen - reqPayloadOff

	// Response: [0] device status, [1] command echo, [2..5] the CRC the
	// device computed over the request, [6] command status, [7..59]
	// payload, [60..63] CRC.
	respDeviceStatusOff = 0
	respCommandOff      = 1
	respRequestCRCOff   = 2
	respStatusOff       = 6
	respPayloadOff      = 7
	respPayloadLen      = crcLen - respPayloadOff
)

// command is a request's first byte (client src/command_id.h).
type command byte

const (
	cmdGetStatus          command = 0x00
	cmdWriteToSlot        command = 0x01
	cmdFirstAuthenticate  command = 0x07
	cmdGetAdminRetryCount command = 0x09
	cmdGetUserRetryCount  command = 0x0F
	cmdSendOTPData        command = 0x17
	cmdVerifyOTPCode      command = 0x18
	cmdGetDeviceStatus    command = 0x2E // Nitrokey Storage only
	cmdNewAESKey          command = 0x6B
)

func (c command) String() string {
	switch c {
	case cmdGetStatus:
		return "GET_STATUS"
	case cmdWriteToSlot:
		return "WRITE_TO_SLOT"
	case cmdFirstAuthenticate:
		return "FIRST_AUTHENTICATE"
	case cmdGetAdminRetryCount:
		return "GET_PASSWORD_RETRY_COUNT"
	case cmdGetUserRetryCount:
		return "GET_USER_PASSWORD_RETRY_COUNT"
	case cmdSendOTPData:
		return "SEND_OTP_DATA"
	case cmdVerifyOTPCode:
		return "VERIFY_OTP_CODE"
	case cmdGetDeviceStatus:
		return "GET_DEVICE_STATUS"
	case cmdNewAESKey:
		return "NEW_AES_KEY"
	}
	return fmt.Sprintf("command 0x%02x", byte(c))
}

// Device status, response byte 0 (firmware STATUS_*).
const (
	deviceReady          = 0
	deviceBusy           = 1
	deviceError          = 2
	deviceReceivedReport = 3
)

// Request is one report the host sends.
type request [ReportSize]byte

func newRequest(cmd command, payload []byte) (request, error) {
	var r request
	if len(payload) > reqPayloadLen {
		return r, fmt.Errorf("%v payload is %d bytes, a report holds %d", cmd, len(payload), reqPayloadLen)
	}
	r[0] = byte(cmd)
	copy(r[reqPayloadOff:], payload)
	binary.LittleEndian.PutUint32(r[crcLen:], CRC(r[:crcLen]))
	return r, nil
}

func (r *request) crc() uint32 { return binary.LittleEndian.Uint32(r[crcLen:]) }

// Response is a parsed answer report. Every field comes from the device
// and is untrusted until the client checks it against its request.
type Response struct {
	DeviceStatus byte
	Command      byte
	RequestCRC   uint32 // the CRC the device computed over our request
	Status       Status
	Payload      [respPayloadLen]byte
	CRCValid     bool // the response's own CRC matches its bytes
}

// ParseError reports a malformed response report.
type ParseError struct {
	Offset int64
	Field  string
	Err    error
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("dongle response: %s (byte %d): %v", e.Field, e.Offset, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// ParseResponse reads a GET_REPORT answer: exactly ReportSize bytes, the
// report ID already stripped. A bad CRC is not an error here (CRCValid
// says so) because the firmware answers "busy" reports whose CRC is stale;
// the client decides.
func ParseResponse(untrusted []byte) (Response, error) {
	var r Response
	if len(untrusted) != ReportSize {
		return r, &ParseError{Offset: int64(len(untrusted)), Field: "length",
			Err: fmt.Errorf("got %d bytes, a report is %d", len(untrusted), ReportSize)}
	}
	r.DeviceStatus = untrusted[respDeviceStatusOff]
	r.Command = untrusted[respCommandOff]
	r.RequestCRC = binary.LittleEndian.Uint32(untrusted[respRequestCRCOff:])
	r.Status = Status(untrusted[respStatusOff])
	copy(r.Payload[:], untrusted[respPayloadOff:crcLen])
	r.CRCValid = CRC(untrusted[:crcLen]) == binary.LittleEndian.Uint32(untrusted[crcLen:])
	return r, nil
}

// MarshalResponse builds a response report with a valid CRC. The client
// never needs it; the simulator and the fuzz round trip do.
func MarshalResponse(r Response) [ReportSize]byte {
	var b [ReportSize]byte
	b[respDeviceStatusOff] = r.DeviceStatus
	b[respCommandOff] = r.Command
	binary.LittleEndian.PutUint32(b[respRequestCRCOff:], r.RequestCRC)
	b[respStatusOff] = byte(r.Status)
	copy(b[respPayloadOff:crcLen], r.Payload[:])
	binary.LittleEndian.PutUint32(b[crcLen:], CRC(b[:crcLen]))
	return b
}
