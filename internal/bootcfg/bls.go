package bootcfg

import (
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// MaxBLSFileSize caps one loader entry file; real ones are a few hundred bytes.
const MaxBLSFileSize = 64 << 10

// BLSDir is where Type #1 entries live relative to $BOOT (UAPI.1, "Type #1
// Boot Loader Specification Entries").
const BLSDir = "loader/entries"

// blsEntry is one parsed *.conf before variables are expanded.
type blsEntry struct {
	id, file                           string
	title, version, machineID, sortKey string
	linux                              string
	initrds, options                   []string
	efi                                string
	line                               int
}

// parseBLSEntry parses the "key value" lines of a Type #1 entry. Keys that
// may repeat (initrd, options) accumulate; '#' starts a comment line.
func parseBLSEntry(file string, untrustedData []byte) (*blsEntry, error) {
	if len(untrustedData) > MaxBLSFileSize {
		return nil, perr(file, 0, ErrTooLarge, "%d bytes, cap %d", len(untrustedData), MaxBLSFileSize)
	}
	id := strings.TrimSuffix(path.Base(file), ".conf")
	e := &blsEntry{id: id, file: file}
	lines := strings.Split(string(untrustedData), "\n")
	for i, l := range lines {
		if len(l) > MaxLineLength {
			return nil, perr(file, i+1, ErrLineTooLong, "cap %d bytes", MaxLineLength)
		}
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' {
			continue
		}
		key, value, _ := strings.Cut(l, " ")
		if k2, v2, ok := strings.Cut(l, "\t"); ok && len(k2) < len(key) {
			key, value = k2, v2
		}
		value = strings.TrimSpace(value)
		if len(e.initrds)+len(e.options) > MaxArgs {
			return nil, perr(file, i+1, ErrTooManyArgs, "cap %d", MaxArgs)
		}
		switch key {
		case "title":
			e.title = value
		case "version":
			e.version = value
		case "machine-id":
			e.machineID = value
		case "sort-key":
			e.sortKey = value
		case "linux":
			e.linux = value
			e.line = i + 1
		case "initrd":
			e.initrds = append(e.initrds, strings.Fields(value)...)
		case "options":
			e.options = append(e.options, value)
		case "efi":
			e.efi = value
		}
	}
	return e, nil
}

// expandBLS replaces $name and ${name} with grub environment values, as
// grub's blscfg does for options (Fedora: "options $kernelopts"); unknown
// names expand to nothing.
func expandBLS(s string, vars map[string]string) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		j, name := i+1, ""
		if s[j] == '{' {
			end := strings.IndexByte(s[j:], '}')
			if end < 0 {
				b.WriteByte(s[i])
				continue
			}
			name = s[j+1 : j+end]
			i = j + end
		} else {
			for j < len(s) && isNameByte(s[j]) {
				j++
			}
			if j == i+1 {
				b.WriteByte(s[i])
				continue
			}
			name = s[i+1 : j]
			i = j - 1
		}
		b.WriteString(vars[name])
		if b.Len() > MaxWordLength {
			return "", ErrWordTooLong
		}
	}
	return b.String(), nil
}

// ParseBLS parses one loader entry file into an Entry. vars are grub
// environment variables for $expansion (may be nil). It returns nil, nil for
// an entry glint cannot kexec (EFI unified kernel images only).
func ParseBLS(fsys fs.FS, file string, untrustedData []byte, vars map[string]string) (*Entry, error) {
	b, err := parseBLSEntry(file, untrustedData)
	if err != nil {
		return nil, err
	}
	return b.toEntry(fsys, vars)
}

func (b *blsEntry) toEntry(fsys fs.FS, vars map[string]string) (*Entry, error) {
	if b.linux == "" {
		return nil, nil
	}
	if fsys == nil {
		fsys = emptyFS{}
	}
	e := &Entry{ID: b.id, Title: b.title, Kind: Linux, Source: b.file + ":" + strconv.Itoa(b.line)}
	if e.Title == "" {
		e.Title = b.id
	}
	res := func(p string) string {
		rel, ok := resolvePath(fsys, p)
		if !ok {
			e.Missing = append(e.Missing, rel)
		}
		return rel
	}
	e.Kernel = res(b.linux)
	for _, ir := range b.initrds {
		x, err := expandBLS(ir, vars)
		if err != nil {
			return nil, perr(b.file, b.line, err, "")
		}
		for _, f := range strings.Fields(x) {
			e.Initrds = append(e.Initrds, res(f))
		}
	}
	opts, err := expandBLS(strings.Join(b.options, " "), vars)
	if err != nil {
		return nil, perr(b.file, b.line, err, "")
	}
	e.Cmdline = strings.Join(strings.Fields(opts), " ")
	e.Aliases = []string{b.id}
	if !usable(e) {
		return nil, nil
	}
	return e, nil
}

