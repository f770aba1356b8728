//go:build qemu

package qemutest

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/glint-boot/glint/internal/card/cardsim"
)

const (
	qemu     = "qemu-system-x86_64"
	bootWait = 5 * time.Minute
)

// usbModules are loaded in this order (each after its dependencies).
var usbModules = []string{
	"kernel/drivers/usb/common/usb-common.ko",
	"kernel/drivers/usb/core/usbcore.ko",
	"kernel/drivers/usb/host/xhci-hcd.ko",
	"kernel/drivers/usb/host/xhci-pci.ko",
}

func repoRoot(t *testing.T) string {
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func build(t *testing.T, root, pkg, out string) []byte {
	t.Helper()
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const script = `card list
card status
card generate --type rsa2048 --name Guest --email guest@example.org --admin-pin-file /admin --pin-file /pin --out /tmp/owner.asc
card sign --pin-file /wrong --out /tmp/x.asc /boot/vmlinuz-test
card status
manifest hash /boot > /tmp/manifest
card sign --pin-file /pin --out /tmp/manifest.asc /tmp/manifest
cat /tmp/owner.asc
cat /tmp/manifest
cat /tmp/manifest.asc
`

func TestCardOverUSBCCID(t *testing.T) {
	if _, err := exec.LookPath(qemu); err != nil {
		t.Skipf("%s not installed (bash scripts/install-deps.sh): %v", qemu, err)
	}
	root := repoRoot(t)
	kdir := filepath.Join(root, "cache", "kernel")
	ver, err := os.ReadFile(filepath.Join(kdir, "version"))
	if err != nil {
		t.Skipf("no kernel cache (bash scripts/fetch-kernel.sh): %v", err)
	}
	moddir := filepath.Join(kdir, "modules", strings.TrimSpace(string(ver)))
	dir := t.TempDir()
	glint := build(t, root, "./cmd/glint", filepath.Join(dir, "glint"))
	guest := build(t, root, "./internal/card/qemutest/guest", filepath.Join(dir, "init"))

	recs := []cpio.Record{
		cpio.Directory("dev", 0o755), cpio.Directory("proc", 0o755), cpio.Directory("sys", 0o755),
		cpio.Directory("tmp", 0o1777), cpio.Directory("bin", 0o755), cpio.Directory("boot", 0o755),
		cpio.Directory("modules", 0o755), cpio.CharDev("dev/console", 0o600, 5, 1),
		cpio.StaticRecord(guest, cpio.Info{Name: "init", Mode: cpio.S_IFREG | 0o755}),
		cpio.StaticRecord(glint, cpio.Info{Name: "bin/glint", Mode: cpio.S_IFREG | 0o755}),
		cpio.StaticFile("script", script, 0o644),
		cpio.StaticFile("pin", "123456\n", 0o600),
		cpio.StaticFile("admin", "12345678\n", 0o600),
		cpio.StaticFile("wrong", "999999\n", 0o600),
		cpio.StaticFile("boot/vmlinuz-test", "a kernel\n", 0o644),
		cpio.StaticFile("boot/initrd.img-test", "an initrd\n", 0o644),
	}
	var order []string
	for _, m := range usbModules {
		b, err := os.ReadFile(filepath.Join(moddir, m))
		if err != nil {
			t.Skipf("module %s missing from the kernel cache: %v", m, err)
		}
		name := filepath.Base(m)
		order = append(order, name)
		recs = append(recs, cpio.StaticRecord(b, cpio.Info{Name: "modules/" + name, Mode: cpio.S_IFREG | 0o644}))
	}
	recs = append(recs, cpio.StaticFile("modules/order", strings.Join(order, "\n")+"\n", 0o644))
	var initrd bytes.Buffer
	w := cpio.Newc.Writer(&initrd)
	for i := range recs {
		recs[i] = cpio.MakeReproducible(recs[i])
	}
	if err := cpio.WriteRecordsAndDirs(w, recs); err != nil {
		t.Fatal(err)
	}
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatal(err)
	}
	initrdPath := filepath.Join(dir, "initrd.cpio")
	if err := os.WriteFile(initrdPath, initrd.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	// The card, on the host, behind QEMU's reader.
	// Count the APDUs by instruction: the T=0 reader path must have used
	// GET RESPONSE (C0) for the RSA public key and the signatures.
	var insMu sync.Mutex
	ins := map[string]int{}
	logINS := func(format string, a ...any) {
		insMu.Lock()
		defer insMu.Unlock()
		ins[fmt.Sprintf("%02X", a[0])]++
	}
	sim, err := cardsim.New(cardsim.Options{Path: filepath.Join(dir, "card.json"), ATR: cardsim.ATRT0(), Log: logINS})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "card.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	served := make(chan error, 1)
	go func() {
		conn, err := l.Accept()
		if err != nil {
			served <- err
			return
		}
		defer conn.Close()
		served <- sim.ServeVSCard(conn)
	}()

	args := []string{"-M", "q35", "-accel", "tcg", "-cpu", "max", "-m", "512", "-smp", "1",
		"-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
		"-kernel", filepath.Join(kdir, "vmlinuz"), "-initrd", initrdPath,
		"-append", "console=ttyS0 panic=-1 loglevel=3",
		"-device", "qemu-xhci,id=xhci",
		"-device", "usb-ccid,id=ccid,bus=xhci.0",
		"-chardev", "socket,id=card,path=" + sock,
		"-device", "ccid-card-passthru,chardev=card,bus=ccid.0",
	}
	start := time.Now()
	cmd := exec.Command(qemu, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var serial bytes.Buffer
	done := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(io.TeeReader(stdout, &serial))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "CARDTEST-RUN") || strings.HasPrefix(line, "CARDTEST-EXIT") || strings.HasPrefix(line, "CARDTEST-USB") || strings.HasPrefix(line, "CARDTEST-FAIL") {
				t.Logf("%6.1fs %s", time.Since(start).Seconds(), line)
			}
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(bootWait):
		cmd.Process.Kill()
		<-done
		t.Fatalf("guest did not finish within %v:\n%s", bootWait, tail(serial.String(), 60))
	}
	cmd.Wait()
	t.Logf("guest ran %.1f s", time.Since(start).Seconds())
	log := strings.ReplaceAll(serial.String(), "\r\n", "\n")
	if keep := os.Getenv("GLINT_QEMU_KEEP"); keep != "" {
		os.MkdirAll(keep, 0o755)
		os.WriteFile(filepath.Join(keep, "card-serial.log"), []byte(log), 0o644)
		os.WriteFile(filepath.Join(keep, "card-initrd.cpio"), initrd.Bytes(), 0o644)
	}
	if !strings.Contains(log, "CARDTEST-DONE") || strings.Contains(log, "CARDTEST-FAIL") {
		t.Fatalf("guest failed:\n%s", tail(log, 60))
	}
	exits := map[int]int{}
	for _, line := range strings.Split(log, "\n") {
		var n, code int
		var dur string
		if _, err := fmt.Sscanf(line, "CARDTEST-EXIT %d %d %s", &n, &code, &dur); err == nil {
			exits[n] = code
		}
	}
	want := map[int]int{1: 0, 2: 0, 3: 0, 4: 1, 5: 0, 6: 0, 7: 0}
	for n, code := range want {
		if got, ok := exits[n]; !ok || got != code {
			t.Errorf("script line %d exited %d (ran: %v), want %d", n, got, ok, code)
		}
	}
	for _, s := range []string{
		"QEMU QEMU USB CCID", // card list names the reader
		"OpenPGP card 00000042 (test card)",
		"PIN tries left:  user 3, reset code 0, admin 3",
		"wrong user PIN",
		"PIN tries left:  user 2, reset code 0, admin 3",
		"Signature key:   rsa2048 ",
	} {
		if !strings.Contains(log, s) {
			t.Errorf("guest output lacks %q", s)
		}
	}
	if t.Failed() {
		t.Fatalf("serial log:\n%s", tail(log, 80))
	}
	owner, manifest, sig := fileFromLog(t, log, "/tmp/owner.asc"), fileFromLog(t, log, "/tmp/manifest"), fileFromLog(t, log, "/tmp/manifest.asc")
	if !strings.Contains(manifest, "vmlinuz-test") {
		t.Fatalf("guest manifest:\n%s", manifest)
	}
	// The host's gpg, knowing nothing of glint, accepts the guest's signature.
	home, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(home)
	for name, content := range map[string]string{"owner.asc": owner, "manifest": manifest, "manifest.asc": sig} {
		os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644)
	}
	gpg := func(args ...string) string {
		c := exec.Command("gpg", append([]string{"--homedir", home, "--batch"}, args...)...)
		b, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("gpg %v: %v\n%s", args, err, b)
		}
		return string(b)
	}
	gpg("--import", filepath.Join(dir, "owner.asc"))
	if out := gpg("--verify", filepath.Join(dir, "manifest.asc"), filepath.Join(dir, "manifest")); !strings.Contains(out, "Good signature from \"Guest <guest@example.org>\"") {
		t.Fatalf("gpg --verify:\n%s", out)
	}
	insMu.Lock()
	t.Logf("APDUs by instruction: %v", ins)
	if ins["C0"] == 0 || ins["47"] == 0 || ins["2A"] != 2 {
		t.Errorf("APDUs by instruction %v: want GET RESPONSE rounds, one GENERATE, two PSO", ins)
	}
	insMu.Unlock()
	if st := sim.State(); st.SigCount != 2 || st.PW1Tries != 3 {
		t.Errorf("card after the guest: %d signatures (want 2: self-signature, manifest), %d user PIN tries (want 3)", st.SigCount, st.PW1Tries)
	}
}

// fileFromLog cuts a file the guest printed between markers.
func fileFromLog(t *testing.T, log, name string) string {
	t.Helper()
	begin, end := "CARDTEST-FILE-BEGIN "+name+"\n", "\nCARDTEST-FILE-END "+name
	i := strings.Index(log, begin)
	j := strings.Index(log, end)
	if i < 0 || j < i {
		t.Fatalf("guest did not print %s", name)
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(log[i+len(begin) : j]))
	if err != nil {
		t.Fatalf("%s as printed by the guest: %v", name, err)
	}
	return string(b)
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
