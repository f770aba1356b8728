//go:build qemu

package qemutest

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glint-boot/glint/internal/kexec"
	"github.com/glint-boot/glint/internal/luks"
	"github.com/glint-boot/glint/internal/secret"
)

const (
	qemuBin = "qemu-system-x86_64"
	// rootUp is what the root filesystem's /sbin/init prints (build-os.sh).
	rootUp = "GLINT-E2E-LUKS-ROOT-UP"
	// askPrompt is Debian's askpass prompt (cryptsetup-initramfs,
	// lib/cryptsetup/functions run_keyscript: "Please unlock disk NAME: ").
	askPrompt = "Please unlock disk "
	// keyFailed is what scripts/local-top/cryptroot prints after a failed
	// cryptsetup run: a wrong key, whatever its source.
	keyFailed = "cryptsetup failed, bad password or options?"
	// triesExceeded ends cryptroot's attempts for one invocation.
	triesExceeded = "maximum number of tries exceeded"
	bootWait      = 150 * time.Second // per wait; a good boot takes 20-40 s
)

// osImage is what build-os.sh cached.
type osImage struct {
	kernel, initrd, disk, passfile, uuid, mapper, cmdline string
	passphrase                                            []byte
	// dracut's initrd and command line; "" when dracut-core is missing.
	dracutInitrd, dracutCmdline string
}

func loadOS(t *testing.T) *osImage {
	t.Helper()
	for _, tool := range []string{qemuBin, "mkinitramfs", "cryptsetup", "mkfs.ext4", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			if _, err2 := os.Stat("/usr/sbin/" + tool); err2 != nil {
				t.Skipf("%s not installed (bash scripts/install-deps.sh: qemu-system-x86, initramfs-tools-core, cryptsetup-initramfs, e2fsprogs): %v", tool, err)
			}
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skipf("/bin/busybox missing (apt-get install busybox-static): %v", err)
	}
	os.Setenv("PATH", os.Getenv("PATH")+":/usr/sbin:/sbin")
	start := time.Now()
	cmd := exec.Command("bash", "build-os.sh")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if os.Geteuid() != 0 {
			t.Skipf("build-os.sh failed and is not running as root (it needs root once, to give mkinitramfs the kernel's modules): %v\n%s", err, stderr.String())
		}
		t.Fatalf("build-os.sh: %v\n%s", err, stderr.String())
	}
	t.Logf("build-os.sh: %s (%.1f s) %s", strings.TrimSpace(string(out)), time.Since(start).Seconds(), strings.TrimSpace(stderr.String()))
	env, err := readEnv(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	img := &osImage{
		kernel: env["LUKS_OS_KERNEL"], initrd: env["LUKS_OS_INITRD"], disk: env["LUKS_OS_DISK"],
		passfile: env["LUKS_OS_PASSFILE"], uuid: env["LUKS_OS_UUID"], mapper: env["LUKS_OS_MAPPER"],
		cmdline: env["LUKS_OS_CMDLINE"], dracutInitrd: env["LUKS_OS_DRACUT_INITRD"],
		dracutCmdline: env["LUKS_OS_DRACUT_CMDLINE"],
	}
	if img.passphrase, err = os.ReadFile(img.passfile); err != nil {
		t.Fatal(err)
	}
	return img
}

func readEnv(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		env[k] = strings.Trim(v, `"`)
	}
	for _, k := range []string{"LUKS_OS_KERNEL", "LUKS_OS_INITRD", "LUKS_OS_DISK", "LUKS_OS_PASSFILE", "LUKS_OS_UUID", "LUKS_OS_MAPPER", "LUKS_OS_CMDLINE"} {
		if env[k] == "" {
			return nil, fmt.Errorf("%s: %s missing (rerun build-os.sh)", path, k)
		}
	}
	return env, nil
}

// guest is one QEMU run with its serial console on stdin/stdout.
type guest struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	start  time.Time
	log    string
	mu     sync.Mutex
	out    bytes.Buffer
	done   chan struct{}
	result error
}

