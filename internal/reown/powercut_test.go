package reown

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/glint-boot/glint/internal/card/cardsim/pcscdtest"
	"github.com/glint-boot/glint/internal/tpm"
)

// The power-cut test: the real glint binary runs `glint own` against
// swtpm, the simulated card behind a real pcscd and an image file, and is
// killed (SIGKILL: no deferred cleanup runs, as in a power cut) at every
// step boundary and at the points inside steps where something is half
// done. Then the machine is powered off and on (swtpm restarted on its
// state, the card reset) and:
//
//   - the next start recognises the interrupted re-ownership (Pending) and
//     says after which step it stopped;
//   - a second run continues (or restarts, for some points) and finishes;
//   - the result is a fully re-owned machine (checkReowned: the vendor's
//     signature, TOTP secret and TPM authorisation refused, the owner's
//     accepted, the next boot's code the one shown).

// killAnswers leave to the console what the test answers itself, so the
// wizard waits at each of those prompts, where the test may kill it.
const killAnswers = `confirm = reset everything
keys = card
key.type = rsa2048
key.name = New Owner
key.email = owner@example.org
card.reset = yes
card.user-pin = 246813
card.admin-pin = 97531864
firmware.config = keep
totp.account = my laptop
`

// prompts the test answers, and the answer.
var prompts = []struct{ re, answer string }{
	{`Continue or restart\? \[continue/restart\] \(continue\) $`, ""}, // set per run
	{`Continue with step \d \([^)]*\)\? \[yes/no\] \(yes\) $`, "yes"},
	{`Write the new firmware to .*\? \[yes/no\] $`, "yes"},
	{`Sign /boot as listed above\? \[yes/no\] $`, "yes"},
	{`Type the code your phone shows \(or 'skip'\): \(skip\) $`, "skip"},
	{`Type 'done' when you have written them down: $`, "done"},
	{`\([^()\n]+\) $`, ""}, // any other question with a default: Enter
}

var killPoints = []struct {
	name     string
	at       string // the prompt at which the wizard is killed
	restart  bool   // the second run restarts instead of continuing
	wantLast string // the milestone the journal must show
	tpm12    bool   // on a TPM 1.2 (else 2.0)
}{
	{"after-1-check", `Continue with step 2 `, false, MarkCheck, false},
	{"after-2-tpm-reset", `Continue with step 3 `, false, MarkTPM, false},
	{"after-3-keys", `Continue with step 4 `, false, MarkKeysTPM, false},
	{"in-4-before-flash", `Write the new firmware`, false, MarkKeysTPM, false},
	{"after-4-firmware", `Continue with step 5 `, false, MarkFirmware, false},
	{"in-5-before-sign", `Sign /boot as listed`, false, MarkFirmware, false},
	{"in-5-totp-sealed", `Type the code your phone`, false, MarkSigned, false},
	{"after-5", `Continue with step 6 `, false, MarkTOTP, false},
	{"in-6-summary", `Type 'done'`, false, MarkTOTP, false},
	{"after-4-restart", `Continue with step 5 `, true, MarkFirmware, false},
	{"tpm12-after-3-keys", `Continue with step 4 `, false, MarkKeysTPM, true},
	{"tpm12-in-5-totp-sealed", `Type the code your phone`, false, MarkSigned, true},
}

func TestPowerCutAtEveryStep(t *testing.T) {
	glint := buildGlint(t)
	for _, kp := range killPoints {
		t.Run(kp.name, func(t *testing.T) {
			v := tpm.Version20
			if kp.tpm12 {
				v = tpm.Version12
			}
			b := newBench(t, v)
			sh := b.ship()
			d := pcscdtest.Start(t, b.sim)
			answers := filepath.Join(t.TempDir(), "answers")
			write(t, answers, []byte(killAnswers))

			log1, killed := b.runCLI(t, glint, d.Socket, answers, kp.at, "")
			if !killed {
				t.Fatalf("the wizard never reached %q:\n%s", kp.at, log1)
			}
			// Power cut: the TPM and the card lose their session state.
			b.powerCycle()
			j, pending := Pending(b.bootDir)
			if !pending {
				t.Fatalf("after a cut at %s the next start does not see an unfinished re-ownership", kp.name)
			}
			if j.Last() != kp.wantLast {
				t.Fatalf("journal's last milestone %q, want %q", j.Last(), kp.wantLast)
			}
			choice := "continue"
			if kp.restart {
				choice = "restart"
			}
			start := time.Now()
			log2, killed := b.runCLI(t, glint, d.Socket, answers, "", choice)
			var during []time.Time
			for at := start.Add(-30 * time.Second); at.Before(time.Now().Add(30 * time.Second)); at = at.Add(30 * time.Second) {
				during = append(during, at)
			}
			if killed {
				t.Fatal("killed twice")
			}
			if !strings.Contains(log2, "did not finish: it stopped after "+describeMark(kp.wantLast)) {
				t.Fatalf("the second run does not say where the first stopped:\n%s", log2)
			}
			if !strings.Contains(log2, "This machine is yours.") {
				t.Fatalf("the second run did not finish:\n%s", log2)
			}
			b.checkReowned(sh, log1+log2, during...)
		})
	}
}

// buildGlint builds the real binary once per test run.
func buildGlint(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "glint")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/glint")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// runCLI runs glint own, answering the prompts; at killAt (a prompt) it
// kills the process with SIGKILL. It returns the output and whether it
// killed.
func (b *bench) runCLI(t *testing.T, glint, pcscSocket, answers, killAt, resume string) (string, bool) {
	t.Helper()
	cmd := exec.Command(glint, "--tpm", b.spec, "--boot", b.bootDir, "own", "--answers", answers, "--ask",
		"--rom", b.rom, "--key-dir", b.usb, "--reader", "pcsc")
	cmd.Env = append(os.Environ(), "PCSCLITE_CSOCK_NAME="+pcscSocket, "TZ=UTC")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var buf bytes.Buffer
	grew := make(chan struct{}, 1)
	go func() {
		chunk := make([]byte, 4096)
		for {
			n, err := pr.Read(chunk)
			mu.Lock()
			buf.Write(chunk[:n])
			mu.Unlock()
			select {
			case grew <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); pw.Close() }()
	cursor := 0
	killRE := regexp.MustCompile(regexp.QuoteMeta(killAt))
	deadline := time.After(2 * time.Minute)
	for {
		mu.Lock()
		rest := buf.String()[cursor:]
		mu.Unlock()
		answered := false
		for _, p := range prompts {
			loc := regexp.MustCompile(p.re).FindStringIndex(rest)
			if loc == nil {
				continue
			}
			prompt := rest[loc[0]:loc[1]]
			cursor += loc[1]
			if killAt != "" && killRE.MatchString(prompt) {
				cmd.Process.Signal(syscall.SIGKILL)
				<-exited
				mu.Lock()
				defer mu.Unlock()
				return buf.String(), true
			}
			a := p.answer
			if strings.HasPrefix(prompt, "Continue or restart") {
				a = resume
			}
			fmt.Fprintf(stdin, "%s\n", a)
			answered = true
			break
		}
		if answered {
			continue
		}
		select {
		case <-grew:
		case err := <-exited:
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Fatalf("glint own failed: %v\n%s", err, buf.String())
			}
			return buf.String(), false
		case <-deadline:
			cmd.Process.Kill()
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("glint own hangs; output:\n%s", buf.String())
		}
	}
}
