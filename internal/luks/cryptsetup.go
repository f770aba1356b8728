package luks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Errors from keyslot management.
var (
	// ErrWrongPassphrase: cryptsetup exit code 2, "No key available with this passphrase".
	ErrWrongPassphrase = errors.New("no keyslot opens with this passphrase")
	// ErrSlotInUse: glint never overwrites an active keyslot; remove it first with KillSlot.
	ErrSlotInUse = errors.New("keyslot is in use")
	// ErrSlotEmpty: there is nothing to remove in this slot.
	ErrSlotEmpty = errors.New("keyslot is empty")
	// ErrSlotOwnedByToken: a LUKS2 token (e.g. systemd-cryptenroll's TPM2
	// token) references the slot; it belongs to that tool.
	ErrSlotOwnedByToken = errors.New("keyslot is referenced by a LUKS2 token")
	// ErrLastSlot: removing the slot would leave no way to open the volume.
	ErrLastSlot = errors.New("this is the only active keyslot")
	// ErrNoCryptsetup: the cryptsetup binary was not found.
	ErrNoCryptsetup = errors.New("cryptsetup not found")
)

// maxKeyFile is cryptsetup's default keyfile size limit (8 MiB, "Maximum
// keyfile size: 8192kB" in cryptsetup --help).
const maxKeyFile = 8 << 20

// Cryptsetup runs the real cryptsetup binary for the keyslot operations
// glint leaves to it (writing LUKS metadata correctly is cryptsetup's job,
// not glint's). Secrets reach it only through pipes: never argv, never a
// file.
type Cryptsetup struct {
	// Path of the binary; empty means "cryptsetup" from PATH, then
	// /usr/sbin/cryptsetup and /sbin/cryptsetup.
	Path string
	// PBKDF options for new keyslots, e.g. {"--pbkdf", "pbkdf2",
	// "--pbkdf-force-iterations", "1000"} in tests. Empty means
	// cryptsetup's default (argon2id, benchmarked to about 2 s).
	PBKDF []string
	// Extra arguments added to every call (e.g. "--disable-locks" where
	// /run is not writable).
	Extra []string
	// Timeout bounds one cryptsetup run; zero means 5 minutes (argon2id on
	// a slow machine takes a while).
	Timeout time.Duration
}

// Default is the Cryptsetup the package-level functions use.
var Default = &Cryptsetup{}

// AddKey adds newKey as a passphrase in slot, authorised by
// existingPassphrase (any passphrase the volume already accepts). slot -1
// means the Heads-compatible default (31 on LUKS2, 7 on LUKS1). It refuses
// an occupied slot and a slot a token references.
func AddKey(device string, existingPassphrase, newKey []byte, slot int) error {
	return Default.AddKey(device, existingPassphrase, newKey, slot)
}

// KillSlot removes the keyslot, authorised by a passphrase that opens a
// different slot (so the owner cannot lock themself out).
func KillSlot(device string, existingPassphrase []byte, slot int) error {
	return Default.KillSlot(device, existingPassphrase, slot)
}

// TestKey returns nil if key opens some keyslot of device, ErrWrongPassphrase if not.
func TestKey(device string, key []byte) error { return Default.TestKey(device, key) }

