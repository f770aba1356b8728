package isoverify

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/clearsign"

	_ "crypto/sha512" // SHA-384 and SHA-512 for checksum files
)

// Sentinel reasons inside a *VerifyError, for errors.Is.
var (
	// ErrTampered: a trusted key's statement about the image (a signature
	// over it, a signed checksum) does not match it, or a signed checksum
	// file was changed after signing. Do not boot it.
	ErrTampered = errors.New("tampered")
	// ErrUntrustedSigner: the image is signed, but by no key glint trusts.
	ErrUntrustedSigner = errors.New("signed by a key that is not trusted")
	// ErrNotSigned: no signature or signed checksum file vouches for it.
	ErrNotSigned = errors.New("not signed")
)

// Image is the ISO to verify: its bytes and the name checksum files list it by.
type Image struct {
	Name string // base name: "debian-12.5.0-amd64-netinst.iso"
	R    io.ReaderAt
	Size int64
}

// Range is a run of image bytes the caller wants kept while the image is
// hashed (iso9660.FS.Extents gives them for a kernel and initrd).
type Range struct {
	Offset, Length int64
}

// Options tune Verify.
type Options struct {
	// Keep are byte ranges of the image to return, exactly as they were
	// hashed. A USB device can answer a second read differently from the
	// first; booting the kept bytes boots what was verified.
	Keep []Range
	// MaxKeep bounds the bytes kept (0: 1 GiB).
	MaxKeep int64
	// Progress, if set, is called as the image is hashed.
	Progress func(done, total int64)
}

// Evidence is one trusted statement the image matched.
type Evidence struct {
	File     string // "tails-amd64-6.0.iso.sig", "SHA256SUMS (SHA256SUMS.sign)"
	Key      *TrustedKey
	SignedAt time.Time
}

func (e Evidence) String() string {
	return fmt.Sprintf("%s, signed by %s on %s", e.File, e.Key, e.SignedAt.UTC().Format("2006-01-02"))
}

// Result is a verified image.
type Result struct {
	ISO      string
	Evidence []Evidence // at least one
	SHA256   [32]byte
	// Kept holds the bytes of Options.Keep, in the same order.
	Kept [][]byte
	// Notes are findings that did not decide the outcome (an unsigned
	// checksum file, a signature by an unknown key beside a good one).
	Notes []Finding
}

// Signer is the key of the first evidence.
func (r *Result) Signer() *TrustedKey { return r.Evidence[0].Key }

// Finding is one thing Verify found about one file.
type Finding struct {
	File    string
	Problem string
}

func (f Finding) String() string { return f.File + ": " + f.Problem }

// VerifyError says why an image is not verified, naming it and every file
// that was looked at.
type VerifyError struct {
	ISO      string
	Reason   error // ErrTampered, ErrUntrustedSigner or ErrNotSigned
	Findings []Finding
	Looked   []string // sidecar names looked for (ErrNotSigned)
}

func (e *VerifyError) Unwrap() error { return e.Reason }

func (e *VerifyError) Error() string {
	var b strings.Builder
	switch e.Reason {
	case ErrTampered:
		fmt.Fprintf(&b, "%q is TAMPERED or corrupt: ", e.ISO)
	case ErrUntrustedSigner:
		fmt.Fprintf(&b, "%q is signed, but not by a key this machine trusts: ", e.ISO)
	default:
		fmt.Fprintf(&b, "%q is not signed: ", e.ISO)
	}
	var parts []string
	for _, f := range e.Findings {
		parts = append(parts, f.String())
	}
	if len(parts) == 0 && len(e.Looked) > 0 {
		parts = append(parts, "looked for "+strings.Join(e.Looked, ", "))
	}
	b.WriteString(strings.Join(parts, "; "))
	switch e.Reason {
	case ErrTampered:
		b.WriteString(". Do not boot it: download the image again from the distribution and check it")
	case ErrUntrustedSigner:
		b.WriteString(". Add the distribution's key to the firmware image if you trust it")
	default:
		b.WriteString(". Put the distribution's .sig/.asc or signed checksum file (SHA256SUMS + SHA256SUMS.sign, CHECKSUM, .DIGESTS) beside the image")
	}
	return b.String()
}

// claim is a signed checksum that names the image.
type claim struct {
	file     string
	key      *TrustedKey
	signedAt time.Time
	sum      Checksum
}

