package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/glint-boot/glint/internal/manifest"
	"github.com/glint-boot/glint/internal/safefile"
	"github.com/glint-boot/glint/internal/tpm"
)

func init() {
	register(command{name: "sign", summary: "hash /boot, bump the TPM rollback counter, write the signed manifest",
		usage: "[--gpg-home DIR] [--key KEYID] [--secret-key FILE.asc] [--card [--reader SPEC]] [--default ID] [BOOTDIR]", run: runSign})
	register(command{name: "verify", summary: "check /boot against its signed manifest and the TPM counter",
		usage: "[--pubkey FILE.asc] [BOOTDIR]", run: runVerify})
	register(command{name: "manifest hash", summary: "hash /boot and print the (unsigned) manifest; timing on stderr",
		usage: "[--workers N] [BOOTDIR]", run: runManifestHash})
	register(command{name: "manifest diff", summary: "list what differs from the stored manifest WITHOUT checking its signature (a hint)",
		usage: "[BOOTDIR]", run: runManifestDiff})
	register(command{name: "manifest expect", summary: "record an expected change in the unsigned note the boot menu shows (OS hooks)",
		usage: "--source NAME --what VERSION [BOOTDIR]", run: runManifestExpect})
	register(command{name: "manifest note", summary: "show the expected-update note left by OS hooks",
		usage: "[BOOTDIR]", run: runManifestNote})
	register(command{name: "manifest heads", summary: "verify a Heads-signed /boot (kexec.sig, kexec_hashes.txt, kexec_tree.txt)",
		usage: "[--pubkey FILE.asc] [BOOTDIR]", run: runManifestHeads})
}

// manifestBootArg is the BOOTDIR argument, defaulting to --boot.
func manifestBootArg(e *env, args []string) (string, error) {
	switch len(args) {
	case 0:
		return e.bootDir, nil
	case 1:
		return args[0], nil
	}
	return "", usageErrorf("too many arguments: %q", args)
}

func loadOwnerKeys(path string) (openpgp.EntityList, error) {
	if path == "" {
		path = os.Getenv("GLINT_PUBKEY")
	}
	if path == "" {
		return nil, usageErrorf("no owner public key: give --pubkey FILE.asc (or GLINT_PUBKEY)")
	}
	b, err := safefile.ReadCapped(path, manifest.MaxKeyringSize)
	if err != nil {
		return nil, fmt.Errorf("owner public key: %w", err)
	}
	el, err := manifest.ReadKeyring(b)
	if err != nil {
		return nil, fmt.Errorf("owner public key %s: %w", path, err)
	}
	return el, nil
}

func openManifestTPM(e *env) (tpm.TPM, error) {
	t, err := tpm.Open(e.tpmSpec)
	if err != nil {
		return nil, fmt.Errorf("open TPM %s (the rollback counter lives there; --tpm or GLINT_TPM chooses another): %w", e.tpmSpec, err)
	}
	return t, nil
}