func boot(t *testing.T, name string, img *osImage, cmdline, initrd, disk string) *guest {
	t.Helper()
	dir := t.TempDir()
	g := &guest{t: t, name: name, log: filepath.Join(dir, name+".serial.log"), done: make(chan struct{})}
	g.cmd = exec.Command(qemuBin,
		"-accel", "tcg", "-machine", "q35", "-m", "1024", "-nographic", "-no-reboot",
		"-kernel", img.kernel, "-initrd", initrd, "-append", cmdline,
		// snapshot=on: the guest's writes go to a temp file, the image stays as the test made it.
		"-drive", "if=virtio,format=raw,snapshot=on,file="+disk)
	var err error
	if g.stdin, err = g.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := g.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	g.cmd.Stderr = g.cmd.Stdout
	logf, err := os.Create(g.log)
	if err != nil {
		t.Fatal(err)
	}
	g.start = time.Now()
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", qemuBin, err)
	}
	go func() {
		r := bufio.NewReader(stdout)
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				logf.Write(buf[:n])
				g.mu.Lock()
				g.out.Write(buf[:n])
				g.mu.Unlock()
			}
			if err != nil {
				break
			}
		}
		logf.Close()
		g.result = g.cmd.Wait()
		close(g.done)
	}()
	t.Cleanup(func() {
		g.stop()
		if keep := os.Getenv("GLINT_QEMU_KEEP"); keep != "" {
			os.MkdirAll(keep, 0o755)
			if b, err := os.ReadFile(g.log); err == nil {
				os.WriteFile(filepath.Join(keep, filepath.Base(g.log)), b, 0o644)
			}
		}
		if t.Failed() {
			out := g.output()
			if len(out) > 6000 {
				out = out[len(out)-6000:]
			}
			t.Logf("%s: serial console (last %d bytes, full log %s):\n%s", name, len(out), g.log, out)
		}
	})
	return g
}

func (g *guest) output() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.out.String()
}

func (g *guest) exited() bool {
	select {
	case <-g.done:
		return true
	default:
		return false
	}
}