// checksumNames are the checksum files distributions publish beside their
// images (exact names; Fedora's "*-CHECKSUM" and Qubes' "<iso>.DIGESTS"
// are matched in sidecars).
var checksumNames = []string{"SHA256SUMS", "SHA512SUMS", "SHA384SUMS", "sha256sum.txt", "sha256sums.txt", "sha512sum.txt", "sha512sums.txt"}

// signatureSuffixes are the detached signature names, for the image and
// for checksum files.
var signatureSuffixes = []string{".sig", ".asc", ".gpg", ".sign"}

// MaxSidecarScan bounds the directory entries looked at for Fedora's
// "*-CHECKSUM" files.
const MaxSidecarScan = 4096

// Verify checks img against the signatures and signed checksum files
// beside it in dir (the directory on the USB stick that holds it): the
// image's own detached signature (<iso>.sig, .asc, .gpg: Tails, Arch,
// Qubes), checksum files with a detached signature (SHA256SUMS +
// SHA256SUMS.sign or .gpg: Debian, Ubuntu, Mint) and clearsigned checksum
// files (Fedora's *-CHECKSUM, Qubes' <iso>.DIGESTS). Every signature is
// checked against kr only; the image is read once, hashed with every
// algorithm needed, and its Options.Keep ranges are kept as they pass.
//
// Any trusted statement that contradicts the image makes it tampered, even
// when another one matches. The error is a *VerifyError, or a plain error
// for I/O problems.
func Verify(img Image, dir fs.FS, kr *Keyring, opts Options) (*Result, error) {
	ve := &VerifyError{ISO: img.Name}
	var notes []Finding
	var sigs []*detached
	var claims []claim

	for _, suf := range signatureSuffixes[:3] {
		name := img.Name + suf
		ve.Looked = append(ve.Looked, name)
		raw, err := readSidecar(dir, name, MaxSignatureSize)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				notes = append(notes, Finding{name, err.Error()})
			}
			continue
		}
		d, err := readDetached(name, raw, kr)
		if err != nil {
			notes = append(notes, Finding{name, "unreadable signature: " + err.Error()})
			continue
		}
		if !d.trusted {
			ve.Findings = append(ve.Findings, Finding{name, "signed by key " + keyIDs(d.issuers) + ", which is not trusted"})
			continue
		}
		sigs = append(sigs, d)
	}

	csFiles := checksumFiles(dir, img.Name)
	ve.Looked = append(ve.Looked, "SHA256SUMS/SHA512SUMS (+ .sign/.gpg/.asc)", img.Name+".DIGESTS", "*CHECKSUM")
	for _, cs := range csFiles {
		c, verdict, findings := readChecksumClaims(dir, cs, img.Name, kr)
		claims = append(claims, c...)
		switch verdict {
		case sidecarTampered:
			ve.Findings = append(ve.Findings, findings...)
			ve.Reason = ErrTampered
		case sidecarUntrusted:
			ve.Findings = append(ve.Findings, findings...)
		default:
			notes = append(notes, findings...)
		}
	}

	if len(sigs) == 0 && len(claims) == 0 {
		switch {
		case ve.Reason == ErrTampered:
		case len(ve.Findings) > 0:
			ve.Reason = ErrUntrustedSigner
		default:
			ve.Reason = ErrNotSigned
			ve.Findings = notes
		}
		return nil, ve
	}

	hashes := map[crypto.Hash]bool{crypto.SHA256: true}
	for _, c := range claims {
		hashes[c.sum.Hash] = true
	}
	digests, sigResults, kept, err := hashImage(img, hashes, sigs, kr, opts)
	if err != nil {
		return nil, err
	}

	res := &Result{ISO: img.Name, Kept: kept}
	copy(res.SHA256[:], digests[crypto.SHA256])
	for i, d := range sigs {
		r := sigResults[i]
		switch {
		case r.err == nil:
			res.Evidence = append(res.Evidence, Evidence{File: d.file, Key: r.key, SignedAt: d.signedAt})
		case isBadSignature(r.err):
			ve.Reason = ErrTampered
			ve.Findings = append(ve.Findings, Finding{d.file, fmt.Sprintf("the image does not match this signature by a trusted key (%v)", r.err)})
		default:
			ve.Findings = append(ve.Findings, Finding{d.file, fmt.Sprintf("signature not accepted: %v", r.err)})
		}
	}
	for _, c := range claims {
		got := digests[c.sum.Hash]
		if bytes.Equal(got, c.sum.Sum) {
			res.Evidence = append(res.Evidence, Evidence{File: c.file, Key: c.key, SignedAt: c.signedAt})
			continue
		}
		ve.Reason = ErrTampered
		ve.Findings = append(ve.Findings, Finding{c.file, fmt.Sprintf("signed by %s, lists %s %s for it (line %d); the image's %s is %s",
			c.key, c.sum.Algo, hex.EncodeToString(c.sum.Sum), c.sum.Line, c.sum.Algo, hex.EncodeToString(got))})
	}
	if ve.Reason == ErrTampered {
		return nil, ve
	}
	if len(res.Evidence) == 0 {
		ve.Reason = ErrUntrustedSigner
		return nil, ve
	}
	res.Notes = append(notes, ve.Findings...)
	return res, nil
}