func runSign(e *env, args []string) error {
	fs := commandFlags(e, "sign")
	gpgHome := fs.String("gpg-home", os.Getenv("GNUPGHOME"), "gpg home directory (default $GNUPGHOME or ~/.gnupg)")
	keyID := fs.String("key", "", "gpg key to sign with (default: gpg's default key)")
	secretKey := fs.String("secret-key", "", "sign in Go with this exported secret key instead of gpg (initramfs, no gpg)")
	passFile := fs.String("passphrase-file", "", "read the key passphrase or card PIN from this file (else gpg asks through pinentry)")
	def := fs.String("default", "", "default boot entry id to record (default: keep the current one)")
	index := fs.String("counter-index", "", fmt.Sprintf("TPM NV index of the rollback counter (default: the current manifest's, or 0x%08x)", manifest.DefaultCounterIndex))
	fromHeads := fs.Bool("heads", false, "migrate from Heads: verify the Heads signature on /boot first (needs --pubkey), then sign in glint's format")
	pubkey := fs.String("pubkey", "", "owner public key (with --heads; otherwise it checks the last manifest shown before signing, and with --card it refuses a card that does not hold this key; default $GLINT_PUBKEY)")
	yes := fs.Bool("yes", false, "sign without asking (the list of what is signed is still printed): for hooks")
	useCard := fs.Bool("card", false, "sign with the OpenPGP card directly (Nitrokey, YubiKey, Librem Key; no gpg): asks the user PIN")
	cardReader := fs.String("reader", "", "with --card: the card reader (see glint card list)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	bootDir, err := manifestBootArg(e, fs.Args())
	if err != nil {
		return err
	}
	var pass []byte
	if *passFile != "" {
		if pass, err = os.ReadFile(*passFile); err != nil {
			return fmt.Errorf("passphrase file: %w", err)
		}
		pass = bytes.TrimRight(pass, "\r\n") // no string copy of the passphrase
	}
	var signer manifest.Signer
	if *useCard {
		s, done, err := cardSigner(e, cardFlags{reader: cardReader, pinFile: passFile, adminPINFile: new(string)}, *pubkey)
		if err != nil {
			return err
		}
		defer done()
		signer = s
	} else if *secretKey != "" {
		b, err := os.ReadFile(*secretKey)
		if err != nil {
			return fmt.Errorf("secret key: %w", err)
		}
		if signer, err = manifest.NewKeySigner(b, pass); err != nil {
			return err
		}
	} else {
		signer = &manifest.GPG{Home: *gpgHome, KeyID: *keyID, Passphrase: pass}
	}
	var opts manifest.SignOptions
	opts.Default = *def
	if *index != "" {
		v, err := strconv.ParseUint(strings.TrimPrefix(*index, "0x"), 16, 32)
		if err != nil {
			return usageErrorf("--counter-index %q: want a hex NV index like 0x%08x", *index, manifest.DefaultCounterIndex)
		}
		opts.CounterIndex = uint32(v)
	}
	t, err := openManifestTPM(e)
	if err != nil {
		return err
	}
	defer t.Close()
	if *fromHeads {
		keyring, err := loadOwnerKeys(*pubkey)
		if err != nil {
			return err
		}
		// Heads' rollback file hashes what its tpmr prints for a TPM 2.0
		// counter; its TPM 1.2 output is another text glint does not
		// reproduce, so there the counter is not checked (and said so).
		var heads manifest.CounterReader = t
		if t.Version() != tpm.Version20 {
			heads = nil
		}
		h, err := manifest.ReadHeads(bootDir, keyring, heads)
		if err != nil {
			return &exitError{code: 1, err: fmt.Errorf("the Heads-signed /boot does not verify, so it is not migrated: %w", err)}
		}
		fmt.Fprintf(e.stdout, "Heads signature by %s verified; %d signed files, counter checked: %v\n", pgpKeyName(h.Signer), len(h.SignedFiles), h.CounterChecked)
	}
	// Nothing is signed blind: what will be signed, next to the last
	// manifest on /boot, then the owner's yes.
	var keyring openpgp.EntityList
	if *pubkey != "" || os.Getenv("GLINT_PUBKEY") != "" {
		if keyring, err = loadOwnerKeys(*pubkey); err != nil {
			return err
		}
	}
	plan, err := manifest.PlanSign(bootDir, keyring, manifest.BuildOptions{})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "--- what will be signed ---\n%s", plan.Summary(0))
	if !*yes {
		fmt.Fprintf(e.stdout, "Sign /boot as listed above? [y/N] ")
		answer, _ := bufio.NewReader(e.stdin).ReadString('\n')
		if strings.TrimSpace(strings.ToLower(answer)) != "y" {
			return &exitError{code: 1, err: errors.New("not signed: not confirmed (answer y, or pass --yes to sign without asking)")}
		}
	}
	m, err := manifest.SignPlanned(bootDir, plan, signer, t, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "signed %s with %s: %d entries, rollback counter 0x%08x = %d\n", bootDir, signer, len(m.Entries), m.CounterIndex, m.Counter)
	return nil
}

func runVerify(e *env, args []string) error {
	fs := commandFlags(e, "verify")
	pubkey := fs.String("pubkey", "", "owner public key(s), armored or binary (default $GLINT_PUBKEY)")
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
	t, err := openManifestTPM(e)
	if err != nil {
		return err
	}
	defer t.Close()
	res, err := manifest.Verify(bootDir, keyring, t)
	var te *manifest.TamperError
	if errors.As(err, &te) {
		printTamperReport(e.stdout, bootDir, te)
		return &exitError{code: 1, err: errors.New("/boot did not verify")}
	}
	if errors.Is(err, manifest.ErrNoManifest) {
		return &exitError{code: 1, err: err}
	}
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	m := res.Manifest
	fmt.Fprintf(e.stdout, "OK: %s matches its manifest (%d entries), signed by %s on %s; rollback counter 0x%08x = %d matches the TPM\n",
		bootDir, len(m.Entries), pgpKeyName(res.Signer), res.SignedAt.UTC().Format(time.RFC3339), m.CounterIndex, m.Counter)
	return nil
}

func pgpKeyName(ent *openpgp.Entity) string {
	if ent == nil {
		return "?"
	}
	name := ""
	if id := ent.PrimaryIdentity(); id != nil {
		name = id.Name + " "
	}
	return fmt.Sprintf("%s(%X)", name, ent.PrimaryKey.Fingerprint)
}

// printTamperReport lists everything wrong, one line each, in the words
// the boot menu uses (manifest.TamperReport).
func printTamperReport(w io.Writer, bootDir string, te *manifest.TamperError) {
	fmt.Fprintln(w, "FAILED: /boot does not match its signed manifest")
	note, _ := manifest.ReadExpectedNote(bootDir)
	for _, l := range manifest.TamperReport(te, note) {
		fmt.Fprintf(w, "  %s\n", l)
	}
	if len(te.Changed)+len(te.Added)+len(te.Removed) > 0 || te.Rollback != nil {
		fmt.Fprintln(w, "If you made these changes (e.g. a kernel update), check them and sign /boot again with your key (glint sign).")
	}
}

