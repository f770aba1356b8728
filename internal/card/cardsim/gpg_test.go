package cardsim_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/glint-boot/glint/internal/card"
	"github.com/glint-boot/glint/internal/card/cardsim"
	"github.com/glint-boot/glint/internal/card/cardsim/pcscdtest"
	"github.com/glint-boot/glint/internal/card/pcsc"
)

// gpgEnv is a throw-away GNUPGHOME whose scdaemon reaches the test pcscd.
type gpgEnv struct {
	home string
	env  []string
}

func newGPG(t *testing.T, d *pcscdtest.PCSCD) *gpgEnv {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Skipf("gpg missing: %v", err)
	}
	if _, err := os.Stat("/usr/lib/gnupg/scdaemon"); err != nil {
		t.Skipf("scdaemon missing (bash scripts/install-deps.sh installs it): %v", err)
	}
	// A short path: gpg-agent's sockets live here when /run/user/UID is absent.
	home, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	// disable-ccid: scdaemon's own USB driver would look for real readers;
	// the card is behind pcscd.
	if err := os.WriteFile(filepath.Join(home, "scdaemon.conf"), []byte("disable-ccid\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g := &gpgEnv{home: home, env: append(d.Env(), "GNUPGHOME="+home)}
	t.Cleanup(func() {
		c := exec.Command("gpgconf", "--homedir", home, "--kill", "all")
		c.Env = g.env
		c.Run()
		os.RemoveAll(home)
	})
	return g
}

func (g *gpgEnv) run(t *testing.T, stdin []byte, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("gpg", append([]string{"--homedir", g.home, "--batch", "--no-tty"}, args...)...)
	cmd.Env = g.env
	cmd.Stdin = bytes.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// releaseCard stops gpg-agent and scdaemon, which keeps the card open in
// exclusive mode, so glint can connect (Heads kills them before its own
// tools run). The next gpg command starts them again.
func (g *gpgEnv) releaseCard(t *testing.T) {
	c := exec.Command("gpgconf", "--homedir", g.home, "--kill", "all")
	c.Env = g.env
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("gpgconf --kill scdaemon: %v %s", err, out)
	}
}

// cardEdit drives gpg --card-edit through its status protocol: every
// GET_LINE/GET_BOOL/GET_HIDDEN keyword takes the next answer from its
// queue; every PIN prompt gets pin().
func (g *gpgEnv) cardEditPIN(t *testing.T, answers map[string][]string, pin func() string) string {
	t.Helper()
	cmd := exec.Command("gpg", "--homedir", g.home, "--expert", "--no-tty", "--command-fd=0", "--status-fd=1", "--pinentry-mode=loopback", "--card-edit")
	cmd.Env = g.env
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var transcript strings.Builder
	sc := bufio.NewScanner(stdout)
	var failed string
	for sc.Scan() {
		line := sc.Text()
		transcript.WriteString(line + "\n")
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "[GNUPG:]" || (f[1] != "GET_LINE" && f[1] != "GET_BOOL" && f[1] != "GET_HIDDEN") {
			continue
		}
		kw := f[2]
		var ans string
		switch q := answers[kw]; {
		case kw == "passphrase.enter":
			ans = pin()
		case len(q) > 0:
			ans, answers[kw] = q[0], q[1:]
		case kw == "cardedit.prompt":
			ans = "quit"
		default:
			failed = "unexpected prompt " + kw
			ans = "quit"
		}
		fmt.Fprintln(stdin, ans)
	}
	stdin.Close()
	err := cmd.Wait()
	out := transcript.String() + stderr.String()
	if failed != "" || err != nil {
		t.Fatalf("gpg --card-edit: %s %v\n%s", failed, err, out)
	}
	return out
}

// keyAttrAnswers are gpg 2.2's key-attr answers for each of the three slots.
func keyAttrAnswers(alg card.Algorithm) map[string][]string {
	switch alg.String() {
	case "ed25519":
		return map[string][]string{"cardedit.genkeys.algo": {"2", "2", "2"}, "keygen.curve": {"1", "1", "1"}}
	case "nistp256": // --expert shows the NIST curves: (3) NIST P-256
		return map[string][]string{"cardedit.genkeys.algo": {"2", "2", "2"}, "keygen.curve": {"3", "3", "3"}}
	}
	size := fmt.Sprint(alg.RSABits)
	return map[string][]string{"cardedit.genkeys.algo": {"1", "1", "1"}, "cardedit.genkeys.size": {size, size, size}}
}

// TestGPGCrossCheck runs gpg's own card commands against the simulator
// (behind a real pcscd) in Heads' re-ownership order, then checks that glint
// and gpg agree on the result in both directions:
//
//  1. gpg --card-status reads the factory card (AID, manufacturer, PIN
//     counters);
//  2. gpg --card-edit: factory-reset, passwd, key-attr, generate: the keys
//     gpg makes on the card;
//  3. glint reads the card gpg set up: its OpenPGP key rebuilt from the
//     card has exactly gpg's fingerprint, and a manifest glint signs with
//     the card passes gpg --verify with gpg's own copy of the key;
//  4. gpg signs with the card (gpg --detach-sign), and glint verifies that
//     signature with owner.asc as exported by gpg.
func TestGPGCrossCheck(t *testing.T) {
	for _, alg := range card.Algorithms {
		t.Run(alg.String(), func(t *testing.T) {
			if testing.Short() && alg.RSABits == 4096 {
				t.Skip("RSA-4096: three keys take a while")
			}
			sim, err := cardsim.New(cardsim.Options{})
			if err != nil {
				t.Fatal(err)
			}
			d := pcscdtest.Start(t, sim)
			g := newGPG(t, d)
			out, err := g.run(t, nil, "--card-status")
			if err != nil {
				t.Fatalf("gpg --card-status: %v\n%s", err, out)
			}
			for _, want := range []string{"Version ..........: 3.4", "Manufacturer .....: test card", "Serial number ....: 00000042", "PIN retry counter : 3 0 3", "Signature key ....: [none]"} {
				if !strings.Contains(out, want) {
					t.Errorf("gpg --card-status lacks %q:\n%s", want, out)
				}
			}
			const pin = "12345678" // user and admin PIN alike after passwd, so every prompt takes it
			answers := keyAttrAnswers(alg)
			answers["cardedit.prompt"] = []string{"admin", "factory-reset", "passwd", "key-attr", "generate", "quit"}
			answers["cardedit.factory-reset.proceed"] = []string{"y"}
			answers["cardedit.factory-reset.really"] = []string{"yes"}
			answers["cardutil.change_pin.menu"] = []string{"1", "q"}
			answers["cardedit.genkeys.backup_enc"] = []string{"n"}
			answers["keygen.valid"] = []string{"0"}
			answers["keygen.name"] = []string{"Glint Owner"}
			answers["keygen.email"] = []string{"owner@example.org"}
			answers["keygen.comment"] = []string{""}
			start := time.Now()
			out = g.cardEditFactory(t, answers, pin)
			t.Logf("gpg --card-edit factory-reset, passwd, key-attr %s, generate: %v", alg, time.Since(start).Round(time.Millisecond))
			if !strings.Contains(out, "KEY_CREATED") {
				t.Fatalf("gpg made no key:\n%s", out)
			}
			out, _ = g.run(t, nil, "--card-status")
			if !strings.Contains(out, "Key attributes ...: "+alg.String()) {
				t.Fatalf("gpg set other key attributes:\n%s", out)
			}
			gpgFpr := fingerprintOf(t, g)

			// 3. glint reads what gpg made.
			g.releaseCard(t)
			c := openThroughPCSCD(t, d)
			k, err := c.Key()
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%X", k.Fingerprint()); got != gpgFpr {
				t.Fatalf("glint rebuilt fingerprint %s, gpg made %s", got, gpgFpr)
			}
			s, err := card.NewSigner(c, card.FixedPIN([]byte(pin)))
			if err != nil {
				t.Fatal(err)
			}
			manifest := []byte("glint manifest v1\ncounter 0x0180474c 1\nsha256 ab... vmlinuz\n")
			sig, err := s.Sign(manifest)
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			c.Close()
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "manifest"), manifest, 0o644)
			os.WriteFile(filepath.Join(dir, "manifest.asc"), sig, 0o644)
			if out, err := g.run(t, nil, "--verify", filepath.Join(dir, "manifest.asc"), filepath.Join(dir, "manifest")); err != nil || !strings.Contains(out, "Good signature") {
				t.Fatalf("gpg --verify of glint's card signature: %v\n%s", err, out)
			}

			// 4. gpg signs with the card; glint verifies with gpg's export.
			out, err = g.run(t, manifest, "--pinentry-mode", "loopback", "--passphrase", pin, "--armor", "--detach-sign", "--output", filepath.Join(dir, "gpg.asc"), "-")
			if err != nil {
				t.Fatalf("gpg --detach-sign with the card: %v\n%s", err, out)
			}
			pub, err := g.run(t, nil, "--armor", "--export", gpgFpr)
			if err != nil {
				t.Fatal(err)
			}
			el, err := openpgp.ReadArmoredKeyRing(strings.NewReader(pub))
			if err != nil {
				t.Fatal(err)
			}
			gsig, _ := os.ReadFile(filepath.Join(dir, "gpg.asc"))
			if _, err := openpgp.CheckArmoredDetachedSignature(el, bytes.NewReader(manifest), bytes.NewReader(gsig), nil); err != nil {
				t.Fatalf("gpg's card signature does not verify in glint: %v", err)
			}
		})
	}
}

