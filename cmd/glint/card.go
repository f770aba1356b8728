//go:build !payload

package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/glint-boot/glint/internal/card"
	"github.com/glint-boot/glint/internal/card/readers"
	"github.com/glint-boot/glint/internal/safefile"
	"github.com/glint-boot/glint/internal/secret"
)

// The OpenPGP card verbs: the owner's signing key on a security key
// (Nitrokey, YubiKey, Librem Key, any OpenPGP card), reached through pcscd
// or directly over USB (internal/card/readers).
func init() {
	register(command{name: "card list", summary: "list smart card readers and USB security keys",
		usage: "", run: runCardList})
	register(command{name: "card status", summary: "show the OpenPGP card: serial, keys, PIN tries left",
		usage: "[--reader SPEC]", run: runCardStatus})
	register(command{name: "card generate", summary: "make the owner's signing key ON the card and write owner.asc",
		usage: "[--type rsa3072] --name NAME [--email ADDR] [--out owner.asc] [--reader SPEC]", run: runCardGenerate})
	register(command{name: "card export", summary: "write owner.asc (the public key, self-signed by the card)",
		usage: "--name NAME [--email ADDR] [--out owner.asc] [--reader SPEC]", run: runCardExport})
	register(command{name: "card sign", summary: "make a detached OpenPGP signature of FILE with the card",
		usage: "[--out FILE.asc] [--reader SPEC] FILE", run: runCardSign})
	register(command{name: "card passwd", summary: "change the card's user PIN (or --admin: the admin PIN)",
		usage: "[--admin] [--reader SPEC]", run: runCardPasswd})
	register(command{name: "card unblock", summary: "set a new user PIN with the admin PIN (after 3 wrong PINs)",
		usage: "[--reader SPEC]", run: runCardUnblock})
	register(command{name: "card factory-reset", summary: "ERASE the card's OpenPGP keys and PINs (back to 123456 / 12345678)",
		usage: "--yes [--reader SPEC]", run: runCardFactoryReset})
}

// cardFlags are the flags every card verb shares.
type cardFlags struct {
	reader, pinFile, adminPINFile *string
}

func addCardFlags(fs interface {
	String(name, value, usage string) *string
}) cardFlags {
	return cardFlags{
		reader:       fs.String("reader", "", "card reader: auto (default, or $GLINT_CARD), pcsc[:NAME], usb[:BUS/ADDR|:VID:PID]"),
		pinFile:      fs.String("pin-file", "", "read the user PIN from this file (tried once) instead of asking"),
		adminPINFile: fs.String("admin-pin-file", "", "read the admin PIN from this file instead of asking"),
	}
}

func openCard(e *env, f cardFlags) (*card.Card, error) {
	c, name, err := readers.OpenCard(*f.reader)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(e.stderr, "Using %s in %s\n", c.Label(), name)
	return c, nil
}

// pinPrompt asks on the terminal (echo off) or takes the PIN file.
func pinPrompt(e *env, file string) card.PINPrompt {
	if file != "" {
		return func(r card.PINRequest) ([]byte, error) {
			pin, err := readSecretFile(file)
			if err != nil {
				return nil, err
			}
			defer secret.Wipe(pin)
			return card.FixedPIN(pin)(r)
		}
	}
	return func(r card.PINRequest) ([]byte, error) {
		return readSecret(e, r.Prompt())
	}
}

// adminPIN returns the admin PIN from its file or the terminal, showing the
// tries left first (a wrong admin PIN burns one of three; at zero the card
// can only be factory-reset).
func adminPIN(e *env, c *card.Card, file string) ([]byte, error) {
	st, err := c.PINStatus()
	if err != nil {
		return nil, err
	}
	if st.PW3Tries == 0 {
		return nil, &card.BlockedError{PW: card.PW3}
	}
	if file != "" {
		return readSecretFile(file)
	}
	return readSecret(e, card.PINRequest{PW: card.PW3, Tries: st.PW3Tries, Card: c.Label()}.Prompt())
}

func readSecretFile(file string) ([]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return bytes.TrimRight(b, "\r\n"), nil
}

