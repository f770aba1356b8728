package boot

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/glint-boot/glint/internal/bootcfg"
	"github.com/glint-boot/glint/internal/manifest"
	"github.com/glint-boot/glint/internal/rom"
	"github.com/glint-boot/glint/internal/rootfs"
	"github.com/glint-boot/glint/internal/tpm"
)

// keyring returns the owner's public keys from the firmware image.
func (f *Flow) keyring() (openpgp.EntityList, error) {
	raw, ok := f.OwnerFiles[rom.OwnerKeyFile]
	if !ok || len(raw) == 0 {
		return nil, errors.New("no owner public key in the firmware image (glint/owner.asc): this machine has no owner yet")
	}
	return manifest.ReadKeyring(raw)
}

// VerifyBoot checks /boot against the owner-signed manifest and the TPM
// rollback counter, and reports every finding by name.
func (f *Flow) VerifyBoot() {
	f.verified = false
	f.manifest = nil
	f.kept = nil
	if f.BootDir == "" {
		f.problem("no /boot found: no disk with a glint manifest or boot configuration")
		return
	}
	kr, err := f.keyring()
	if err != nil {
		f.problem("%v", err)
		return
	}
	var counter manifest.CounterReader
	if f.tpm != nil {
		counter = f.tpm
	}
	// Keep the default entry's files in memory as they are hashed: what
	// gets kexec'd is then exactly what was verified, read and hashed once.
	keep := map[string]bool{rootfs.ListName: f.Config.Boot.RootfsCheck}
	if f.defEntry >= 0 && f.defEntry < len(f.entries) {
		for _, p := range f.entries[f.defEntry].Files() {
			keep[strings.TrimPrefix(path.Clean("/"+p), "/")] = true
		}
	}
	res, err := manifest.VerifyWith(f.BootDir, kr, counter, manifest.VerifyOptions{
		Build: manifest.BuildOptions{Keep: func(rel string) bool { return keep[rel] }, MaxKeep: 256 << 20},
	})
	var te *manifest.TamperError
	switch {
	case err == nil:
	case errors.As(err, &te):
		f.Con.Banner(red, "/boot WAS MODIFIED since you signed it")
		f.reportTamper(te)
		return
	case errors.Is(err, tpm.ErrNotDefined):
		f.problem("%v", err) // what a missing counter means, in manifest's words (as glint verify says it)
		return
	case errors.Is(err, manifest.ErrNoManifest):
		f.problem("/boot has no signed manifest: it was never signed, or the manifest was deleted")
		return
	default:
		f.problem("/boot could not be verified: %v", err)
		return
	}
	f.manifest = res.Manifest
	f.kept = res.Kept
	// The boot entries come from the verified bytes of the configuration,
	// not from what was parsed off the disk before verification.
	d, err := bootcfg.DiscoverFS(manifest.FS(res.Manifest, f.readVerified))
	if err != nil {
		f.problem("boot configuration in the signed /boot: %v", err)
		return
	}
	f.entries, f.defEntry = d.Entries, d.Default
	if f.defEntry < 0 && len(d.Entries) > 0 {
		f.defEntry = 0
	}
	f.verified = true
	who := ""
	if res.Signer != nil {
		for name := range res.Signer.Identities {
			who = name
			break
		}
	}
	msg := fmt.Sprintf("/boot: verified (%d files, counter %d, signed by %s)", len(res.Manifest.Entries), res.Manifest.Counter, who)
	if !res.CounterChecked {
		msg += " WITHOUT rollback check (no TPM)"
	}
	f.Con.Printf("%s\n", msg)
}

// reportTamper shows every finding, as glint verify does
// (manifest.TamperReport), each as a TAMPER line the menu keeps.
func (f *Flow) reportTamper(te *manifest.TamperError) {
	note, _ := manifest.ReadExpectedNote(f.BootDir)
	for _, l := range manifest.TamperReport(te, note) {
		f.problem("%s", l)
	}
}

// readVerified reads a /boot file into memory and checks it against the
// verified manifest, so what gets kexec'd is exactly what was signed even if
// the disk changes after verification. Symlinks (Debian's /boot/vmlinuz) are
// followed through the manifest's own link entries, never through the disk.
func (f *Flow) readVerified(rel string) ([]byte, error) {
	rel = strings.TrimPrefix(path.Clean("/"+rel), "/")
	if f.manifest == nil {
		// forced boot: the owner accepted unverified content
		return os.ReadFile(filepath.Join(f.BootDir, filepath.FromSlash(rel)))
	}
	entries := map[string]manifest.Entry{}
	for _, e := range f.manifest.Entries {
		entries[e.Path] = e
	}
	for hops := 0; ; hops++ {
		e, ok := entries[rel]
		if !ok {
			return nil, fmt.Errorf("%q is not in the signed manifest", rel)
		}
		if e.Kind == manifest.KindLink && hops < 8 {
			target := e.Target
			if !strings.HasPrefix(target, "/") {
				target = path.Join(path.Dir(rel), target)
			}
			rel = strings.TrimPrefix(path.Clean("/"+target), "/")
			continue
		}
		if e.Kind != manifest.KindFile {
			return nil, fmt.Errorf("%q is not a regular file in the signed manifest", rel)
		}
		if b, ok := f.kept[rel]; ok && int64(len(b)) == e.Size {
			return b, nil // hashed and matched during VerifyBoot
		}
		data, err := readNoFollow(filepath.Join(f.BootDir, filepath.FromSlash(rel)), e.Size)
		if err != nil {
			return nil, err
		}
		if sha256.Sum256(data) != e.SHA256 {
			return nil, fmt.Errorf("%q changed after /boot was verified", rel)
		}
		return data, nil
	}
}

// readNoFollow reads exactly the size the manifest promises (and refuses a
// symlink in the last component), so a file grown after verification cannot
// make glint read gigabytes.
func readNoFollow(p string, size int64) ([]byte, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() != size {
		return nil, fmt.Errorf("%s changed after /boot was verified", p)
	}
	fh, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	buf := make([]byte, size)
	if _, err := io.ReadFull(fh, buf); err != nil {
		return nil, err
	}
	return buf, nil
}
