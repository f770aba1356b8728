package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/glint-boot/glint/internal/manifest"
	"github.com/glint-boot/glint/internal/rootfs"
)

func init() {
	register(command{name: "rootfs sign", summary: "hash the root file system's directories into /boot, then sign /boot (as glint sign)",
		usage: "[--root /] [--dirs \"bin boot lib sbin usr\"] [sign options] [BOOTDIR]", run: runRootfsSign})
	register(command{name: "rootfs check", summary: "verify /boot's signature, then check the root file system against its list",
		usage: "[--root /] [--pubkey OWNER.asc] [--fast] [--no-counter] [BOOTDIR]", run: runRootfsCheck})
	register(command{name: "rootfs hash", summary: "hash directories of a root file system and print the (unsigned) list; timing on stderr",
		usage: "[--root /] [--dirs ...] [--fast-from LIST] [--workers N] [-o FILE]", run: runRootfsHash})
}

func dirsFlag(s string) []string { return strings.Fields(s) }

func runRootfsHash(e *env, args []string) error {
	fs := commandFlags(e, "rootfs hash")
	root := fs.String("root", "/", "the root file system")
	dirs := fs.String("dirs", strings.Join(rootfs.DefaultDirs, " "), "directories to hash, relative to --root")
	fastFrom := fs.String("fast-from", "", "a previous list: skip files whose inode, size and times it records (the fast mode)")
	workers := fs.Int("workers", 0, "parallel hashing workers (default 2 x CPUs)")
	out := fs.String("o", "", "write the list here instead of stdout")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var prev *rootfs.List
	if *fastFrom != "" {
		b, err := os.ReadFile(*fastFrom)
		if err != nil {
			return err
		}
		if prev, err = rootfs.Parse(b); err != nil {
			return err
		}
	}
	start := time.Now()
	l, st, err := rootfs.Build(*root, dirsFlag(*dirs), prev, rootfs.Options{Workers: *workers, Fast: prev != nil})
	if err != nil {
		return err
	}
	d := time.Since(start)
	fmt.Fprintf(e.stderr, "rootfs hash: %d entries, %d files hashed (%d skipped), %d bytes in %v: %.0f files/s, %.1f MB/s\n",
		st.Entries, st.Hashed, st.Skipped, st.Bytes, d.Round(time.Millisecond), float64(st.Hashed+st.Skipped)/d.Seconds(), float64(st.Bytes)/1e6/d.Seconds())
	if *out != "" {
		return os.WriteFile(*out, l.Marshal(), 0o644)
	}
	_, err = e.stdout.Write(l.Marshal())
	return err
}

func runRootfsSign(e *env, args []string) error {
	fs := commandFlags(e, "rootfs sign")
	root := fs.String("root", "/", "the root file system")
	dirs := fs.String("dirs", strings.Join(rootfs.DefaultDirs, " "), "directories to hash, relative to --root (etc is a common addition)")
	gpgHome := fs.String("gpg-home", os.Getenv("GNUPGHOME"), "gpg home directory")
	keyID := fs.String("key", "", "gpg key to sign with")
	secretKey := fs.String("secret-key", "", "sign in Go with this exported secret key instead of gpg")
	passFile := fs.String("passphrase-file", "", "read the key passphrase or card PIN from this file")
	yes := fs.Bool("yes", false, "sign /boot without asking (what is signed is still printed)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	bootDir, err := manifestBootArg(e, fs.Args())
	if err != nil {
		return err
	}
	start := time.Now()
	l, st, err := rootfs.Build(*root, dirsFlag(*dirs), nil, rootfs.Options{})
	if err != nil {
		return err
	}
	if err := rootfs.Write(bootDir, l); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "hashed %d entries (%d files, %d bytes) of %s under %s in %v into %s/%s\n",
		st.Entries, st.Hashed, st.Bytes, strings.Join(l.Dirs, " "), *root, time.Since(start).Round(time.Millisecond), bootDir, rootfs.ListName)
	// The list is a file of /boot: signing /boot signs it, with the
	// rollback counter. Same options as glint sign.
	signArgs := []string{"--gpg-home", *gpgHome}
	if *yes {
		signArgs = append(signArgs, "--yes")
	}
	for flag, v := range map[string]string{"--key": *keyID, "--secret-key": *secretKey, "--passphrase-file": *passFile} {
		if v != "" {
			signArgs = append(signArgs, flag, v)
		}
	}
	return runSign(e, append(signArgs, bootDir))
}