// readSecret prints prompt and reads one line from stdin without echo when
// stdin is a terminal. The line never becomes a Go string.
func readSecret(e *env, prompt string) ([]byte, error) {
	fmt.Fprint(e.stderr, prompt)
	if f, ok := e.stdin.(*os.File); ok {
		if tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
			old := *tio
			tio.Lflag &^= unix.ECHO
			unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, tio)
			defer func() {
				unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, &old)
				fmt.Fprintln(e.stderr)
			}()
		}
	}
	var line []byte
	var b [1]byte
	for {
		n, err := e.stdin.Read(b[:])
		if n == 1 {
			if b[0] == '\n' {
				break
			}
			if len(line) > 256 {
				secret.Wipe(line)
				return nil, errors.New("PIN longer than 256 characters")
			}
			line = append(line, b[0])
			continue
		}
		if err == io.EOF && len(line) > 0 {
			break
		}
		if err != nil {
			secret.Wipe(line)
			return nil, fmt.Errorf("no PIN given: %w", err)
		}
	}
	line = bytes.TrimRight(line, "\r")
	if len(line) == 0 {
		return nil, errors.New("no PIN given")
	}
	return line, nil
}

// parseCardFlags parses a verb that takes no arguments besides flags (a
// stray word, such as an unquoted second name, is an error, not ignored).
func parseCardFlags(fs *flag.FlagSet, args []string) error {
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageErrorf("unexpected argument %q (quote a name with spaces: --name \"Jane Doe\")", fs.Arg(0))
	}
	return nil
}

func runCardList(e *env, args []string) error {
	fs := commandFlags(e, "card list")
	if err := parseCardFlags(fs, args); err != nil {
		return err
	}
	infos, err := readers.List()
	if err != nil {
		return err
	}
	if len(infos) == 0 {
		fmt.Fprintln(e.stdout, "no smart card readers or USB security keys found")
		return nil
	}
	for _, i := range infos {
		card := "no card"
		if i.CardPresent {
			card = "card present"
		}
		fmt.Fprintf(e.stdout, "%s\t%s\t(--reader %q)\n", i.Description, card, i.Spec)
	}
	return nil
}

func runCardStatus(e *env, args []string) error {
	fs := commandFlags(e, "card status")
	f := addCardFlags(fs)
	if err := parseCardFlags(fs, args); err != nil {
		return err
	}
	c, err := openCard(e, f)
	if err != nil {
		return err
	}
	defer c.Close()
	st, err := c.Status()
	if err != nil {
		return err
	}
	w := e.stdout
	fmt.Fprintf(w, "Card:            %s, OpenPGP card application %d.%d\n", c.Label(), st.AID.Major, st.AID.Minor)
	fmt.Fprintf(w, "Application ID:  %X\n", st.AID.Raw)
	if st.Name != "" {
		fmt.Fprintf(w, "Cardholder:      %s\n", strings.ReplaceAll(st.Name, "<<", " "))
	}
	for _, s := range card.Slots {
		k := st.Keys[s]
		desc := "none"
		if k.Present() {
			desc = fmt.Sprintf("%s %X", k.Algorithm, k.Fingerprint)
			if !k.Created.IsZero() {
				desc += ", created " + k.Created.Format("2006-01-02 15:04:05 UTC")
			}
		} else {
			desc += " (type " + k.Algorithm.String() + ")"
		}
		fmt.Fprintf(w, "%-16s %s\n", map[card.Slot]string{card.SlotSign: "Signature key:", card.SlotDecrypt: "Encryption key:", card.SlotAuth: "Auth key:"}[s], desc)
	}
	p := st.PWStatus
	fmt.Fprintf(w, "PIN tries left:  user %d, reset code %d, admin %d\n", p.PW1Tries, p.RCTries, p.PW3Tries)
	if p.PW1ValidForSeveral {
		fmt.Fprintln(w, "Signature PIN:   asked once per session")
	} else {
		fmt.Fprintln(w, "Signature PIN:   asked for every signature")
	}
	fmt.Fprintf(w, "Signatures made: %d\n", st.SigCount)
	if p.PW1Tries == 0 {
		fmt.Fprintln(w, "\nThe USER PIN is BLOCKED: "+(&card.BlockedError{PW: card.PW1Sign}).Error())
	}
	if p.PW3Tries == 0 {
		fmt.Fprintln(w, "\nThe ADMIN PIN is BLOCKED: "+(&card.BlockedError{PW: card.PW3}).Error())
	}
	return nil
}

func userID(name, email string) (string, error) {
	if name == "" {
		return "", usageErrorf("--name is needed for the key's user ID (e.g. --name \"Jane Doe\" --email jane@example.org)")
	}
	if email != "" {
		return fmt.Sprintf("%s <%s>", name, email), nil
	}
	return name, nil
}

