package isoverify

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"strings"
)

// Checksum-file limits. Distribution checksum files list tens of images
// (Debian's SHA512SUMS for a release: ~30 lines, Fedora's CHECKSUM: 2-6).
const (
	// MaxChecksumFileSize bounds a checksum file read from a USB stick.
	MaxChecksumFileSize = 1 << 20
	// MaxChecksumEntries bounds the lines that list a file.
	MaxChecksumEntries = 4096
	// MaxChecksumLine bounds one line.
	MaxChecksumLine = 4096
)

// Checksum is one "this file has this digest" line.
type Checksum struct {
	Name string      // as listed: "debian-12.5.0-amd64-netinst.iso"
	Hash crypto.Hash // 0 for an algorithm glint does not accept (MD5, SHA-1, BLAKE2)
	Algo string      // as written or inferred: "SHA256", "MD5", ...
	Sum  []byte
	Line int
}

// ChecksumFile is a parsed checksum file.
type ChecksumFile struct {
	Entries []Checksum
}

// ChecksumError is a malformed checksum file: which line and why.
type ChecksumError struct {
	File string
	Line int // 1-based; 0 for the whole file
	Err  error
}

func (e *ChecksumError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("checksum file %s: %v", e.File, e.Err)
	}
	return fmt.Sprintf("checksum file %s line %d: %v", e.File, e.Line, e.Err)
}

func (e *ChecksumError) Unwrap() error { return e.Err }

// ErrChecksumTooLarge is wrapped by a ChecksumError when a cap is exceeded.
var ErrChecksumTooLarge = errors.New("over the cap")

// algorithms glint accepts as evidence, by the names BSD-style lines use.
var algorithms = map[string]crypto.Hash{
	"SHA256": crypto.SHA256,
	"SHA384": crypto.SHA384,
	"SHA512": crypto.SHA512,
}

// weak are algorithms that appear in real files (Qubes' DIGESTS lists MD5
// and SHA-1 beside SHA-256 and SHA-512) and are parsed but never trusted.
var weak = map[string]bool{"MD5": true, "SHA1": true, "SHA224": true, "BLAKE2B": true}

// gnuAlgorithm says which algorithm the GNU-style lines of a checksum file
// use, from its name: SHA256SUMS and sha256sum.txt hold SHA-256, b2sums
// BLAKE2 (not accepted). "" means "infer from the digest length" (Qubes'
// DIGESTS and Fedora's CHECKSUM, whose BSD-style lines name it).
func gnuAlgorithm(name string) string {
	n := strings.ToLower(path.Base(name))
	for _, p := range []struct{ prefix, algo string }{
		{"sha256sum", "SHA256"}, {"sha512sum", "SHA512"}, {"sha384sum", "SHA384"},
		{"b2sum", "BLAKE2B"}, {"md5sum", "MD5"}, {"sha1sum", "SHA1"},
	} {
		if strings.HasPrefix(n, p.prefix) {
			return p.algo
		}
	}
	return ""
}

// ParseChecksums reads a checksum file in the formats distributions publish:
//
//	GNU coreutils:  <hex>  name      (sha256sum; " *name" in binary mode;
//	                                   a leading '\' escapes \\ and \n in name)
//	BSD tagged:     SHA256 (name) = <hex>   (Fedora's CHECKSUM, sha256sum --tag)
//
// Blank lines and '#' comments are skipped (Fedora writes "# name: N bytes"),
// CR LF line ends are accepted. name is the file's name, only for messages
// and to tell which algorithm its GNU-style lines use (SHA256SUMS: SHA-256). Any
// other line is an error naming the line: a checksum file glint cannot read
// entirely is not evidence. The text given is what a signature covered
// (clearsigned files are decoded before).
func ParseChecksums(name string, untrusted []byte) (*ChecksumFile, error) {
	if len(untrusted) > MaxChecksumFileSize {
		return nil, &ChecksumError{File: name, Err: fmt.Errorf("%d bytes: %w (max %d)", len(untrusted), ErrChecksumTooLarge, MaxChecksumFileSize)}
	}
	gnuAlgo := gnuAlgorithm(name)
	cf := &ChecksumFile{}
	seen := map[string]int{} // algo + "\x00" + name -> index
	lineNo := 0
	for rest := untrusted; len(rest) > 0; {
		var line []byte
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			line, rest = rest, nil
		}
		lineNo++
		if len(line) > MaxChecksumLine {
			return nil, &ChecksumError{File: name, Line: lineNo, Err: fmt.Errorf("%d bytes: %w (max %d)", len(line), ErrChecksumTooLarge, MaxChecksumLine)}
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(bytes.TrimSpace(line)) == 0 || line[0] == '#' {
			continue
		}
		c, err := parseChecksumLine(string(line), gnuAlgo)
		if err != nil {
			return nil, &ChecksumError{File: name, Line: lineNo, Err: err}
		}
		c.Line = lineNo
		key := c.Algo + "\x00" + c.Name
		if i, ok := seen[key]; ok {
			if !bytes.Equal(cf.Entries[i].Sum, c.Sum) {
				return nil, &ChecksumError{File: name, Line: lineNo, Err: fmt.Errorf("%q is listed twice with different %s digests (lines %d and %d)", c.Name, c.Algo, cf.Entries[i].Line, lineNo)}
			}
			continue
		}
		if len(cf.Entries) >= MaxChecksumEntries {
			return nil, &ChecksumError{File: name, Line: lineNo, Err: fmt.Errorf("more than %d entries: %w", MaxChecksumEntries, ErrChecksumTooLarge)}
		}
		seen[key] = len(cf.Entries)
		cf.Entries = append(cf.Entries, c)
	}
	return cf, nil
}