// AddKey: see the package-level AddKey.
func (c *Cryptsetup) AddKey(device string, existingPassphrase, newKey []byte, slot int) error {
	h, err := ReadHeader(device)
	if err != nil {
		return fmt.Errorf("add key to %s: %w", device, err)
	}
	if slot == -1 {
		slot = h.DefaultSlot()
	}
	if err := checkSlot(h, slot); err != nil {
		return fmt.Errorf("add key to %s: %w", device, err)
	}
	if _, used := h.Slot(slot); used {
		return fmt.Errorf("add key to %s: slot %d: %w; glint never overwrites a keyslot. Remove it first (glint asks before it does) or choose a free slot", device, slot, ErrSlotInUse)
	}
	if toks := h.TokensForSlot(slot); len(toks) > 0 {
		return fmt.Errorf("add key to %s: slot %d: %w (%s)", device, slot, ErrSlotOwnedByToken, toks[0].Describe())
	}
	if len(newKey) == 0 || len(newKey) > maxKeyFile || len(existingPassphrase) == 0 || len(existingPassphrase) > maxKeyFile {
		return fmt.Errorf("add key to %s: keys must be 1 byte to 8 MiB", device)
	}
	// --key-file=- : the existing passphrase arrives on stdin, read to EOF,
	// newlines included (cryptsetup(8), "NOTES ON PASSPHRASE PROCESSING").
	// The new key is the positional new-keyfile argument, read from the
	// pipe the child sees as fd 3.
	args := []string{"luksAddKey", "--key-file=-", "--key-slot", fmt.Sprint(slot)}
	args = append(args, c.PBKDF...)
	args = append(args, device, "/proc/self/fd/3")
	_, err = c.run(args, existingPassphrase, newKey)
	if err != nil {
		return fmt.Errorf("add key to %s slot %d: %w", device, slot, err)
	}
	h2, err := ReadHeader(device)
	if err != nil {
		return fmt.Errorf("add key to %s: re-read header: %w", device, err)
	}
	if _, ok := h2.Slot(slot); !ok {
		return fmt.Errorf("add key to %s: cryptsetup succeeded but slot %d is still empty", device, slot)
	}
	return nil
}

// KillSlot: see the package-level KillSlot.
func (c *Cryptsetup) KillSlot(device string, existingPassphrase []byte, slot int) error {
	h, err := ReadHeader(device)
	if err != nil {
		return fmt.Errorf("remove keyslot from %s: %w", device, err)
	}
	if err := checkSlot(h, slot); err != nil {
		return fmt.Errorf("remove keyslot from %s: %w", device, err)
	}
	if _, used := h.Slot(slot); !used {
		return fmt.Errorf("remove keyslot %d from %s: %w", slot, device, ErrSlotEmpty)
	}
	if toks := h.TokensForSlot(slot); len(toks) > 0 {
		return fmt.Errorf("remove keyslot %d from %s: %w (%s); remove it with the tool that made it (systemd-cryptenroll --wipe-slot)",
			slot, device, ErrSlotOwnedByToken, toks[0].Describe())
	}
	if len(h.Keyslots) == 1 {
		return fmt.Errorf("remove keyslot %d from %s: %w", slot, device, ErrLastSlot)
	}
	if len(existingPassphrase) == 0 || len(existingPassphrase) > maxKeyFile {
		return fmt.Errorf("remove keyslot %d from %s: a passphrase of another keyslot is required", slot, device)
	}
	// Never -q here: batch mode makes luksKillSlot skip the passphrase
	// check. cryptsetup verifies the passphrase against the OTHER slots,
	// so a passphrase that only opens the doomed slot is refused (exit 2).
	_, err = c.run([]string{"luksKillSlot", "--key-file=-", device, fmt.Sprint(slot)}, existingPassphrase, nil)
	if err != nil {
		if errors.Is(err, ErrWrongPassphrase) {
			return fmt.Errorf("remove keyslot %d from %s: %w (it must open a keyslot other than %d)", slot, device, err, slot)
		}
		return fmt.Errorf("remove keyslot %d from %s: %w", slot, device, err)
	}
	return nil
}

// TestKey: see the package-level TestKey. It proves the key against the
// real keyslots without activating anything (works without device-mapper).
func (c *Cryptsetup) TestKey(device string, key []byte) error {
	if len(key) == 0 || len(key) > maxKeyFile {
		return fmt.Errorf("test key on %s: key must be 1 byte to 8 MiB", device)
	}
	// --disable-external-tokens: tokens in an untrusted header must not
	// make cryptsetup load token plugins here.
	_, err := c.run([]string{"open", "--test-passphrase", "--disable-external-tokens", "--key-file=-", device}, key, nil)
	if err != nil {
		return fmt.Errorf("test key on %s: %w", device, err)
	}
	return nil
}

