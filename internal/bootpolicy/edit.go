package bootpolicy

import (
	"bytes"
	"fmt"
	"strings"
)

// MaxConfigSize is the owner configuration's size limit
// (internal/ownerconfig).
const MaxConfigSize = 64 << 10

// SetInConfig returns the owner configuration text config with key set to
// value: the first "key = ..." line is replaced, later ones dropped (the
// last would win), or the line is appended. Comments and every other line
// are kept as they are. The value is checked as the boot flow will check it.
func SetInConfig(config []byte, key, value string) ([]byte, error) {
	var probe Settings
	if err := probe.Set(key, value); err != nil {
		if err == ErrNotMine {
			return nil, fmt.Errorf("%q is not a boot policy setting", key)
		}
		return nil, err
	}
	if strings.ContainsAny(value, "#\r\n") {
		return nil, fmt.Errorf("%s: the value may not contain '#' or a line break", key)
	}
	if len(config) > MaxConfigSize {
		return nil, fmt.Errorf("owner configuration of %d bytes, more than %d", len(config), MaxConfigSize)
	}
	newLine := key + " = " + value
	var out bytes.Buffer
	done := false
	lines := strings.SplitAfter(string(config), "\n")
	for _, l := range lines {
		if l == "" {
			continue
		}
		body := strings.TrimRight(l, "\r\n")
		if i := strings.IndexByte(body, '#'); i >= 0 {
			body = body[:i]
		}
		k, _, ok := strings.Cut(body, "=")
		if ok && strings.TrimSpace(k) == key {
			if !done {
				out.WriteString(newLine + "\n")
				done = true
			}
			continue
		}
		out.WriteString(l)
	}
	if !done {
		if out.Len() > 0 && !bytes.HasSuffix(out.Bytes(), []byte("\n")) {
			out.WriteByte('\n')
		}
		out.WriteString(newLine + "\n")
	}
	if out.Len() > MaxConfigSize {
		return nil, fmt.Errorf("the owner configuration would grow past %d bytes", MaxConfigSize)
	}
	return out.Bytes(), nil
}