func writeOwnerKey(e *env, out string, pub []byte) error {
	if out == "-" {
		_, err := e.stdout.Write(pub)
		return err
	}
	if err := safefile.Write(out, pub, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %s: put it in the firmware image as the owner key (glint rom), and import it where you verify (gpg --import)\n", out)
	return nil
}

func runCardGenerate(e *env, args []string) error {
	fs := commandFlags(e, "card generate")
	f := addCardFlags(fs)
	typ := fs.String("type", "rsa3072", "key type: rsa2048, rsa3072 (Heads' default), rsa4096, nistp256, ed25519")
	name := fs.String("name", "", "the owner's name (the key's user ID)")
	email := fs.String("email", "", "the owner's e-mail address (optional)")
	out := fs.String("out", "owner.asc", "where to write the public key (- for stdout)")
	yes := fs.Bool("yes", false, "replace an existing signature key without asking")
	if err := parseCardFlags(fs, args); err != nil {
		return err
	}
	alg, err := card.ParseAlgorithmName(*typ)
	if err != nil {
		return usageErrorf("%v", err)
	}
	uid, err := userID(*name, *email)
	if err != nil {
		return err
	}
	c, err := openCard(e, f)
	if err != nil {
		return err
	}
	defer c.Close()
	if c.App().Keys[card.SlotSign].Present() && !*yes {
		return usageErrorf("the card already has a signature key (%X); it would be destroyed: add --yes to replace it", c.App().Keys[card.SlotSign].Fingerprint)
	}
	admin, err := adminPIN(e, c, *f.adminPINFile)
	if err != nil {
		return err
	}
	defer secret.Wipe(admin)
	if alg.RSABits >= 4096 {
		fmt.Fprintln(e.stderr, "Generating an RSA-4096 key takes from 20 seconds to several minutes on a security key; do not unplug it.")
	} else {
		fmt.Fprintf(e.stderr, "Generating a %s key on the card...\n", alg)
	}
	start := time.Now()
	k, pub, err := c.GenerateOwnerKey(card.GenerateOptions{Algorithm: alg, UserID: uid, AdminPIN: admin, Prompt: pinPrompt(e, *f.pinFile)})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "Made %s key %X on the card in %.1f s.\n", alg, k.Fingerprint(), time.Since(start).Seconds())
	return writeOwnerKey(e, *out, pub)
}

func runCardExport(e *env, args []string) error {
	fs := commandFlags(e, "card export")
	f := addCardFlags(fs)
	name := fs.String("name", "", "the owner's name (the key's user ID)")
	email := fs.String("email", "", "the owner's e-mail address (optional)")
	out := fs.String("out", "owner.asc", "where to write the public key (- for stdout)")
	if err := parseCardFlags(fs, args); err != nil {
		return err
	}
	uid, err := userID(*name, *email)
	if err != nil {
		return err
	}
	c, err := openCard(e, f)
	if err != nil {
		return err
	}
	defer c.Close()
	pub, err := c.Export(uid, pinPrompt(e, *f.pinFile))
	if err != nil {
		return err
	}
	return writeOwnerKey(e, *out, pub)
}

// cardSigner opens the card and returns a manifest signer on it (used by
// `glint card sign` and `glint sign --card`). With ownerKey (an owner.asc
// path), a card whose key is not in it is refused before any PIN is asked.
func cardSigner(e *env, f cardFlags, ownerKey string) (*card.Signer, func(), error) {
	c, err := openCard(e, f)
	if err != nil {
		return nil, nil, err
	}
	s, err := card.NewSigner(c, pinPrompt(e, *f.pinFile))
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	if ownerKey != "" {
		el, err := loadOwnerKeys(ownerKey)
		if err != nil {
			c.Close()
			return nil, nil, err
		}
		found := false
		for _, ent := range el {
			if bytes.Equal(ent.PrimaryKey.Fingerprint, s.Key().Fingerprint()) {
				found = true
			}
		}
		if !found {
			c.Close()
			return nil, nil, fmt.Errorf("the card's key %X is not the owner key in %s: not signing with it (another card?)", s.Key().Fingerprint(), ownerKey)
		}
	}
	return s, func() { s.Close(); c.Close() }, nil
}

func runCardSign(e *env, args []string) error {
	fs := commandFlags(e, "card sign")
	f := addCardFlags(fs)
	out := fs.String("out", "", "signature file (default FILE.asc; - for stdout)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErrorf("usage: glint card sign [--out FILE.asc] FILE")
	}
	msg, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	s, done, err := cardSigner(e, f, "")
	if err != nil {
		return err
	}
	defer done()
	sig, err := s.Sign(msg)
	if err != nil {
		return err
	}
	if *out == "" {
		*out = fs.Arg(0) + ".asc"
	}
	if *out == "-" {
		_, err = e.stdout.Write(sig)
		return err
	}
	if err := safefile.Write(*out, sig, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "signed %s with %s: %s\n", fs.Arg(0), s, *out)
	return nil
}

