package manifest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// Heads /boot files (linuxboot/heads initrd/bin/kexec-sign-config.sh and
// initrd/etc/functions.sh check_config, verify_checksums, print_tree).
const (
	headsSig      = "kexec.sig"
	headsHashes   = "kexec_hashes.txt"
	headsTree     = "kexec_tree.txt"
	headsRollback = "kexec_rollback.txt"
	// maxHeadsFile bounds each kexec*.txt glint reads.
	maxHeadsFile = 16 << 20
	// maxHeadsSigned bounds how many kexec*.txt files are signed together.
	maxHeadsSigned = 256
)

// Heads is a verified Heads-signed /boot.
type Heads struct {
	Signer   *openpgp.Entity
	SignedAt time.Time
	// SignedFiles are the kexec*.txt names kexec.sig covers.
	SignedFiles []string
	// Legacy is true when kexec.sig was made by Heads before April 2026,
	// which hashed "/boot/kexec_*.txt" instead of bare names.
	Legacy bool
	// Defaults maps kexec_default.<N>.txt to its entry line
	// ("name|elf|kernel ...|initrd ...|append ..."), for the boot flow to
	// match against its own entries.
	Defaults map[string]string
	// CounterIndex is the TPM counter from kexec_rollback.txt (0 if none),
	// CounterChecked whether its value was checked against the TPM.
	CounterIndex   uint32
	CounterChecked bool
	// Current is /boot as it is now, which verified against everything
	// Heads signed: what ToManifest signs in glint's format.
	Current *Manifest
}

// HeadsParseError is a malformed Heads file.
type HeadsParseError struct {
	File string
	Line int // 1-based; for kexec_tree.txt the entry number
	Err  error
}

func (e *HeadsParseError) Error() string {
	return fmt.Sprintf("Heads %s entry %d: %v", e.File, e.Line, e.Err)
}

func (e *HeadsParseError) Unwrap() error { return e.Err }

// ReadHeads verifies a /boot signed by Heads, the way Heads itself does at
// boot, so an owner can move to glint without trusting /boot blindly:
//
//   - kexec.sig over `sha256sum kexec*.txt` run in /boot (check_config);
//   - every line of kexec_hashes.txt (`sha256sum -c`);
//   - kexec_tree.txt against the tree now, to catch added files (print_tree);
//   - with counter != nil, kexec_rollback.txt: the SHA-256 of what `tpmr
//     counter_read` prints for the TPM 2.0 counter ("<id>: <16 hex>\n").
//
// Failures are a *TamperError as from Verify. After success, ToManifest
// gives the same /boot in glint's format, ready to sign.
func ReadHeads(bootDir string, keyring openpgp.EntityList, counter CounterReader) (*Heads, error) {
	sig, err := readCapped(filepath.Join(bootDir, headsSig), MaxSignatureSize)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no Heads signature %s in %s: this /boot was not signed by Heads", headsSig, bootDir)
	}
	if err != nil {
		return nil, err
	}
	names, contents, err := readHeadsSigned(bootDir)
	if err != nil {
		return nil, err
	}
	h := &Heads{SignedFiles: names, Defaults: map[string]string{}}
	// Heads changed what it signs in April 2026 (commit be86fd02): relative
	// names since, "/boot/..." (find "$paramsdir"/kexec*.txt) before.
	var sigErr error
	for _, legacy := range []bool{false, true} {
		var signed bytes.Buffer
		for i, n := range names {
			if legacy {
				n = "/boot/" + n
			}
			fmt.Fprintf(&signed, "%x  %s\n", sha256.Sum256(contents[i]), n)
		}
		h.Signer, h.SignedAt, sigErr = checkDetached(signed.Bytes(), sig, keyring)
		if sigErr == nil {
			h.Legacy = legacy
			break
		}
		var te *TamperError
		if errors.As(sigErr, &te) && te.UnknownKey != 0 {
			return nil, sigErr // the same for both forms
		}
	}
	if sigErr != nil {
		return nil, sigErr
	}
	files := map[string][]byte{}
	for i, n := range names {
		files[n] = contents[i]
		if strings.HasPrefix(n, "kexec_default.") && n != "kexec_default_hashes.txt" {
			h.Defaults[n] = strings.TrimRight(string(contents[i]), "\n")
		}
	}
	hashesText, ok := files[headsHashes]
	if !ok {
		return nil, fmt.Errorf("Heads /boot has no signed %s: nothing says what the files should be; sign /boot in Heads with hashes first", headsHashes)
	}
	treeText, ok := files[headsTree]
	if !ok {
		return nil, fmt.Errorf("Heads /boot has no signed %s (signed by a Heads older than 2023?): added files cannot be detected; sign /boot again in Heads, then migrate", headsTree)
	}
	hashes, err := ParseHeadsHashes(hashesText)
	if err != nil {
		return nil, err
	}
	tree, err := ParseHeadsTree(treeText)
	if err != nil {
		return nil, err
	}

	te := &TamperError{}
	if rb, ok := files[headsRollback]; ok {
		idx, want, err := parseHeadsRollback(rb)
		if err != nil {
			return nil, err
		}
		h.CounterIndex = idx
		if counter != nil {
			v, err := counter.CounterRead(idx)
			if err != nil {
				return nil, fmt.Errorf("read Heads' TPM rollback counter 0x%08x: %w", idx, err)
			}
			h.CounterChecked = true
			if headsCounterDigest(idx, v) != want {
				te.Rollback = &RollbackError{Index: idx, Manifest: headsSignedValue(idx, v, want), TPM: v}
			}
		}
	}

	cur, err := Build(bootDir, BuildOptions{report: true})
	if err != nil {
		return nil, fmt.Errorf("hash /boot: %w", err)
	}
	h.Current = cur
	byPath := map[string]Entry{}
	for _, e := range cur.Entries {
		byPath[e.Path] = e
	}
	for _, want := range hashes {
		got, ok := byPath[want.Path]
		switch {
		case !ok:
			te.Removed = append(te.Removed, want)
		case got.Kind != KindFile || got.SHA256 != want.SHA256:
			// Heads records no size; show the one on disk for both.
			want.Size = got.Size
			te.Changed = append(te.Changed, FileChange{Path: want.Path, Want: want, Got: got})
		}
	}
	inTree := map[string]bool{}
	for _, p := range tree {
		inTree[p] = true
	}
	hashed := map[string]bool{}
	for _, e := range hashes {
		hashed[e.Path] = true
	}
	for _, e := range cur.Entries {
		if !inTree[e.Path] && !headsExcluded(e.Path) {
			te.Added = append(te.Added, e)
		}
	}
	for _, p := range tree {
		if _, ok := byPath[p]; !ok && !hashed[p] {
			te.Removed = append(te.Removed, Entry{Path: p})
		}
	}
	sort.Slice(te.Removed, func(i, j int) bool { return te.Removed[i].Path < te.Removed[j].Path })
	if !te.empty() {
		return h, te
	}
	return h, nil
}

