package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/glint-boot/glint/internal/iso9660"
	"github.com/glint-boot/glint/internal/isoboot"
	"github.com/glint-boot/glint/internal/isoverify"
)

func init() {
	register(command{name: "iso ls", summary: "list a directory inside an ISO image (Rock Ridge/Joliet names)",
		usage: "[-R] IMAGE.iso [DIR]", run: runISOLs})
	register(command{name: "iso cat", summary: "print a file from inside an ISO image",
		usage: "IMAGE.iso PATH", run: runISOCat})
	register(command{name: "iso entries", summary: "the boot entries an ISO image offers (isolinux/grub inside it)",
		usage: "IMAGE.iso", run: runISOEntries})
	register(command{name: "iso verify", summary: "check an ISO image's signature (.sig/.asc, SHA256SUMS + .sign, CHECKSUM, DIGESTS) against trusted keys",
		usage: "[--keys FILE.asc] [--no-builtin] [--pubkey OWNER.asc] IMAGE.iso", run: runISOVerify})
	register(command{name: "iso keys", summary: "list the keys an ISO may be signed by (built-in distribution keys, or --keys)",
		usage: "[--keys FILE.asc] [--no-builtin]", run: runISOKeys})
}

func openISO(file string) (*iso9660.FS, io.Closer, error) {
	f, size, err := isoboot.OpenImage(file)
	if err != nil {
		return nil, nil, err
	}
	iso, err := iso9660.Open(f, size)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", file, err)
	}
	return iso, f, nil
}

func runISOLs(e *env, args []string) error {
	flags := commandFlags(e, "iso ls")
	recursive := flags.Bool("R", false, "list subdirectories too")
	if err := parseFlags(flags, args); err != nil {
		return err
	}
	if flags.NArg() < 1 || flags.NArg() > 2 {
		return usageErrorf("usage: glint iso ls [-R] IMAGE.iso [DIR]")
	}
	iso, c, err := openISO(flags.Arg(0))
	if err != nil {
		return err
	}
	defer c.Close()
	dir := "."
	if flags.NArg() == 2 {
		dir = path.Clean(flags.Arg(1))
	}
	fmt.Fprintf(e.stdout, "volume %q, %s names\n", iso.VolumeID, iso.Names)
	show := func(p string, d fs.DirEntry) {
		info, err := d.Info()
		if err != nil {
			return
		}
		extra := ""
		if info.Mode()&os.ModeSymlink != 0 {
			if t, err := iso.ReadLink(p); err == nil {
				extra = " -> " + t
			}
		}
		fmt.Fprintf(e.stdout, "%v %12d %s %q%s\n", info.Mode(), info.Size(), info.ModTime().UTC().Format(time.DateOnly), p, extra)
	}
	if !*recursive {
		ents, err := iso.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, d := range ents {
			show(path.Join(dir, d.Name()), d)
		}
		return nil
	}
	return walkISO(iso, dir, show)
}

func walkISO(iso *iso9660.FS, dir string, fn func(string, fs.DirEntry)) error {
	return fs.WalkDir(iso, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			fn(p, d)
		}
		return nil
	})
}

func runISOCat(e *env, args []string) error {
	fs := commandFlags(e, "iso cat")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return usageErrorf("usage: glint iso cat IMAGE.iso PATH")
	}
	iso, c, err := openISO(fs.Arg(0))
	if err != nil {
		return err
	}
	defer c.Close()
	f, err := iso.Open(path.Clean(fs.Arg(1)))
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(e.stdout, f)
	return err
}