// newPIN asks for a new PIN twice (or reads it from a file).
func newPIN(e *env, file, what string) ([]byte, error) {
	if file != "" {
		return readSecretFile(file)
	}
	a, err := readSecret(e, "New "+what+": ")
	if err != nil {
		return nil, err
	}
	b, err := readSecret(e, "Repeat the new "+what+": ")
	if err != nil {
		secret.Wipe(a)
		return nil, err
	}
	defer secret.Wipe(b)
	if !bytes.Equal(a, b) {
		secret.Wipe(a)
		return nil, errors.New("the two new PINs differ; nothing was changed")
	}
	return a, nil
}

func runCardPasswd(e *env, args []string) error {
	fs := commandFlags(e, "card passwd")
	f := addCardFlags(fs)
	admin := fs.Bool("admin", false, "change the admin PIN (at least 8 characters) instead of the user PIN")
	newFile := fs.String("new-pin-file", "", "read the new PIN from this file")
	if err := parseCardFlags(fs, args); err != nil {
		return err
	}
	c, err := openCard(e, f)
	if err != nil {
		return err
	}
	defer c.Close()
	pw, oldFile := card.PW1Sign, *f.pinFile
	if *admin {
		pw, oldFile = card.PW3, *f.adminPINFile
	}
	st, err := c.PINStatus()
	if err != nil {
		return err
	}
	if st.Tries(pw) == 0 {
		return &card.BlockedError{PW: pw}
	}
	var old []byte
	if oldFile != "" {
		old, err = readSecretFile(oldFile)
	} else {
		old, err = readSecret(e, "Current "+card.PINRequest{PW: pw, Tries: st.Tries(pw), Card: c.Label()}.Prompt())
	}
	if err != nil {
		return err
	}
	defer secret.Wipe(old)
	nw, err := newPIN(e, *newFile, pw.String())
	if err != nil {
		return err
	}
	defer secret.Wipe(nw)
	if err := c.ChangePIN(pw, old, nw); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s changed\n", pw)
	return nil
}

func runCardUnblock(e *env, args []string) error {
	fs := commandFlags(e, "card unblock")
	f := addCardFlags(fs)
	newFile := fs.String("new-pin-file", "", "read the new user PIN from this file")
	if err := parseCardFlags(fs, args); err != nil {
		return err
	}
	c, err := openCard(e, f)
	if err != nil {
		return err
	}
	defer c.Close()
	admin, err := adminPIN(e, c, *f.adminPINFile)
	if err != nil {
		return err
	}
	defer secret.Wipe(admin)
	if err := c.Verify(card.PW3, admin); err != nil {
		return err
	}
	nw, err := newPIN(e, *newFile, "user PIN")
	if err != nil {
		return err
	}
	defer secret.Wipe(nw)
	if err := c.ResetPIN(nw); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "user PIN set; it has 3 tries again")
	return nil
}

func runCardFactoryReset(e *env, args []string) error {
	fs := commandFlags(e, "card factory-reset")
	f := addCardFlags(fs)
	yes := fs.Bool("yes", false, "confirm: every OpenPGP key on the card is destroyed")
	if err := parseCardFlags(fs, args); err != nil {
		return err
	}
	if !*yes {
		return usageErrorf("a factory reset destroys the card's OpenPGP keys for good: add --yes to confirm")
	}
	t, name, err := readers.Open(*f.reader)
	if err != nil {
		return err
	}
	c, err := card.Open(t)
	if errors.Is(err, card.ErrTerminated) {
		// An earlier reset was interrupted: finish it.
		c, err = card.Reactivate(t)
		if err != nil {
			t.Close()
			return err
		}
		defer c.Close()
		fmt.Fprintf(e.stdout, "finished an interrupted factory reset of %s in %s: PINs are 123456 / 12345678 again\n", c.Label(), name)
		return nil
	}
	if err != nil {
		t.Close()
		return err
	}
	defer c.Close()
	// Without the admin PIN the reset first blocks both PINs, as gpg does:
	// the reset works even when the admin PIN is lost.
	if err := c.FactoryReset(nil); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s in %s is factory-reset: no keys, user PIN 123456, admin PIN 12345678\n", c.Label(), name)
	return nil
}