// headsExcluded mirrors find's `! -path './kexec*'`: Heads' own files (and
// anything else whose path starts with kexec) are not in its tree.
func headsExcluded(p string) bool { return strings.HasPrefix(p, "kexec") }

// ToManifest is the verified /boot as a glint manifest (without counter;
// SignBoot or the caller sets it). The kexec*.txt files are listed like any
// other file: delete them before signing if Heads will not be used again.
func (h *Heads) ToManifest() *Manifest {
	m := &Manifest{Entries: append([]Entry(nil), h.Current.Entries...)}
	return m
}

// readHeadsSigned reads the kexec*.txt files at the top of bootDir in the
// order bash expands the glob (byte order in Heads' C locale).
func readHeadsSigned(bootDir string) ([]string, [][]byte, error) {
	ents, err := os.ReadDir(bootDir)
	if err != nil {
		return nil, nil, err
	}
	var names []string
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, "kexec") && strings.HasSuffix(n, ".txt") {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return nil, nil, errors.New("Heads /boot has kexec.sig but no kexec*.txt files")
	}
	if len(names) > maxHeadsSigned {
		return nil, nil, fmt.Errorf("%d kexec*.txt files: more than %d", len(names), maxHeadsSigned)
	}
	sort.Strings(names)
	contents := make([][]byte, len(names))
	for i, n := range names {
		if contents[i], err = readCapped(filepath.Join(bootDir, n), maxHeadsFile); err != nil {
			return nil, nil, err
		}
	}
	return names, contents, nil
}

// ParseHeadsHashes parses kexec_hashes.txt: `find ./ -type f ! -path
// './kexec*' -print0 | xargs -0 sha256sum` output, "<hex>  ./path" per line
// (GNU coreutils escapes names holding \ or newline with a leading "\").
func ParseHeadsHashes(untrusted []byte) ([]Entry, error) {
	perr := func(line int, format string, a ...any) error {
		return &HeadsParseError{File: headsHashes, Line: line, Err: fmt.Errorf(format, a...)}
	}
	if len(untrusted) > maxHeadsFile {
		return nil, perr(0, "%d bytes: %w", len(untrusted), ErrTooLarge)
	}
	var out []Entry
	seen := map[string]bool{}
	for i, line := range strings.Split(strings.TrimSuffix(string(untrusted), "\n"), "\n") {
		n := i + 1
		if line == "" && len(untrusted) == 0 {
			break
		}
		if len(out) >= MaxEntries {
			return nil, perr(n, "%w: more than %d files", ErrTooLarge, MaxEntries)
		}
		escaped := strings.HasPrefix(line, "\\")
		if escaped {
			line = line[1:]
		}
		if len(line) < 64+3 || (line[64:66] != "  " && line[64:66] != " *") {
			return nil, perr(n, "want \"SHA256  ./PATH\"")
		}
		var e Entry
		if _, err := hex.Decode(e.SHA256[:], []byte(line[:64])); err != nil {
			return nil, perr(n, "bad SHA-256: %v", err)
		}
		name := line[66:]
		if escaped {
			var err error
			if name, err = unescapeSha256sum(name); err != nil {
				return nil, perr(n, "%v", err)
			}
		}
		p, ok := strings.CutPrefix(name, "./")
		if !ok {
			return nil, perr(n, "path %.64q does not start with ./", name)
		}
		if err := ValidPath(p); err != nil {
			return nil, perr(n, "%v", err)
		}
		if seen[p] {
			return nil, perr(n, "%.64q listed twice", p)
		}
		seen[p] = true
		e.Kind, e.Path = KindFile, p
		out = append(out, e)
	}
	return out, nil
}