// cardEditFactory runs the re-ownership script. passwd's first PIN prompt
// (the old user PIN) must get the factory 123456; every later one gets pin.
func (g *gpgEnv) cardEditFactory(t *testing.T, answers map[string][]string, pin string) string {
	// The factory-reset leaves PW1 = 123456: the passwd step is the first
	// PIN prompt after it, so answer it specially by temporarily asking for
	// the factory PIN once.
	first := true
	return g.cardEditPIN(t, answers, func() string {
		if first {
			first = false
			return string(card.DefaultPW1)
		}
		return pin
	})
}

func fingerprintOf(t *testing.T, g *gpgEnv) string {
	out, err := g.run(t, nil, "--with-colons", "--list-keys")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "fpr:") {
			return strings.Split(line, ":")[9]
		}
	}
	t.Fatalf("no fingerprint in:\n%s", out)
	return ""
}

func openThroughPCSCD(t *testing.T, d *pcscdtest.PCSCD) *card.Card {
	t.Helper()
	client, err := pcsc.Dial(d.Socket)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := client.Connect(d.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c, err := card.Open(tr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestGlintKeyInGPG is the other direction: glint generates the owner key on
// the card (through pcscd) and exports owner.asc; gpg imports it, links it
// to the card by fingerprint (gpg --card-status), signs with the card, and
// glint's go-crypto verification accepts gpg's signature.
func TestGlintKeyInGPG(t *testing.T) {
	for _, alg := range []card.Algorithm{card.RSA3072, card.Ed25519, card.NISTP256} {
		t.Run(alg.String(), func(t *testing.T) {
			sim, err := cardsim.New(cardsim.Options{})
			if err != nil {
				t.Fatal(err)
			}
			d := pcscdtest.Start(t, sim)
			c := openThroughPCSCD(t, d)
			k, pub, err := c.GenerateOwnerKey(card.GenerateOptions{Algorithm: alg, UserID: "Glint Owner <owner@example.org>", AdminPIN: card.DefaultPW3, Prompt: card.FixedPIN(card.DefaultPW1)})
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
			g := newGPG(t, d)
			if out, err := g.run(t, pub, "--import"); err != nil {
				t.Fatalf("gpg --import owner.asc: %v\n%s", err, out)
			}
			out, err := g.run(t, nil, "--card-status")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, "General key info..: pub  "+alg.String()) || !strings.Contains(strings.ReplaceAll(out, " ", ""), fmt.Sprintf("%X", k.Fingerprint())) {
				t.Fatalf("gpg does not link the card to glint's key %X:\n%s", k.Fingerprint(), out)
			}
			msg := []byte("signed by gpg with glint's card key\n")
			dir := t.TempDir()
			sigFile := filepath.Join(dir, "m.asc")
			if out, err := g.run(t, msg, "--pinentry-mode", "loopback", "--passphrase", string(card.DefaultPW1), "--armor", "--detach-sign", "--output", sigFile, "-"); err != nil {
				t.Fatalf("gpg --detach-sign: %v\n%s", err, out)
			}
			sig, _ := os.ReadFile(sigFile)
			el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(pub))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := openpgp.CheckArmoredDetachedSignature(el, bytes.NewReader(msg), bytes.NewReader(sig), nil); err != nil {
				t.Fatalf("glint does not accept gpg's signature with the card: %v", err)
			}
		})
	}
}