// waitFor returns the first of want to appear on the console (earliest in
// the output) and the time since power-on.
func (g *guest) waitFor(timeout time.Duration, want ...string) (string, time.Duration) {
	g.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		exited := g.exited() // read before the output: no line is missed
		out := g.output()
		best, at := "", -1
		for _, w := range want {
			if i := strings.Index(out, w); i >= 0 && (at < 0 || i < at) {
				best, at = w, i
			}
		}
		if at >= 0 {
			return best, time.Since(g.start)
		}
		if exited {
			g.t.Fatalf("%s: QEMU exited (%v) after %.1f s without printing any of %q", g.name, g.result, time.Since(g.start).Seconds(), want)
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("%s: none of %q within %s", g.name, want, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// send types on the serial console; a carriage return is the Enter key.
func (g *guest) send(s string) {
	g.t.Helper()
	if _, err := io.WriteString(g.stdin, s); err != nil {
		g.t.Fatalf("%s: write to the serial console: %v", g.name, err)
	}
}

// waitExit waits for the guest to power off (poweroff -f with -no-reboot).
func (g *guest) waitExit(timeout time.Duration) time.Duration {
	g.t.Helper()
	select {
	case <-g.done:
		return time.Since(g.start)
	case <-time.After(timeout):
		g.t.Fatalf("%s: guest did not power off within %s", g.name, timeout)
		return 0
	}
}

func (g *guest) stop() {
	if g.exited() {
		return
	}
	g.cmd.Process.Kill()
	<-g.done
}

// rootDevice is the device /sbin/init saw mounted on / (build-os.sh prints it).
func (g *guest) rootDevice() string {
	out := g.output()
	i := strings.Index(out, "GLINT-E2E-ROOT-DEV ")
	if i < 0 {
		return ""
	}
	line, _, _ := strings.Cut(out[i+len("GLINT-E2E-ROOT-DEV "):], "\n")
	return strings.TrimSpace(line)
}

// keyedDisk copies the cached disk and adds key to keyslot 31 (glint's slot
// on LUKS2) with glint's own luks.AddKey, authorised by the passphrase.
func keyedDisk(t *testing.T, img *osImage, key []byte) string {
	t.Helper()
	disk := filepath.Join(t.TempDir(), "disk.img")
	copyFile(t, img.disk, disk)
	// The key is 128 random bytes, so the KDF adds nothing; pbkdf2 with 1000
	// iterations keeps the unlock fast under TCG.
	cs := &luks.Cryptsetup{PBKDF: []string{"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"}}
	if err := cs.AddKey(disk, img.passphrase, key, -1); err != nil {
		t.Fatalf("luks.AddKey: %v", err)
	}
	h, err := luks.ReadHeader(disk)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := h.Slot(31); !ok || h.DefaultSlot() != 31 {
		t.Fatalf("the new key is not in keyslot 31 (default slot %d)", h.DefaultSlot())
	}
	if err := cs.TestKey(disk, key); err != nil {
		t.Fatalf("cryptsetup does not accept the new key on the host: %v", err)
	}
	return disk
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func randomKey(t *testing.T) []byte {
	key := make([]byte, 128) // sealed.DiskKeySize: Heads' 128 random bytes
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return key
}

// glintInitrd is the initrd glint's kexec hands the OS: the Debian
// initramfs as it is, then the key cpio built from what glint reads in it.
func glintInitrd(t *testing.T, img *osImage, key []byte, dir string) string {
	t.Helper()
	return keyedInitrd(t, img, img.initrd, luks.StyleInitramfsTools, img.mapper, key, dir)
}

// keyedInitrd reads osInitrd with luks.ReadInitrd (its generator must be
// style; an initramfs-tools initrd must carry the OS's crypttab entry for
// the volume), merges the crypttab so the volume gets the injected key under
// mapper, and appends luks.BuildKeyCpio's archive with kexec.WriteInitrd.
func keyedInitrd(t *testing.T, img *osImage, osInitrd string, style luks.Style, mapper string, key []byte, dir string) string {
	t.Helper()
	f, err := os.Open(osInitrd)
	if err != nil {
		t.Fatal(err)
	}
	info, err := luks.ReadInitrd(f)
	f.Close()
	if err != nil {
		t.Fatalf("luks.ReadInitrd on %s: %v", osInitrd, err)
	}
	t.Logf("ReadInitrd %s: style %s, segments %v, crypttab %+v", filepath.Base(osInitrd), info.Style, info.Segments, info.Crypttab)
	if info.Style != style {
		t.Fatalf("style %s, want %s", info.Style, style)
	}
	if style == luks.StyleInitramfsTools && (len(info.Crypttab) != 1 || info.Crypttab[0].Name != mapper || !strings.EqualFold(info.Crypttab[0].UUID(), img.uuid) || info.Crypttab[0].KeyFile != "none") {
		t.Fatalf("crypttab read from the initrd %+v, want one entry %s UUID=%s none", info.Crypttab, mapper, img.uuid)
	}
	entries := luks.MergeCrypttab(info.Crypttab, []string{img.uuid})
	if len(entries) != 1 || entries[0].Name != mapper || entries[0].KeyFile != "" {
		t.Fatalf("MergeCrypttab = %+v, want %s pointed at the injected key", entries, mapper)
	}
	keyCpio, err := luks.BuildKeyCpio(key, entries, info.Style)
	if err != nil {
		t.Fatalf("luks.BuildKeyCpio: %v", err)
	}
	defer secret.Wipe(keyCpio)
	out := filepath.Join(dir, "initrd-glint-"+style.String()+".img")
	w, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	// What internal/kexec's SystemLoader puts in the initrd memfd.
	if _, err := kexec.WriteInitrd(w, []kexec.File{{Path: osInitrd}}, keyCpio); err != nil {
		t.Fatalf("kexec.WriteInitrd: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	keep(t, out)
	return out
}

// flowInitrd is the cpio sealed.DiskKeyCpio builds (one
// luks.KeyEntry under the recorded mapper name, StyleBoth), appended with
// luks.WriteInitrd (512-byte padding).
func flowInitrd(t *testing.T, img *osImage, key []byte, dir string) string {
	t.Helper()
	// Exactly what the boot flow does: read the OS initrd for its crypttab
	// (the sealed record's name left empty, as when the owner named none),
	// then the key cpio in the initrd's own dialect.
	in, err := os.Open(img.initrd)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	tab, style := luks.KeyCrypttab(in, img.uuid, "")
	keyCpio, err := luks.BuildKeyCpio(key, tab, style)
	if err != nil {
		t.Fatal(err)
	}
	defer secret.Wipe(keyCpio)
	if _, err := in.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "initrd-flow.img")
	w, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := luks.WriteInitrd(w, in, keyCpio); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	keep(t, out)
	return out
}

func keep(t *testing.T, path string) {
	if dir := os.Getenv("GLINT_QEMU_KEEP"); dir != "" {
		os.MkdirAll(dir, 0o755)
		b, err := os.ReadFile(path)
		if err == nil {
			os.WriteFile(filepath.Join(dir, filepath.Base(path)), b, 0o644)
		}
	}
}

// expectRootWithoutPrompt boots and requires the LUKS root to come up
// without the initramfs ever asking for a passphrase.
func expectRootWithoutPrompt(t *testing.T, name string, img *osImage, initrd, disk string) {
	expectRoot(t, name, img, img.cmdline, initrd, disk, img.mapper, askPrompt, keyFailed)
}

// expectRoot boots and requires / on /dev/mapper/mapper without the
// initramfs ever printing prompt (or any of failed: its "wrong key" messages).
func expectRoot(t *testing.T, name string, img *osImage, cmdline, initrd, disk, mapper, prompt string, failed ...string) {
	g := boot(t, name, img, cmdline, initrd, disk)
	got, at := g.waitFor(bootWait, append([]string{rootUp, prompt}, failed...)...)
	if got != rootUp {
		t.Fatalf("%s: the initramfs printed %q at %.1f s instead of unlocking with the injected key", name, got, at.Seconds())
	}
	if dev := g.rootDevice(); dev != "/dev/mapper/"+mapper {
		t.Errorf("%s: / is %q, want /dev/mapper/%s", name, dev, mapper)
	}
	end := g.waitExit(30 * time.Second)
	if strings.Contains(g.output(), prompt) {
		t.Errorf("%s: the passphrase prompt appeared although the key was injected", name)
	}
	t.Logf("%s: root up at %.1f s, powered off at %.1f s, no prompt", name, at.Seconds(), end.Seconds())
}

func TestDebianInitramfsUnlock(t *testing.T) {
	img := loadOS(t)
	t.Logf("LUKS UUID %s, initrd %s, disk %s", img.uuid, img.initrd, img.disk)
	dir := t.TempDir()
	key := randomKey(t)
	disk := keyedDisk(t, img, key)

	// Two guests at a time: TCG runs one vCPU per host thread, and this
	// machine kind has 2 cores.
	t.Run("passphrase", func(t *testing.T) {
		t.Parallel()
		// The unmodified Debian initramfs: what the owner sees when glint
		// withholds the key. The disk has glint's slot 31 too; the
		// passphrase in slot 0 still opens it.
		g := boot(t, "passphrase", img, img.cmdline, img.initrd, disk)
		got, at := g.waitFor(bootWait, askPrompt, rootUp)
		if got != askPrompt {
			t.Fatalf("the root came up at %.1f s without a passphrase", at.Seconds())
		}
		if !strings.Contains(g.output(), askPrompt+img.mapper) {
			t.Errorf("the prompt does not name %s", img.mapper)
		}
		t.Logf("passphrase: prompt at %.1f s", at.Seconds())
		g.send(string(img.passphrase) + "\r")
		got, up := g.waitFor(bootWait, rootUp, keyFailed)
		if got != rootUp {
			t.Fatalf("the passphrase from %s did not unlock the root: %q", img.passfile, got)
		}
		if dev := g.rootDevice(); dev != "/dev/mapper/"+img.mapper {
			t.Errorf("/ is %q, want /dev/mapper/%s", dev, img.mapper)
		}
		t.Logf("passphrase: root up at %.1f s, powered off at %.1f s", up.Seconds(), g.waitExit(30*time.Second).Seconds())
	})
	t.Run("glint-key", func(t *testing.T) {
		t.Parallel()
		expectRootWithoutPrompt(t, "glint-key", img, glintInitrd(t, img, key, dir), disk)
	})
	t.Run("boot-flow", func(t *testing.T) {
		t.Parallel()
		expectRootWithoutPrompt(t, "boot-flow", img, flowInitrd(t, img, key, dir), disk)
	})
	t.Run("wrong-key", func(t *testing.T) {
		t.Parallel()
		// A wrong injected key (another machine's, or a swapped disk):
		// glint's keyscript gives it once, then the Debian prompt asks for
		// the recovery passphrase, which opens the root. The owner is never
		// locked out of their own disk.
		g := boot(t, "wrong-key", img, img.cmdline, glintInitrd(t, img, randomKey(t), t.TempDir()), disk)
		got, at := g.waitFor(bootWait, rootUp, keyFailed, askPrompt)
		if got != keyFailed {
			t.Fatalf("wrong-key: %q at %.1f s, want the injected key tried first and refused", got, at.Seconds())
		}
		got, at = g.waitFor(bootWait, rootUp, askPrompt+img.mapper, triesExceeded)
		if got != askPrompt+img.mapper {
			t.Fatalf("wrong-key: %q at %.1f s, want the passphrase prompt after the refused key", got, at.Seconds())
		}
		t.Logf("wrong-key: key refused, then prompt at %.1f s", at.Seconds())
		g.send(string(img.passphrase) + "\r")
		got, up := g.waitFor(bootWait, rootUp, triesExceeded)
		if got != rootUp {
			t.Fatalf("the passphrase did not unlock the root after the prompt: %q", got)
		}
		t.Logf("wrong-key: root up at %.1f s, powered off at %.1f s", up.Seconds(), g.waitExit(30*time.Second).Seconds())
	})
}

// systemdPrompt is systemd-cryptsetup's prompt (systemd 252,
// src/cryptsetup/cryptsetup.c), shown by systemd-ask-password-console. Its
// "Failed to activate with key file" goes to the journal, not the console.
const systemdPrompt = "Please enter passphrase for disk"

// TestDracutUnlock is the Fedora/Qubes side: a dracut initrd (systemd,
// not hostonly, so no crypttab of its own) unlocks the volume named by
// rd.luks.uuid= as luks-<uuid>. glint's cpio adds /etc/crypttab, which
// systemd-cryptsetup-generator reads in the initrd.
func TestDracutUnlock(t *testing.T) {
	img := loadOS(t)
	if img.dracutInitrd == "" {
		t.Skip("no dracut initrd: install dracut-core (bash scripts/install-deps.sh) and rerun build-os.sh")
	}
	key := randomKey(t)
	disk := keyedDisk(t, img, key)
	mapper := "luks-" + img.uuid
	t.Run("passphrase", func(t *testing.T) {
		t.Parallel()
		g := boot(t, "dracut-passphrase", img, img.dracutCmdline, img.dracutInitrd, disk)
		got, at := g.waitFor(bootWait, systemdPrompt, rootUp)
		if got != systemdPrompt {
			t.Fatalf("the root came up at %.1f s without a passphrase", at.Seconds())
		}
		t.Logf("dracut-passphrase: prompt at %.1f s", at.Seconds())
		g.send(string(img.passphrase) + "\r")
		if got, _ := g.waitFor(bootWait, rootUp); got != rootUp {
			t.Fatal("no root after the passphrase")
		}
		t.Logf("dracut-passphrase: powered off at %.1f s", g.waitExit(30*time.Second).Seconds())
	})
	t.Run("glint-key", func(t *testing.T) {
		t.Parallel()
		initrd := keyedInitrd(t, img, img.dracutInitrd, luks.StyleDracut, mapper, key, t.TempDir())
		expectRoot(t, "dracut-glint-key", img, img.dracutCmdline, initrd, disk, mapper, systemdPrompt)
	})
	t.Run("wrong-key", func(t *testing.T) {
		t.Parallel()
		initrd := keyedInitrd(t, img, img.dracutInitrd, luks.StyleDracut, mapper, randomKey(t), t.TempDir())
		g := boot(t, "dracut-wrong-key", img, img.dracutCmdline, initrd, disk)
		got, at := g.waitFor(bootWait, rootUp, systemdPrompt)
		if got == rootUp {
			t.Fatalf("the root came up at %.1f s with a wrong key", at.Seconds())
		}
		// Unlike initramfs-tools with keyscript=/bin/cat, systemd-cryptsetup
		// falls back to asking when the key file fails.
		if !strings.Contains(g.output(), systemdPrompt+" "+mapper) {
			t.Errorf("the prompt does not name %s", mapper)
		}
		t.Logf("dracut-wrong-key: key file refused, prompt at %.1f s", at.Seconds())
		g.send(string(img.passphrase) + "\r")
		if got, _ := g.waitFor(bootWait, rootUp); got != rootUp {
			t.Fatal("no root after the passphrase")
		}
		t.Logf("dracut-wrong-key: recovery passphrase worked, powered off at %.1f s", g.waitExit(30*time.Second).Seconds())
	})
}
