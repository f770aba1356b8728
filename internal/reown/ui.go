package reown

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/glint-boot/glint/internal/secret"
)

// Question is one thing the wizard asks. Key is its name in an answers
// file; the console shows Prompt.
type Question struct {
	Key    string
	Prompt string
	// Choices are the accepted answers (empty: free text). Default is
	// taken for an empty answer at the console, and when an answers file
	// leaves the key out; "" means the answer is required.
	Choices []string
	Default string
	// Secret answers are not echoed and come back as []byte to wipe.
	Secret bool
	// Twice: a secret typed at the console is asked a second time and
	// must match (a new PIN with a typo would lock its owner out).
	Twice bool
	// Confirm is the exact text that agrees to something that cannot be
	// undone; any other answer refuses (ErrDeclined).
	Confirm string
}

// UI is how the wizard talks to the owner: the console of the boot menu,
// a terminal on a workstation, or an answers file. Every step goes through
// it, so all of them run the same code.
type UI interface {
	// Show prints text (an explanation, a plan, a QR code). It ends with a
	// newline when it should.
	Show(text string)
	// Ask asks q and returns the answer; the caller wipes it.
	Ask(q Question) ([]byte, error)
}

// ErrDeclined: the owner did not confirm; nothing was done for that step.
var ErrDeclined = errors.New("not confirmed")

// Console is a line-based terminal: the boot menu's console or a
// workstation's terminal.
type Console interface {
	Printf(format string, a ...any)
	// Prompt reads one line after showing prompt.
	Prompt(prompt string) (string, error)
	// PromptSecret reads one line without echo; the caller wipes it.
	PromptSecret(prompt string) ([]byte, error)
}

// ConsoleUI asks a person. Answers, when set, answer the questions they
// have and the console asks the rest.
type ConsoleUI struct {
	Con     Console
	Answers *Answers
}

// Show prints text.
func (u *ConsoleUI) Show(text string) { u.Con.Printf("%s", text) }

// Ask asks until the answer is acceptable (three tries for a choice).
func (u *ConsoleUI) Ask(q Question) ([]byte, error) {
	if v, ok := u.Answers.Get(q.Key); ok {
		u.Con.Printf("%s%s\n", q.Prompt, shown(q, v))
		return checkAnswer(q, v)
	}
	prompt := q.Prompt
	if len(q.Choices) > 0 {
		prompt += "[" + strings.Join(q.Choices, "/") + "] "
	}
	if q.Default != "" && !q.Secret {
		prompt += "(" + q.Default + ") "
	}
	for try := 0; ; try++ {
		var v []byte
		if q.Secret {
			s, err := u.Con.PromptSecret(prompt)
			if err != nil {
				return nil, err
			}
			v = bytes.TrimSpace(s)
			if len(v) != len(s) {
				v = bytes.Clone(v)
				secret.Wipe(s)
			}
		} else {
			s, err := u.Con.Prompt(prompt)
			if err != nil {
				return nil, err
			}
			v = []byte(strings.TrimSpace(s))
		}
		if len(v) == 0 && q.Default != "" {
			v = []byte(q.Default)
		} else if q.Secret && q.Twice {
			again, err := u.Con.PromptSecret("Again: ")
			if err != nil {
				secret.Wipe(v)
				return nil, err
			}
			same := bytes.Equal(bytes.TrimSpace(again), v)
			secret.Wipe(again)
			if !same {
				secret.Wipe(v)
				u.Con.Printf("The two differ; once more.\n")
				continue
			}
		}
		a, err := checkAnswer(q, v)
		if err == nil || errors.Is(err, ErrDeclined) || try == 2 {
			return a, err
		}
		u.Con.Printf("%v\n", err)
	}
}

// shown is how an answer from the answers file is echoed: secrets never.
func shown(q Question, v []byte) string {
	if q.Secret {
		return "(from the answers file)"
	}
	return string(v) + " (from the answers file)"
}