// ParseBLSDir reads every *.conf under loader/entries and returns the
// entries in Boot Loader Specification order.
func ParseBLSDir(fsys fs.FS, vars map[string]string) ([]Entry, error) {
	names, err := fs.Glob(fsys, BLSDir+"/*.conf")
	if err != nil || len(names) == 0 {
		return nil, nil
	}
	if len(names) > MaxBLSEntries {
		return nil, perr(BLSDir, 0, ErrTooManyEntries, "%d files, cap %d", len(names), MaxBLSEntries)
	}
	var raw []*blsEntry
	for _, n := range names {
		data, err := readCapped(fsys, n, MaxBLSFileSize)
		if err != nil {
			return nil, err
		}
		b, err := parseBLSEntry(n, data)
		if err != nil {
			return nil, err
		}
		if b.linux != "" {
			raw = append(raw, b)
		}
	}
	sortBLS(raw)
	out := make([]Entry, 0, len(raw))
	for _, b := range raw {
		e, err := b.toEntry(fsys, vars)
		if err != nil {
			return nil, err
		}
		if e != nil {
			out = append(out, *e)
		}
	}
	return out, nil
}

// sortBLS orders entries as UAPI.1 "Sorting" describes: entries with a
// sort-key first, by sort-key ascending, then machine-id ascending, then
// version descending; the rest by id descending in version order (newest
// kernel first).
func sortBLS(es []*blsEntry) {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i], es[j]
		if (a.sortKey != "") != (b.sortKey != "") {
			return a.sortKey != ""
		}
		if a.sortKey != "" {
			if a.sortKey != b.sortKey {
				return a.sortKey < b.sortKey
			}
			if a.machineID != b.machineID {
				return a.machineID < b.machineID
			}
			if c := VersionCompare(a.version, b.version); c != 0 {
				return c > 0
			}
		}
		return VersionCompare(a.id, b.id) > 0
	})
}

// VersionCompare compares version strings as the UAPI Version Format
// Specification does (systemd's strverscmp_improved): runs of digits compare
// numerically, runs of letters lexically, letters sort before digits, '~'
// sorts before anything (even the end), '-' and '^' and '.' separate parts and
// a string with one more part is newer. It returns -1, 0 or 1.
func VersionCompare(a, b string) int {
	isValid := func(c byte) bool {
		return isAlnum(c) || c == '~' || c == '-' || c == '^' || c == '.'
	}
	for {
		for len(a) > 0 && !isValid(a[0]) {
			a = a[1:]
		}
		for len(b) > 0 && !isValid(b[0]) {
			b = b[1:]
		}
		// '~' is older than anything, including the end.
		at, bt := len(a) > 0 && a[0] == '~', len(b) > 0 && b[0] == '~'
		if at || bt {
			if !bt {
				return -1
			}
			if !at {
				return 1
			}
			a, b = a[1:], b[1:]
			continue
		}
		if a == "" || b == "" {
			return cmpInt(len(a), len(b))
		}
		for _, sep := range []byte{'-', '^', '.'} {
			as, bs := a[0] == sep, b[0] == sep
			if as != bs {
				if as {
					return -1
				}
				return 1
			}
			if as {
				a, b = a[1:], b[1:]
			}
		}
		if a == "" || b == "" {
			continue
		}
		if isDigit(a[0]) || isDigit(b[0]) {
			if !isDigit(a[0]) {
				return -1 // letters before digits
			}
			if !isDigit(b[0]) {
				return 1
			}
			a = strings.TrimLeft(a, "0")
			b = strings.TrimLeft(b, "0")
			na, nb := spanDigits(a), spanDigits(b)
			if na != nb {
				return cmpInt(na, nb)
			}
			if c := strings.Compare(a[:na], b[:nb]); c != 0 {
				return c
			}
			a, b = a[na:], b[nb:]
			continue
		}
		na, nb := spanAlpha(a), spanAlpha(b)
		if c := strings.Compare(a[:na], b[:nb]); c != 0 {
			return c
		}
		a, b = a[na:], b[nb:]
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlnum(c byte) bool {
	return isDigit(c) || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
func spanDigits(s string) int {
	n := 0
	for n < len(s) && isDigit(s[n]) {
		n++
	}
	return n
}
func spanAlpha(s string) int {
	n := 0
	for n < len(s) && isAlnum(s[n]) && !isDigit(s[n]) {
		n++
	}
	return n
}
func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
