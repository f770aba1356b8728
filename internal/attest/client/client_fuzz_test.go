package client

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/attest/wire"
)

// FuzzReadResponse feeds crafted server answers to the HTTP reader: no
// panic, never a body over the cap, and a body is returned only when the
// header block ended. Seeds are answers recorded from net/http's server
// (what glint's server sends).
func FuzzReadResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Type: " + wire.ContentType + "\r\nContent-Length: 10\r\nDate: Fri, 04 Dec 2026 17:00:00 GMT\r\n\r\nGLAT\x01\x02\x00\x00\x00\x00"))
	f.Add([]byte("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 10\r\nContent-Type: " + wire.ContentType + "\r\nContent-Length: 8\r\n\r\nGLAT\x01\x09\x01\xad"))
	f.Add([]byte("HTTP/1.0 200 OK\r\n\r\nbody until close"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, untrusted []byte) {
		status, _, body, err := readResponse(bytes.NewReader(untrusted))
		if err != nil {
			return
		}
		if status < 100 || status > 599 || len(body) > wire.MaxMessage {
			t.Fatalf("accepted status %d with a %d-byte body", status, len(body))
		}
		if !bytes.Contains(untrusted, []byte("\n\n")) && !bytes.Contains(untrusted, []byte("\n\r\n")) {
			t.Fatal("a response without the end of its headers was accepted")
		}
	})
}

// FuzzParseState: the enrolment file is root-writable on the OS; a
// crafted one must be refused cleanly.
func FuzzParseState(f *testing.F) {
	if b, err := os.ReadFile("testdata/attest.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"server":"https://a","device_id":"AAAA","tpm":20,"ak":"R0xBSw=="}`))
	f.Fuzz(func(t *testing.T, untrusted []byte) {
		st, err := ParseState(untrusted)
		if err != nil {
			return
		}
		if len(st.DeviceID) != 32 || !strings.HasPrefix(st.Server, "") {
			t.Fatal("accepted a state without a device ID")
		}
	})
}

func TestReadResponse(t *testing.T) {
	for name, c := range map[string]struct {
		raw    string
		status int
		body   string
		bad    bool
	}{
		"length":          {raw: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef", status: 200, body: "abc"},
		"close":           {raw: "HTTP/1.1 403 Forbidden\r\n\r\nno", status: 403, body: "no"},
		"chunked refused": {raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", bad: true},
		"short body":      {raw: "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", bad: true},
		"two lengths":     {raw: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", bad: true},
		"huge length":     {raw: "HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n", bad: true},
		"not HTTP":        {raw: "SSH-2.0-OpenSSH_9.2\r\n", bad: true},
		"endless header":  {raw: "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", 10000) + "\r\n\r\n", bad: true},
		"many headers":    {raw: "HTTP/1.1 200 OK\r\n" + strings.Repeat("X: y\r\n", 100) + "\r\n", bad: true},
	} {
		t.Run(name, func(t *testing.T) {
			status, _, body, err := readResponse(strings.NewReader(c.raw))
			if c.bad {
				if err == nil {
					t.Fatalf("accepted: status %d body %q", status, body)
				}
				return
			}
			if err != nil || status != c.status || string(body) != c.body {
				t.Fatalf("got %d %q %v", status, body, err)
			}
		})
	}
}