// checkAnswer applies the question's rules to v (which it takes over).
func checkAnswer(q Question, v []byte) ([]byte, error) {
	if q.Confirm != "" {
		ok := strings.EqualFold(strings.TrimSpace(string(v)), q.Confirm)
		secret.Wipe(v)
		if !ok {
			return nil, fmt.Errorf("%w: %s needs exactly %q", ErrDeclined, q.Key, q.Confirm)
		}
		return []byte(q.Confirm), nil
	}
	if len(q.Choices) > 0 {
		for _, c := range q.Choices {
			if strings.EqualFold(string(v), c) {
				return []byte(c), nil
			}
		}
		return nil, fmt.Errorf("%s: %q is not one of %s", q.Key, v, strings.Join(q.Choices, ", "))
	}
	if len(v) == 0 {
		return nil, fmt.Errorf("%s: an answer is needed", q.Key)
	}
	return v, nil
}

// AnswersUI answers from an answers file only: a question it does not
// answer (and that has no default) stops the wizard with ErrNoAnswer,
// naming the key to add. What the wizard shows goes to Out.
type AnswersUI struct {
	Answers *Answers
	Out     io.Writer
}

// Show prints text.
func (u *AnswersUI) Show(text string) { fmt.Fprint(u.Out, text) }

// Ask looks the question up.
func (u *AnswersUI) Ask(q Question) ([]byte, error) {
	v, ok := u.Answers.Get(q.Key)
	if !ok {
		if q.Default == "" || q.Confirm != "" {
			return nil, fmt.Errorf("%w for %q in the answers file (%s): add a line `%s = ...`", ErrNoAnswer, q.Key, strings.TrimSpace(q.Prompt), q.Key)
		}
		v = []byte(q.Default)
		fmt.Fprintf(u.Out, "%s%s (default)\n", q.Prompt, q.Default)
		return checkAnswer(q, v)
	}
	fmt.Fprintf(u.Out, "%s%s\n", q.Prompt, shown(q, v))
	return checkAnswer(q, v)
}

// yes asks a yes/no question.
func yes(ui UI, key, prompt, def string) (bool, error) {
	a, err := ui.Ask(Question{Key: key, Prompt: prompt, Choices: []string{"yes", "no"}, Default: def})
	if err != nil {
		return false, err
	}
	return string(a) == "yes", nil
}

// The answers-file keys, one per question the wizard can ask.
const (
	KeyResume          = "resume"
	KeyConfirm         = "confirm"
	KeyTPMMaxTries     = "tpm.max-tries"
	KeyTPMRecovery     = "tpm.recovery"
	KeyTPMLockout      = "tpm.lockout-recovery"
	KeyKeys            = "keys"
	KeyKeyType         = "key.type"
	KeyKeyName         = "key.name"
	KeyKeyEmail        = "key.email"
	KeyCardReset       = "card.reset"
	KeyCardUserPIN     = "card.user-pin"
	KeyCardAdminPIN    = "card.admin-pin"
	KeyPassphrase      = "key.passphrase"
	KeyBackupDir       = "backup.dir"
	KeyTPMPassphrase   = "tpm.owner-passphrase"
	KeyFirmwareConfig  = "firmware.config"
	KeyFirmwareFlash   = "firmware.flash"
	KeySign            = "sign"
	KeyTOTPIssuer      = "totp.issuer"
	KeyTOTPAccount     = "totp.account"
	KeyTOTPCheck       = "totp.check"
	KeyHOTP            = "hotp"
	KeyHOTPAdminPIN    = "hotp.admin-pin"
	KeySummaryConfirm  = "summary"
	KeyContinueToNext  = "continue"
	keyValueGenerate   = "generate"
	confirmResetPhrase = "reset everything"
)

var knownKeys = []string{KeyResume, KeyConfirm, KeyTPMMaxTries, KeyTPMRecovery, KeyTPMLockout,
	KeyKeys, KeyKeyType, KeyKeyName, KeyKeyEmail, KeyCardReset, KeyCardUserPIN, KeyCardAdminPIN,
	KeyPassphrase, KeyBackupDir, KeyTPMPassphrase, KeyFirmwareConfig, KeyFirmwareFlash, KeySign,
	KeyTOTPIssuer, KeyTOTPAccount, KeyTOTPCheck, KeyHOTP, KeyHOTPAdminPIN, KeySummaryConfirm, KeyContinueToNext}

func knownKey(k string) bool {
	for _, x := range knownKeys {
		if x == k {
			return true
		}
	}
	return false
}

// KnownKeys lists the answers-file keys.
func KnownKeys() []string {
	out := append([]string(nil), knownKeys...)
	sort.Strings(out)
	return out
}