func checkSlot(h *Header, slot int) error {
	if slot < 0 || slot >= h.SlotCount() {
		if h.Version == 1 && slot >= LUKS1Keyslots && slot < MaxLUKS2Keyslots {
			return fmt.Errorf("slot %d: %w", slot, ErrLUKS1)
		}
		return fmt.Errorf("slot %d out of range 0..%d", slot, h.SlotCount()-1)
	}
	return nil
}

func (c *Cryptsetup) binary() (string, error) {
	if c.Path != "" {
		return c.Path, nil
	}
	if p, err := exec.LookPath("cryptsetup"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/cryptsetup", "/sbin/cryptsetup"} {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w (install cryptsetup-bin, or put cryptsetup in glint's initramfs)", ErrNoCryptsetup)
}

// run executes cryptsetup with stdin fed from stdinSecret and, if fd3Secret
// is not nil, a pipe at the child's fd 3 fed from it. Both pipes are
// written from memory by this process; nothing touches a filesystem.
func (c *Cryptsetup) run(args []string, stdinSecret, fd3Secret []byte) (string, error) {
	bin, err := c.binary()
	if err != nil {
		return "", err
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	all := append(append([]string{}, c.Extra...), args...)
	cmd := exec.CommandContext(ctx, bin, all...)
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	var stderr, stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr

	var writers []*os.File
	var feeds [][]byte
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		return "", err
	}
	cmd.Stdin = stdinR
	writers, feeds = append(writers, stdinW), append(feeds, stdinSecret)
	readers := []*os.File{stdinR}
	if fd3Secret != nil {
		r, w, err := os.Pipe()
		if err != nil {
			stdinR.Close()
			stdinW.Close()
			return "", err
		}
		cmd.ExtraFiles = []*os.File{r}
		readers = append(readers, r)
		writers, feeds = append(writers, w), append(feeds, fd3Secret)
	}
	err = cmd.Start()
	for _, r := range readers {
		r.Close() // the child holds its own copies
	}
	if err != nil {
		for _, w := range writers {
			w.Close()
		}
		return "", fmt.Errorf("start %s: %w", bin, err)
	}
	// Feed every pipe concurrently: cryptsetup reads them in its own order,
	// and a secret larger than the pipe buffer would otherwise deadlock.
	done := make(chan error, len(writers))
	for i, w := range writers {
		go func(w *os.File, b []byte) {
			_, err := w.Write(b)
			w.Close()
			if errors.Is(err, os.ErrClosed) || errors.Is(err, io.ErrClosedPipe) {
				err = nil
			}
			done <- err
		}(w, feeds[i])
	}
	werr := cmd.Wait()
	for range writers {
		<-done // a broken pipe here only means cryptsetup stopped reading; Wait reports why
	}
	if werr != nil {
		return stdout.String(), cryptsetupError(werr, stderr.String())
	}
	return stdout.String(), nil
}

// cryptsetupError maps cryptsetup(8) "RETURN CODES" to errors: 1 wrong
// parameters, 2 no permission (bad passphrase), 3 out of memory, 4 wrong
// device, 5 device busy.
func cryptsetupError(err error, stderr string) error {
	msg := strings.TrimSpace(stderr)
	// cryptsetup prints "No usable token is available." whenever a header
	// has no token; it is noise here.
	msg = strings.TrimSpace(strings.ReplaceAll(msg, "No usable token is available.", ""))
	if len(msg) > 512 {
		msg = msg[:512] + "..."
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		switch ee.ExitCode() {
		case 2:
			return fmt.Errorf("%w (cryptsetup: %s)", ErrWrongPassphrase, msg)
		case 3:
			return fmt.Errorf("cryptsetup ran out of memory (argon2 needs RAM; try a pbkdf2 keyslot): %s", msg)
		case 4:
			return fmt.Errorf("cryptsetup: wrong or missing device: %s", msg)
		case 5:
			return fmt.Errorf("cryptsetup: device busy: %s", msg)
		}
		return fmt.Errorf("cryptsetup failed (exit %d): %s", ee.ExitCode(), msg)
	}
	return fmt.Errorf("cryptsetup: %w: %s", err, msg)
}
