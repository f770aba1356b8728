package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/glint-boot/glint/internal/attest/settings"
	"github.com/glint-boot/glint/internal/attest/wire"
)

// The client speaks just enough HTTP/1.1 to POST one message and read one
// answer over TLS: net/http's client would add over a megabyte to the
// payload that must fit in the flash chip beside coreboot and the kernel,
// and the server is ours. Status line, headers and body are read with caps
// (a hostile server or a man in the middle without the pinned key gets no
// further than the TLS handshake, but the parser does not rely on that),
// and the parser has a fuzz target.

// Caps on the server's answer.
const (
	maxStatusLine = 1024
	maxHeaderLine = 8192
	maxHeaders    = 64
)

// ResponseError says why a server's answer could not be read.
type ResponseError struct{ Reason string }

func (e *ResponseError) Error() string { return "attestation server answer: " + e.Reason }

// Endpoint is a server address and how its certificate is checked.
type Endpoint struct {
	// URL is https://HOST[:PORT][/PREFIX].
	URL string
	// Pin, if set, is the SHA-256 of the server certificate's public key
	// (SubjectPublicKeyInfo), "sha256:HEX": the server's own key is trusted
	// and no CA is needed (glint attest serve --tls-auto prints it).
	Pin string
	// Roots, if set and Pin is not, are the CAs the server's certificate
	// must chain to; nil is the system's roots.
	Roots *x509.CertPool
	// Timeout bounds one exchange (connect, TLS, request, answer).
	Timeout time.Duration
}

func (e *Endpoint) tlsConfig(host string) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, RootCAs: e.Roots}
	if e.Pin == "" {
		return cfg, nil
	}
	want, err := settings.ParsePin(e.Pin)
	if err != nil {
		return nil, err
	}
	// The pin replaces the chain check: the leaf's key must be the pinned
	// one (RFC 7469's idea, without the header).
	cfg.InsecureSkipVerify = true
	cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("the server sent no certificate")
		}
		leaf, err := x509.ParseCertificate(raw[0])
		if err != nil {
			return err
		}
		got := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
		if !bytes.Equal(got[:], want) {
			return fmt.Errorf("the server's key sha256:%x is not the pinned %s: another server, or someone in between", got, e.Pin)
		}
		return nil
	}
	return cfg, nil
}

// PinOf returns the pin of a certificate (what --tls-auto prints).
func PinOf(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ServerError is the server's refusal (a wire.ErrorMessage).
type ServerError struct {
	Status  int
	Message string
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("the attestation server refused (HTTP %d): %s", e.Status, e.Message)
}

// Exchange sends one message to path and returns the answer's body when the
// status is 200; a refusal becomes *ServerError.
func (e *Endpoint) Exchange(ctx context.Context, path string, msg []byte) ([]byte, error) {
	u, err := url.Parse(e.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want https://HOST[:PORT]", e.URL)
	}
	host := u.Hostname()
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(host, "443")
	}
	timeout := e.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cfg, err := e.tlsConfig(host)
	if err != nil {
		return nil, err
	}
	d := tls.Dialer{Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect to the attestation server %s: %w", e.URL, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	var req bytes.Buffer
	fmt.Fprintf(&req, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: glint-attest/1\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
		strings.TrimRight(u.EscapedPath(), "/")+path, u.Host, wire.ContentType, len(msg))
	req.Write(msg)
	if _, err := conn.Write(req.Bytes()); err != nil {
		return nil, fmt.Errorf("send to %s: %w", e.URL, err)
	}
	status, ctype, body, err := readResponse(conn)
	if err != nil {
		return nil, err
	}
	if status == 200 {
		if ctype != wire.ContentType {
			return nil, &ResponseError{Reason: fmt.Sprintf("content type %q: is %s a glint attestation server?", ctype, e.URL)}
		}
		return body, nil
	}
	if m, err := wire.DecodeErrorMessage(body); err == nil {
		return nil, &ServerError{Status: status, Message: m.Message}
	}
	return nil, &ServerError{Status: status, Message: fmt.Sprintf("(no glint error message; is %s a glint attestation server?)", e.URL)}
}

// readResponse reads one HTTP/1.1 response whose body is delimited by
// Content-Length or by the end of the connection (Connection: close).
func readResponse(untrusted io.Reader) (status int, contentType string, body []byte, err error) {
	br := bufio.NewReaderSize(io.LimitReader(untrusted, int64(wire.MaxMessage)+maxHeaders*maxHeaderLine+maxStatusLine), 4096)
	line, err := readLine(br, maxStatusLine)
	if err != nil {
		return 0, "", nil, &ResponseError{Reason: "status line: " + err.Error()}
	}
	proto, rest, _ := strings.Cut(line, " ")
	code, _, _ := strings.Cut(rest, " ")
	if proto != "HTTP/1.1" && proto != "HTTP/1.0" {
		return 0, "", nil, &ResponseError{Reason: fmt.Sprintf("not an HTTP response (%q)", truncate(line))}
	}
	status, err = strconv.Atoi(code)
	if err != nil || status < 100 || status > 599 {
		return 0, "", nil, &ResponseError{Reason: fmt.Sprintf("status %q", truncate(code))}
	}
	length := -1
	for i := 0; ; i++ {
		if i > maxHeaders {
			return 0, "", nil, &ResponseError{Reason: fmt.Sprintf("more than %d header lines", maxHeaders)}
		}
		h, err := readLine(br, maxHeaderLine)
		if err != nil {
			return 0, "", nil, &ResponseError{Reason: "header: " + err.Error()}
		}
		if h == "" {
			break
		}
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			return 0, "", nil, &ResponseError{Reason: fmt.Sprintf("malformed header %q", truncate(h))}
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "content-length":
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 || (length >= 0 && n != length) {
				return 0, "", nil, &ResponseError{Reason: fmt.Sprintf("content length %q", truncate(value))}
			}
			if n > wire.MaxMessage {
				return 0, "", nil, &ResponseError{Reason: fmt.Sprintf("a %d-byte answer, limit %d", n, wire.MaxMessage)}
			}
			length = n
		case "transfer-encoding":
			if !strings.EqualFold(value, "identity") {
				return 0, "", nil, &ResponseError{Reason: fmt.Sprintf("transfer encoding %q: a glint server sends a length", truncate(value))}
			}
		case "content-type":
			contentType = value
		}
	}
	if length >= 0 {
		body = make([]byte, length)
		if _, err := io.ReadFull(br, body); err != nil {
			return 0, "", nil, &ResponseError{Reason: fmt.Sprintf("body shorter than its %d bytes: %v", length, err)}
		}
		return status, contentType, body, nil
	}
	body, err = io.ReadAll(io.LimitReader(br, wire.MaxMessage+1))
	if err != nil {
		return 0, "", nil, &ResponseError{Reason: "body: " + err.Error()}
	}
	if len(body) > wire.MaxMessage {
		return 0, "", nil, &ResponseError{Reason: fmt.Sprintf("an answer over %d bytes", wire.MaxMessage)}
	}
	return status, contentType, body, nil
}

// readLine reads a CRLF- (or LF-) terminated line of at most max bytes.
func readLine(br *bufio.Reader, max int) (string, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		line = append(line, frag...)
		if len(line) > max+2 {
			return "", fmt.Errorf("a line over %d bytes", max)
		}
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) {
			return "", errors.New("the connection closed mid-line")
		}
		return "", err
	}
	// Exactly one terminator: a stray CR is part of the line (and then
	// malformed), not a second line end.
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	return string(line), nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