func parseChecksumLine(line, gnuAlgo string) (Checksum, error) {
	// GNU: hex, then "  name" (text mode) or " *name" (binary mode); a
	// leading backslash says the name is escaped.
	gnu := line
	escaped := strings.HasPrefix(gnu, "\\")
	if escaped {
		gnu = gnu[1:]
	}
	sp := strings.IndexByte(gnu, ' ')
	if sp <= 0 || !isHex(gnu[:sp]) || sp+2 > len(gnu) || (gnu[sp+1] != ' ' && gnu[sp+1] != '*') {
		// BSD tagged: ALGO (name) = hex
		i := strings.Index(line, " (")
		j := strings.LastIndex(line, ") = ")
		if i <= 0 || j < i+2 || strings.ContainsAny(line[:i], " \t") {
			return Checksum{}, fmt.Errorf("%.40q: want \"HEX  name\" or \"ALGO (name) = HEX\"", line)
		}
		algo := strings.ToUpper(strings.ReplaceAll(line[:i], "-", ""))
		return makeChecksum(algo, line[i+2:j], line[j+4:])
	}
	sum, name := gnu[:sp], gnu[sp+2:]
	if escaped {
		var err error
		if name, err = unescapeGNU(name); err != nil {
			return Checksum{}, err
		}
	}
	algo := gnuAlgo
	if algo == "" {
		switch len(sum) {
		case 32:
			algo = "MD5"
		case 40:
			algo = "SHA1"
		case 64:
			algo = "SHA256"
		case 96:
			algo = "SHA384"
		case 128:
			algo = "SHA512"
		default:
			return Checksum{}, fmt.Errorf("digest of %d hex digits matches no algorithm", len(sum))
		}
	}
	return makeChecksum(algo, name, sum)
}

func makeChecksum(algo, name, sum string) (Checksum, error) {
	if name == "" {
		return Checksum{}, errors.New("empty file name")
	}
	if !isHex(sum) || len(sum)%2 != 0 {
		return Checksum{}, fmt.Errorf("digest %.20q is not hex", sum)
	}
	raw, _ := hex.DecodeString(sum)
	c := Checksum{Name: name, Algo: algo, Sum: raw}
	if h, ok := algorithms[algo]; ok {
		if len(raw) != h.Size() {
			return Checksum{}, fmt.Errorf("%s digest of %d bytes (want %d)", algo, len(raw), h.Size())
		}
		c.Hash = h
		return c, nil
	}
	if !weak[algo] {
		return Checksum{}, fmt.Errorf("unknown algorithm %.16q", algo)
	}
	return c, nil
}

// unescapeGNU reverses coreutils' name escaping (\\ and \n).
func unescapeGNU(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) {
			return "", errors.New("name ends in a lone backslash")
		}
		i++
		switch s[i] {
		case '\\':
			b.WriteByte('\\')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		default:
			return "", fmt.Errorf("unknown escape \\%c in name", s[i])
		}
	}
	return b.String(), nil
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// Lookup returns the accepted digests listed for name (a base name; a
// listed "./name" or "dir/name" does not match: the file beside the
// checksum file is what the distribution listed by its bare name), and
// whether any entry, weak ones included, listed it.
func (cf *ChecksumFile) Lookup(name string) (accepted []Checksum, listed bool) {
	for _, c := range cf.Entries {
		if c.Name != name {
			continue
		}
		listed = true
		if c.Hash != 0 {
			accepted = append(accepted, c)
		}
	}
	return accepted, listed
}