func runISOEntries(e *env, args []string) error {
	fs := commandFlags(e, "iso entries")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErrorf("usage: glint iso entries IMAGE.iso")
	}
	f, size, err := isoboot.OpenImage(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	menu, err := isoboot.Prepare(f, size)
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	fmt.Fprintf(e.stdout, "volume %q, %s names, menu from %v\n", menu.VolumeID, menu.Names, menu.Configs)
	for i, en := range menu.Entries {
		mark := " "
		if i == menu.Default {
			mark = "*"
		}
		fmt.Fprintf(e.stdout, "%s %2d  %s\n       kind    %s\n       kernel  %s\n", mark, i+1, en.FullTitle(), en.Kind, en.Kernel)
		for _, in := range en.Initrds {
			fmt.Fprintf(e.stdout, "       initrd  %s\n", in)
		}
		for _, m := range en.Modules {
			fmt.Fprintf(e.stdout, "       module  %s %s\n", m.Path, m.Cmdline)
		}
		fmt.Fprintf(e.stdout, "       cmdline %s\n", en.Cmdline)
		if len(en.Missing) > 0 {
			fmt.Fprintf(e.stdout, "       MISSING %v\n", en.Missing)
		}
	}
	return nil
}

// isoKeyring builds the keys an ISO may be signed by: the owner's (--pubkey,
// optional), the built-in distribution keys unless --no-builtin, and those
// of --keys.
func isoKeyring(keysFile string, noBuiltin bool, pubkey string) (*isoverify.Keyring, error) {
	var dk []isoverify.TrustedKey
	if !noBuiltin {
		b, err := isoverify.DefaultDistributionKeys()
		if err != nil {
			return nil, err
		}
		dk = append(dk, b...)
	}
	if keysFile != "" {
		raw, err := os.ReadFile(keysFile)
		if err != nil {
			return nil, err
		}
		k, err := isoverify.ParseDistributionKeys(raw, keysFile)
		if err != nil {
			return nil, err
		}
		dk = append(dk, k...)
	}
	var kr *isoverify.Keyring
	if pubkey != "" {
		owner, err := loadOwnerKeys(pubkey)
		if err != nil {
			return nil, err
		}
		kr = isoverify.NewKeyring(owner, dk)
	} else {
		kr = isoverify.NewKeyring(nil, dk)
	}
	if len(kr.Keys()) == 0 {
		return nil, usageErrorf("no keys to check with: drop --no-builtin or give --keys or --pubkey")
	}
	return kr, nil
}

func runISOKeys(e *env, args []string) error {
	fs := commandFlags(e, "iso keys")
	keys := fs.String("keys", "", "distribution keys (armored, several blocks allowed) to trust as well")
	noBuiltin := fs.Bool("no-builtin", false, "do not trust the distribution keys built into glint")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	kr, err := isoKeyring(*keys, *noBuiltin, "")
	if err != nil {
		return err
	}
	for _, k := range kr.Keys() {
		fmt.Fprintf(e.stdout, "%-44s %s  %s\n", k.Label, k.Fingerprint(), k.Origin)
	}
	return nil
}

func runISOVerify(e *env, args []string) error {
	fs := commandFlags(e, "iso verify")
	keys := fs.String("keys", "", "distribution keys (armored) to trust as well as the built-in ones")
	noBuiltin := fs.Bool("no-builtin", false, "do not trust the distribution keys built into glint")
	pubkey := fs.String("pubkey", "", "owner public key(s): an ISO the owner signed verifies too")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErrorf("usage: glint iso verify [--keys FILE.asc] [--pubkey OWNER.asc] IMAGE.iso")
	}
	kr, err := isoKeyring(*keys, *noBuiltin, *pubkey)
	if err != nil {
		return err
	}
	file := fs.Arg(0)
	f, size, err := isoboot.OpenImage(file)
	if err != nil {
		return err
	}
	defer f.Close()
	start := time.Now()
	res, err := isoverify.Verify(isoverify.Image{Name: filepath.Base(file), R: f, Size: size}, os.DirFS(filepath.Dir(file)), kr, isoverify.Options{})
	var ve *isoverify.VerifyError
	if errors.As(err, &ve) {
		fmt.Fprintf(e.stdout, "FAILED: %v\n", err)
		return &exitError{code: 1, err: fmt.Errorf("%s did not verify", filepath.Base(file))}
	}
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	fmt.Fprintf(e.stdout, "OK: %s (%d bytes, sha256 %x) verified in %v\n", res.ISO, size, res.SHA256, time.Since(start).Round(time.Millisecond))
	for _, ev := range res.Evidence {
		fmt.Fprintf(e.stdout, "  %s\n", ev)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(e.stdout, "  note: %s\n", n)
	}
	return nil
}