// readSidecar reads a small file beside the image with a cap.
func readSidecar(dir fs.FS, name string, limit int64) ([]byte, error) {
	f, err := dir.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file")
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%d bytes, more than %d", st.Size(), limit)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("grew past %d bytes", limit)
	}
	return b, nil
}

// checksumFiles lists the checksum files in dir that may list iso.
func checksumFiles(dir fs.FS, iso string) []string {
	ents, err := fs.ReadDir(dir, ".")
	if err != nil {
		return nil
	}
	var out []string
	for i, e := range ents {
		if i >= MaxSidecarScan {
			break
		}
		n := e.Name()
		switch {
		case n == iso+".DIGESTS":
		case strings.HasSuffix(n, "CHECKSUM"):
		default:
			known := false
			for _, c := range checksumNames {
				if n == c {
					known = true
				}
			}
			if !known {
				continue
			}
		}
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// sidecarVerdict says what a checksum file's findings mean.
type sidecarVerdict int

const (
	sidecarNote      sidecarVerdict = iota // nothing decisive (unsigned, does not list the image)
	sidecarUntrusted                       // signed by a key that is not trusted
	sidecarTampered                        // a trusted key's signature over it does not verify
)

// readChecksumClaims reads one checksum file and its signature, and returns
// the signed digests it lists for iso, and what its findings mean.
func readChecksumClaims(dir fs.FS, name, iso string, kr *Keyring) (claims []claim, verdict sidecarVerdict, findings []Finding) {
	raw, err := readSidecar(dir, name, MaxChecksumFileSize+MaxSignatureSize)
	if err != nil {
		return nil, sidecarNote, []Finding{{name, err.Error()}}
	}
	var text, signed []byte
	var d *detached
	sigFile := name
	if i := bytes.Index(raw, []byte("-----BEGIN PGP SIGNED MESSAGE-----")); i >= 0 && len(bytes.TrimSpace(raw[:i])) == 0 {
		block, _ := clearsign.Decode(raw)
		if block == nil {
			return nil, sidecarNote, []Finding{{name, "unreadable clearsigned file"}}
		}
		sig, err := io.ReadAll(io.LimitReader(block.ArmoredSignature.Body, MaxSignatureSize+1))
		if err != nil {
			return nil, sidecarNote, []Finding{{name, "unreadable signature: " + err.Error()}}
		}
		if d, err = readDetached(name, sig, kr); err != nil {
			return nil, sidecarNote, []Finding{{name, "unreadable signature: " + err.Error()}}
		}
		text, signed = block.Plaintext, block.Bytes
	} else {
		for _, suf := range signatureSuffixes {
			s, err := readSidecar(dir, name+suf, MaxSignatureSize)
			if err != nil {
				continue
			}
			sigFile = name + suf
			if d, err = readDetached(sigFile, s, kr); err != nil {
				return nil, sidecarNote, []Finding{{sigFile, "unreadable signature: " + err.Error()}}
			}
			break
		}
		if d == nil {
			return nil, sidecarNote, []Finding{{name, "no signature (.sign/.gpg/.asc/.sig), so it proves nothing and was not used"}}
		}
		text, signed = raw, raw
	}
	label := name
	if sigFile != name {
		label = name + " (" + sigFile + ")"
	}
	if !d.trusted {
		return nil, sidecarUntrusted, []Finding{{label, "signed by key " + keyIDs(d.issuers) + ", which is not trusted"}}
	}
	key, err := d.check(kr, bytes.NewReader(signed))
	if err != nil {
		if isBadSignature(err) {
			return nil, sidecarTampered, []Finding{{label, fmt.Sprintf("changed after it was signed: the signature by a trusted key does not match (%v)", err)}}
		}
		return nil, sidecarNote, []Finding{{label, fmt.Sprintf("signature not accepted: %v", err)}}
	}
	cf, err := ParseChecksums(name, text)
	if err != nil {
		return nil, sidecarNote, []Finding{{label, err.Error()}}
	}
	sums, listed := cf.Lookup(iso)
	if !listed {
		return nil, sidecarNote, []Finding{{label, "does not list " + iso}}
	}
	if len(sums) == 0 {
		return nil, sidecarNote, []Finding{{label, "lists " + iso + " only with MD5/SHA-1, which glint does not accept"}}
	}
	for _, s := range sums {
		claims = append(claims, claim{file: label, key: key, signedAt: d.signedAt, sum: s})
	}
	return claims, sidecarNote, nil
}

type sigResult struct {
	key *TrustedKey
	err error
}

// hashImage reads the image once: every hash in hashes, every detached
// signature in sigs (each verified by go-crypto on its own stream), and
// the kept ranges.
func hashImage(img Image, hashes map[crypto.Hash]bool, sigs []*detached, kr *Keyring, opts Options) (map[crypto.Hash][]byte, []sigResult, [][]byte, error) {
	keep, err := newKeeper(opts.Keep, opts.MaxKeep, img.Size)
	if err != nil {
		return nil, nil, nil, err
	}
	hs := map[crypto.Hash]interface {
		io.Writer
		Sum([]byte) []byte
	}{}
	var writers []io.Writer
	for h := range hashes {
		if !h.Available() {
			return nil, nil, nil, fmt.Errorf("hash %v not available", h)
		}
		x := h.New()
		hs[h] = x
		writers = append(writers, x)
	}
	results := make([]sigResult, len(sigs))
	pipes := make([]*io.PipeWriter, len(sigs))
	var wg sync.WaitGroup
	for i, d := range sigs {
		pr, pw := io.Pipe()
		pipes[i] = pw
		writers = append(writers, pw)
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := d.check(kr, pr)
			results[i] = sigResult{k, err}
			// go-crypto stops reading on some errors; keep draining so
			// the writer never blocks.
			io.Copy(io.Discard, pr)
		}()
	}
	closeAll := func(err error) {
		for _, pw := range pipes {
			pw.CloseWithError(err)
		}
		wg.Wait()
	}
	mw := io.MultiWriter(writers...)
	buf := make([]byte, 1<<20)
	for off := int64(0); off < img.Size; {
		n := int(min(int64(len(buf)), img.Size-off))
		got, err := img.R.ReadAt(buf[:n], off)
		if got < n {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			closeAll(err)
			return nil, nil, nil, fmt.Errorf("read %s at byte %d: %w", img.Name, off, err)
		}
		keep.take(off, buf[:n])
		if _, err := mw.Write(buf[:n]); err != nil {
			closeAll(err)
			return nil, nil, nil, fmt.Errorf("hash %s: %w", img.Name, err)
		}
		off += int64(n)
		if opts.Progress != nil {
			opts.Progress(off, img.Size)
		}
	}
	closeAll(nil)
	out := map[crypto.Hash][]byte{}
	for h, x := range hs {
		out[h] = x.Sum(nil)
	}
	return out, results, keep.bufs, nil
}

// keeper copies the wanted ranges out of the stream as it passes.
type keeper struct {
	ranges []Range
	bufs   [][]byte
}

func newKeeper(ranges []Range, maxKeep, size int64) (*keeper, error) {
	if maxKeep <= 0 {
		maxKeep = 1 << 30
	}
	var total int64
	k := &keeper{ranges: ranges, bufs: make([][]byte, len(ranges))}
	for i, r := range ranges {
		if r.Offset < 0 || r.Length < 0 || r.Offset > size || r.Length > size-r.Offset {
			return nil, fmt.Errorf("range %d (%d bytes at %d) is outside the image of %d bytes", i, r.Length, r.Offset, size)
		}
		if total += r.Length; total > maxKeep {
			return nil, fmt.Errorf("ranges to keep add up to more than %d bytes", maxKeep)
		}
	}
	for i, r := range ranges {
		k.bufs[i] = make([]byte, r.Length)
	}
	return k, nil
}

func (k *keeper) take(off int64, chunk []byte) {
	end := off + int64(len(chunk))
	for i, r := range k.ranges {
		lo, hi := max(off, r.Offset), min(end, r.Offset+r.Length)
		if lo < hi {
			copy(k.bufs[i][lo-r.Offset:hi-r.Offset], chunk[lo-off:hi-off])
		}
	}
}