func runRootfsCheck(e *env, args []string) error {
	fs := commandFlags(e, "rootfs check")
	root := fs.String("root", "/", "the root file system (mount it read-only)")
	pubkey := fs.String("pubkey", "", "owner public key(s) (default $GLINT_PUBKEY)")
	fast := fs.Bool("fast", false, "skip files whose inode, size and times are unchanged (weaker; see docs/rootfs.md)")
	noCounter := fs.Bool("no-counter", false, "do not read the TPM rollback counter (an older signed list would pass)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	bootDir, err := manifestBootArg(e, fs.Args())
	if err != nil {
		return err
	}
	keyring, err := loadOwnerKeys(*pubkey)
	if err != nil {
		return err
	}
	var counter manifest.CounterReader
	if !*noCounter {
		t, err := openManifestTPM(e)
		if err != nil {
			return err
		}
		defer t.Close()
		counter = t
	}
	// Verify /boot and keep the list's bytes as they were hashed: the list
	// checked is the one the owner signed.
	opts := manifest.VerifyOptions{Build: manifest.BuildOptions{Keep: func(rel string) bool { return rel == rootfs.ListName }}}
	res, err := manifest.VerifyWith(bootDir, keyring, counter, opts)
	var te *manifest.TamperError
	if errors.As(err, &te) {
		printTamperReport(e.stdout, bootDir, te)
		return &exitError{code: 1, err: errors.New("/boot did not verify, so its root file system list cannot be trusted")}
	}
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	raw, ok := res.Kept[rootfs.ListName]
	if !ok {
		return &exitError{code: 1, err: rootfs.ErrNoList}
	}
	l, err := rootfs.Parse(raw)
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("the owner-signed %s cannot be read: %w", rootfs.ListName, err)}
	}
	start := time.Now()
	st, err := rootfs.Check(*root, l, rootfs.Options{Fast: *fast})
	var rte *rootfs.TamperError
	if errors.As(err, &rte) {
		fmt.Fprintf(e.stdout, "FAILED: %s does not match the list signed on %s (%d changed, %d added, %d removed)\n",
			*root, res.SignedAt.UTC().Format(time.DateOnly), len(rte.Changed), len(rte.Added), len(rte.Removed))
		for _, c := range rte.Changed {
			fmt.Fprintf(e.stdout, "  changed %s\n", c)
		}
		for _, a := range rte.Added {
			fmt.Fprintf(e.stdout, "  added   %q\n", a.Path)
		}
		for _, r := range rte.Removed {
			fmt.Fprintf(e.stdout, "  removed %q\n", r.Path)
		}
		return &exitError{code: 1, err: errors.New("the root file system did not verify")}
	}
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	counterNote := "rollback counter checked"
	if !res.CounterChecked {
		counterNote = "rollback counter NOT checked"
	}
	mode := ""
	if *fast {
		mode = fmt.Sprintf(", fast mode: %d unchanged files not read", st.Skipped)
	}
	fmt.Fprintf(e.stdout, "OK: %s matches its list (%d entries of %s; %d files, %d bytes read in %v%s); list signed by %s, %s\n",
		*root, st.Entries, strings.Join(l.Dirs, " "), st.Hashed, st.Bytes, time.Since(start).Round(time.Millisecond), mode, pgpKeyName(res.Signer), counterNote)
	return nil
}
