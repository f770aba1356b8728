package manifest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/glint-boot/glint/internal/safefile"
)

// File names inside /boot/glint.
const (
	ManifestName  = "manifest"
	SignatureName = "manifest.sig"
	// pendingDir is where a new pair is assembled; it means nothing until
	// renamed to commitDir.
	pendingDir = ".pending"
	// commitDir, when it holds both files, IS the current pair: renaming
	// the complete pendingDir to it is the single atomic step of a write.
	commitDir = ".commit"
)

// MaxSignatureSize bounds manifest.sig (an armored detached signature is a
// few hundred bytes; RSA-4096 under 1 KiB).
const MaxSignatureSize = 64 << 10

// ErrNoManifest means /boot has never been signed by glint.
var ErrNoManifest = errors.New("no glint manifest in /boot/glint (never signed): sign /boot with your key (glint sign)")

// writeHook lets tests stop Write between its steps, the way a power cut
// would. A real power cut cannot be produced on demand in a test.
var writeHook func(step string) error

func hook(step string) error {
	if writeHook != nil {
		return writeHook(step)
	}
	return nil
}

// Write stores m and its detached signature sig in bootDir/glint so that a
// power cut at any moment leaves either the old pair or the new pair, never
// the new manifest with the old signature.
//
// Two renames of two files cannot be one atomic step, and renaming a
// directory over a non-empty one (or RENAME_EXCHANGE) is not available on
// every file system /boot uses (vfat ESPs). So the pair is committed by one
// rename of a complete directory:
//
//  1. write both into glint/.pending/ (each fsynced), fsync the directory;
//  2. rename .pending -> .commit and fsync glint/: the commit point. From
//     here on readers take the pair from .commit (ReadPair);
//  3. copy both to glint/manifest and glint/manifest.sig (temp + fsync +
//     rename each); a cut in between is harmless because .commit still wins;
//  4. delete .commit's files, then .commit. Once either file is gone
//     .commit is incomplete and ignored, and step 3 has finished.
//
// A leftover .pending is an interrupted step 1 and is discarded; a complete
// leftover .commit is finished (steps 3-4) before a new write starts.
func Write(bootDir string, m *Manifest, sig []byte) error {
	text := m.Marshal()
	dir := filepath.Join(bootDir, StateDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if err := finishCommit(dir); err != nil {
		return err
	}
	pending := filepath.Join(dir, pendingDir)
	if err := os.RemoveAll(pending); err != nil {
		return fmt.Errorf("remove stale %s: %w", pending, err)
	}
	if err := os.Mkdir(pending, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", pending, err)
	}
	if err := writeSynced(filepath.Join(pending, ManifestName), text); err != nil {
		return err
	}
	if err := hook("pending-manifest"); err != nil {
		return err
	}
	if err := writeSynced(filepath.Join(pending, SignatureName), sig); err != nil {
		return err
	}
	if err := safefile.SyncDir(pending); err != nil {
		return err
	}
	if err := hook("pending-complete"); err != nil {
		return err
	}
	if err := os.Rename(pending, filepath.Join(dir, commitDir)); err != nil {
		return fmt.Errorf("commit new manifest: %w", err)
	}
	if err := safefile.SyncDir(dir); err != nil {
		return err
	}
	if err := hook("committed"); err != nil {
		return err
	}
	return finishCommit(dir)
}

// finishCommit performs steps 3 and 4 of Write for a complete .commit.
func finishCommit(dir string) error {
	commit := filepath.Join(dir, commitDir)
	text, sig, ok, err := readPairFrom(commit)
	if err != nil {
		return err
	}
	if ok {
		if err := safefile.Write(filepath.Join(dir, ManifestName), text, 0o644); err != nil {
			return err
		}
		if err := hook("copied-manifest"); err != nil {
			return err
		}
		if err := safefile.Write(filepath.Join(dir, SignatureName), sig, 0o644); err != nil {
			return err
		}
		if err := hook("copied-signature"); err != nil {
			return err
		}
		if err := os.Remove(filepath.Join(commit, ManifestName)); err != nil {
			return fmt.Errorf("finish commit: %w", err)
		}
	}
	if err := os.RemoveAll(commit); err != nil {
		return fmt.Errorf("finish commit: %w", err)
	}
	return safefile.SyncDir(dir)
}

func writeSynced(p string, data []byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("fsync %s: %w", p, err)
	}
	return f.Close()
}

// ReadPair returns the current manifest text and signature from bootDir
// without parsing them: from glint/.commit when that holds both files (an
// interrupted Write, see there), else from glint/. It never writes, so the
// boot flow can use it on a read-only /boot.
func ReadPair(bootDir string) (untrustedText, untrustedSig []byte, err error) {
	dir := filepath.Join(bootDir, StateDir)
	text, sig, ok, err := readPairFrom(filepath.Join(dir, commitDir))
	if err != nil {
		return nil, nil, err
	}
	if ok {
		return text, sig, nil
	}
	text, sig, ok, err = readPairFrom(dir)
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		return nil, nil, ErrNoManifest
	}
	return text, sig, nil
}

// readPairFrom reads both files from dir; ok is false if either is missing.
func readPairFrom(dir string) (text, sig []byte, ok bool, err error) {
	text, err = readCapped(filepath.Join(dir, ManifestName), MaxManifestSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, false, err
	}
	sig, err = readCapped(filepath.Join(dir, SignatureName), MaxSignatureSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, false, err
	}
	return text, sig, true, nil
}

// readCapped reads a regular file (not through a symlink) of at most limit
// bytes.
func readCapped(p string, limit int64) ([]byte, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", p)
	}
	return safefile.ReadCapped(p, limit)
}