func unescapeSha256sum(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) {
			return "", errors.New("trailing backslash")
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
			return "", fmt.Errorf("unknown escape \\%c", s[i])
		}
	}
	return b.String(), nil
}

// ParseHeadsTree parses kexec_tree.txt: `find ./ ! -path './kexec*' -print0
// | sort -z`, NUL-terminated paths starting with "./" ("./" itself is the
// top). Returns the paths relative to /boot, without the top.
func ParseHeadsTree(untrusted []byte) ([]string, error) {
	perr := func(n int, format string, a ...any) error {
		return &HeadsParseError{File: headsTree, Line: n, Err: fmt.Errorf(format, a...)}
	}
	if len(untrusted) > maxHeadsFile {
		return nil, perr(0, "%d bytes: %w", len(untrusted), ErrTooLarge)
	}
	if len(untrusted) == 0 || untrusted[len(untrusted)-1] != 0 {
		return nil, perr(0, "not NUL-terminated (truncated?)")
	}
	var out []string
	for i, raw := range bytes.Split(untrusted[:len(untrusted)-1], []byte{0}) {
		n := i + 1
		if len(out) >= MaxEntries {
			return nil, perr(n, "%w: more than %d entries", ErrTooLarge, MaxEntries)
		}
		s := string(raw)
		if s == "./" || s == "." {
			continue
		}
		p, ok := strings.CutPrefix(s, "./")
		if !ok {
			return nil, perr(n, "path %.64q does not start with ./", s)
		}
		if err := ValidPath(p); err != nil {
			return nil, perr(n, "%v", err)
		}
		out = append(out, p)
	}
	return out, nil
}

// parseHeadsRollback reads "<sha256>  /tmp/counter-<hexid>".
func parseHeadsRollback(untrusted []byte) (uint32, [32]byte, error) {
	var want [32]byte
	perr := func(format string, a ...any) error {
		return &HeadsParseError{File: headsRollback, Line: 1, Err: fmt.Errorf(format, a...)}
	}
	line, _, _ := strings.Cut(string(untrusted), "\n")
	if len(line) < 66 || line[64:66] != "  " {
		return 0, want, perr("want \"SHA256  /tmp/counter-ID\"")
	}
	if _, err := hex.Decode(want[:], []byte(line[:64])); err != nil {
		return 0, want, perr("bad SHA-256: %v", err)
	}
	id, ok := strings.CutPrefix(line[66:], "/tmp/counter-")
	if !ok || id == "" || len(id) > 8 {
		return 0, want, perr("no counter id in %.64q", line[66:])
	}
	idx, err := strconv.ParseUint(id, 16, 32)
	if err != nil {
		return 0, want, perr("counter id %.16q is not hex", id)
	}
	return uint32(idx), want, nil
}

// headsCounterDigest is sha256 of what Heads' tpm2_counter_read prints:
// `echo "$index: $(tpm2 nvread 0x$index | xxd -pc8)"`, the index as Heads
// wrote it (lowercase hex, no 0x) and the 8-byte big-endian value in hex.
func headsCounterDigest(idx uint32, v uint64) [32]byte {
	return sha256.Sum256(fmt.Appendf(nil, "%x: %016x\n", idx, v))
}

// headsSignedValue finds which counter value the rollback file was signed
// at, by trying the values below the TPM's (cheap: a few million hashes at
// most), so the error can say "signed at 12, TPM at 14". Returns 0 if none
// matches.
func headsSignedValue(idx uint32, v uint64, want [32]byte) uint64 {
	const maxSearch = 1 << 20
	for back := uint64(1); back <= maxSearch && back <= v; back++ {
		if headsCounterDigest(idx, v-back) == want {
			return v - back
		}
	}
	for ahead := uint64(1); ahead <= 16; ahead++ {
		if headsCounterDigest(idx, v+ahead) == want {
			return v + ahead
		}
	}
	return 0
}