func runManifestHash(e *env, args []string) error {
	fs := commandFlags(e, "manifest hash")
	workers := fs.Int("workers", 0, "files hashed in parallel (default: all cores)")
	quiet := fs.Bool("q", false, "print only the timing, not the manifest")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	bootDir, err := manifestBootArg(e, fs.Args())
	if err != nil {
		return err
	}
	start := time.Now()
	m, err := manifest.Build(bootDir, manifest.BuildOptions{Workers: *workers})
	if err != nil {
		return err
	}
	el := time.Since(start)
	var bytes int64
	files := 0
	for _, en := range m.Entries {
		if en.Kind == manifest.KindFile {
			bytes += en.Size
			files++
		}
	}
	if !*quiet {
		m.Created = start.UTC().Truncate(time.Second)
		e.stdout.Write(m.Marshal())
	}
	fmt.Fprintf(e.stderr, "hashed %d files, %d bytes in %v: %.0f MB/s\n", files, bytes, el.Round(time.Millisecond), float64(bytes)/el.Seconds()/1e6)
	return nil
}

func runManifestDiff(e *env, args []string) error {
	fs := commandFlags(e, "manifest diff")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	bootDir, err := manifestBootArg(e, fs.Args())
	if err != nil {
		return err
	}
	changed, added, removed, err := manifest.DiffStored(bootDir)
	if err != nil {
		return err
	}
	for _, c := range changed {
		fmt.Fprintf(e.stdout, "changed %q\n", c.Path)
	}
	for _, a := range added {
		fmt.Fprintf(e.stdout, "added %q\n", a.Path)
	}
	for _, r := range removed {
		fmt.Fprintf(e.stdout, "removed %q\n", r.Path)
	}
	if len(changed)+len(added)+len(removed) > 0 {
		return &exitError{code: 1, err: errors.New("/boot differs from the stored manifest (signature NOT checked)")}
	}
	return nil
}

func runManifestExpect(e *env, args []string) error {
	fs := commandFlags(e, "manifest expect")
	source := fs.String("source", "", "who saw the change (debian-kernel, kernel-install, apt, dnf, qubes ...)")
	what := fs.String("what", "", "package or kernel version")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	bootDir, err := manifestBootArg(e, fs.Args())
	if err != nil {
		return err
	}
	u, err := manifest.RecordExpected(bootDir, *source, *what, time.Now())
	if err != nil {
		return err
	}
	if u == nil {
		fmt.Fprintln(e.stdout, "/boot matches the stored manifest; nothing to record")
		return nil
	}
	fmt.Fprintf(e.stdout, "recorded %d changed paths in the expected-update note; sign /boot with your key (glint sign) at the next boot\n", len(u.Files))
	return nil
}

func runManifestNote(e *env, args []string) error {
	fs := commandFlags(e, "manifest note")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	bootDir, err := manifestBootArg(e, fs.Args())
	if err != nil {
		return err
	}
	n, err := manifest.ReadExpectedNote(bootDir)
	if err != nil {
		return err
	}
	if n == nil {
		fmt.Fprintln(e.stdout, "no expected-update note")
		return nil
	}
	fmt.Fprintln(e.stdout, "expected updates (UNSIGNED hints from OS hooks):")
	for _, u := range n.Updates {
		fmt.Fprintf(e.stdout, "  %s %s %s\n", u.Time.Format(time.RFC3339), manifest.QuoteText(u.Source), manifest.QuoteText(u.What))
		for _, f := range u.Files {
			fmt.Fprintf(e.stdout, "    %q\n", f)
		}
	}
	return nil
}

func runManifestHeads(e *env, args []string) error {
	fs := commandFlags(e, "manifest heads")
	pubkey := fs.String("pubkey", "", "owner public key(s)")
	noTPM := fs.Bool("no-tpm", false, "do not check Heads' TPM rollback counter (exit status is then 1 even if all else verifies)")
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
	if !*noTPM {
		t, err := openManifestTPM(e)
		if err != nil {
			return err
		}
		defer t.Close()
		if t.Version() == tpm.Version20 { // see runSign --heads
			counter = t
		}
	}
	h, err := manifest.ReadHeads(bootDir, keyring, counter)
	var te *manifest.TamperError
	if errors.As(err, &te) {
		printTamperReport(e.stdout, bootDir, te)
		return &exitError{code: 1, err: errors.New("the Heads-signed /boot did not verify")}
	}
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	fmt.Fprintf(e.stdout, "OK: Heads signature by %s on %s over %s\n", pgpKeyName(h.Signer), h.SignedAt.UTC().Format(time.RFC3339), strings.Join(h.SignedFiles, " "))
	if !h.CounterChecked {
		return &exitError{code: 1, err: errors.New("files verified but the TPM rollback counter was NOT checked")}
	}
	fmt.Fprintln(e.stdout, "To move to glint: glint sign --heads --pubkey FILE.asc", bootDir)
	return nil
}
