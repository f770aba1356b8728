// Package swtpmtest starts real software TPMs (swtpm) for tests.
//
// Every test that needs a TPM gets its own swtpm process with its own state
// directory, so tests run in parallel and never see each other's PCRs, NV
// indices or lockout counters:
//
//	spec := swtpmtest.Start(t, tpm.Version20) // "swtpm:unix:/tmp/glint-swtpm-.../tpm.sock"
//	dev, err := tpm.Open(spec)
//
// The TPM is manufactured the way a real one leaves the factory (swtpm_setup):
//
//   - TPM 2.0: PCR banks sha1 and sha256 active (what PC Client machines
//     ship with; swtpm's own default is sha256 only), empty hierarchy auths.
//   - TPM 1.2: EK created, ownership taken with the TCG well-known owner and
//     SRK secrets (20 zero bytes), as tpmtotp's "takeown -z" does.
//
// swtpm_setup takes about 0.6-0.9 s, so each family is manufactured once per
// test binary and the resulting state file is copied into each test's fresh
// directory; all swtpms in one run therefore share primary seeds, which is
// harmless for tests.
//
// A "power cycle" is StartDir on the same directory: the running swtpm on
// that directory is killed (like pulling the plug; send TPM2_Shutdown first
// for an orderly one) and a new one started on the same state with
// TPM_Startup(CLEAR), so PCRs reset while NV, counters and seeds survive.
//
// swtpm has no resource manager and only three transient object slots, which
// is stricter than any real TPM behind /dev/tpmrm0: code that leaks a handle
// fails here first.
//
// If swtpm is not installed the test is skipped with a message saying so
// (CI installs it through scripts/install-deps.sh, so nothing skips there).
package swtpmtest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/glint-boot/glint/internal/tpm"
	legacy "github.com/google/go-tpm/tpm"
	"github.com/google/go-tpm/tpmutil"
)

// instance is one running swtpm.
type instance struct {
	cmd      *exec.Cmd
	sockDir  string
	stateDir string
	done     chan struct{}
}

var (
	mu      sync.Mutex
	running = map[string]*instance{} // state dir -> swtpm serving it

	templateOnce  [2]sync.Once
	templateState [2][]byte
	templateErr   [2]error
)

// Start runs a fresh swtpm of family v on a private state directory and
// returns the spec to pass to tpm.Open. It is stopped when the test ends.
func Start(t testing.TB, v tpm.Version) string {
	t.Helper()
	return StartDir(t, v, t.TempDir())
}

// StartDir runs swtpm on dir, manufacturing the TPM there first if dir holds
// no state. If another swtpm started by this package still serves dir, it is
// killed first: together this is a power cycle that keeps NV state.
func StartDir(t testing.TB, v tpm.Version, dir string) string {
	t.Helper()
	return start(t, v, dir, false)
}

// StartTCP is Start with the command channel on a TCP port of 127.0.0.1
// ("swtpm:tcp:127.0.0.1:PORT"), for tools such as tpm2-tools whose swtpm
// TCTI only speaks TCP (TPM2TOOLS_TCTI=swtpm:host=127.0.0.1,port=PORT).
func StartTCP(t testing.TB, v tpm.Version) string {
	t.Helper()
	return start(t, v, t.TempDir(), true)
}

// Stop kills the swtpm serving dir (a power cut), if this package started one.
// Tests do not need to call it: every swtpm is stopped when its test ends.
func Stop(dir string) {
	mu.Lock()
	in := running[dir]
	delete(running, dir)
	mu.Unlock()
	if in != nil {
		in.stop()
	}
}

func start(t testing.TB, v tpm.Version, dir string, useTCP bool) string {
	t.Helper()
	if _, err := exec.LookPath("swtpm"); err != nil {
		t.Skip("swtpm is not installed (apt-get install swtpm swtpm-tools); skipping the test that needs a real TPM")
	}
	if v != tpm.Version12 && v != tpm.Version20 {
		t.Fatalf("swtpmtest: unknown TPM version %d", v)
	}
	Stop(dir)
	if err := manufacture(v, dir); err != nil {
		t.Fatalf("swtpmtest: %v", err)
	}
	sockDir, err := os.MkdirTemp("", "glint-swtpm-") // short: unix socket paths are limited to 108 bytes
	if err != nil {
		t.Fatalf("swtpmtest: %v", err)
	}
	var spec string
	var in *instance
	for attempt := 0; ; attempt++ {
		var server, addr, network string
		var ctrl string
		if useTCP {
			port, err := freePortPair()
			if err != nil {
				t.Fatalf("swtpmtest: %v", err)
			}
			network, addr = "tcp", "127.0.0.1:"+strconv.Itoa(port)
			server = "type=tcp,port=" + strconv.Itoa(port)
			// tpm2-tools' swtpm TCTI expects the control channel on the
			// next port (to set the locality).
			ctrl = "type=tcp,port=" + strconv.Itoa(port+1)
			spec = "swtpm:tcp:" + addr
		} else {
			network, addr = "unix", filepath.Join(sockDir, "tpm.sock")
			server = "type=unixio,path=" + addr
			spec = "swtpm:unix:" + addr
		}
		in, err = launch(v, dir, sockDir, server, ctrl, network, addr)
		if err == nil {
			break
		}
		// A TCP port picked as free can be taken by someone else before swtpm
		// binds it; try another.
		if !useTCP || attempt == 4 {
			os.RemoveAll(sockDir)
			t.Fatalf("swtpmtest: %v", err)
		}
	}
	mu.Lock()
	running[dir] = in
	mu.Unlock()
	t.Cleanup(func() {
		mu.Lock()
		if running[dir] == in {
			delete(running, dir)
		}
		mu.Unlock()
		in.stop()
	})
	return spec
}

func launch(v tpm.Version, dir, sockDir, server, ctrl, network, addr string) (*instance, error) {
	logPath := filepath.Join(sockDir, "swtpm.log")
	args := []string{"socket", "--tpmstate", "dir=" + dir, "--server", server,
		"--flags", "not-need-init,startup-clear", "--log", "file=" + logPath + ",level=1"}
	if ctrl != "" {
		args = append(args, "--ctrl", ctrl)
	}
	if v == tpm.Version20 {
		args = append(args, "--tpm2")
	}
	cmd := exec.Command("swtpm", args...)
	// Own process group, so cleanup reaches anything swtpm forks.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start swtpm: %w", err)
	}
	in := &instance{cmd: cmd, sockDir: sockDir, stateDir: dir, done: make(chan struct{})}
	go func() { cmd.Wait(); close(in.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout(network, addr, time.Second)
		if err == nil {
			c.Close()
			return in, nil
		}
		select {
		case <-in.done:
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("swtpm %v exited at start-up: %s", args, log)
		default:
		}
		if time.Now().After(deadline) {
			in.kill()
			return nil, fmt.Errorf("swtpm did not listen on %s within 10 s: %v", addr, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stop ends swtpm: SIGTERM to its group, SIGKILL if it lingers, then waits so
// the state directory's lock is released before a restart on it.
func (in *instance) stop() {
	in.signal(syscall.SIGTERM)
	select {
	case <-in.done:
	case <-time.After(3 * time.Second):
		in.kill()
	}
	os.RemoveAll(in.sockDir)
}

func (in *instance) kill() {
	in.signal(syscall.SIGKILL)
	<-in.done
}

func (in *instance) signal(sig syscall.Signal) {
	if in.cmd.Process != nil {
		syscall.Kill(-in.cmd.Process.Pid, sig)
	}
}

// freePortPair finds a port p such that p and p+1 are free right now.
func freePortPair() (int, error) {
	for i := 0; i < 20; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		p := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+1))
		l.Close()
		if err == nil {
			l2.Close()
			return p, nil
		}
	}
	return 0, errors.New("no two consecutive free TCP ports on 127.0.0.1")
}

// stateFile is the one file in which swtpm keeps a TPM's permanent state.
func stateFile(v tpm.Version) string {
	if v == tpm.Version20 {
		return "tpm2-00.permall"
	}
	return "tpm-00.permall"
}

// manufacture gives dir a factory-fresh TPM unless it already holds one.
func manufacture(v tpm.Version, dir string) error {
	name := stateFile(v)
	if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
		return nil
	}
	i := 0
	if v == tpm.Version20 {
		i = 1
	}
	templateOnce[i].Do(func() { templateState[i], templateErr[i] = makeTemplate(v) })
	if templateErr[i] != nil {
		return templateErr[i]
	}
	return os.WriteFile(filepath.Join(dir, name), templateState[i], 0o600)
}

// makeTemplate runs swtpm_setup once per test binary and returns the state
// file it produced.
func makeTemplate(v tpm.Version) ([]byte, error) {
	if _, err := exec.LookPath("swtpm_setup"); err != nil {
		return nil, errors.New("swtpm_setup is not installed (apt-get install swtpm-tools)")
	}
	dir, err := os.MkdirTemp("", "glint-swtpm-template-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := setup(v, dir, false); err != nil {
		return nil, err
	}
	return os.ReadFile(filepath.Join(dir, stateFile(v)))
}

// takeOwnership12 takes ownership with the TCG well-known secret (20 zero
// bytes) for owner and SRK. swtpm_setup --owner-well-known cannot do this:
// it stores SHA-1 of the 20 zero bytes instead (swtpm 0.7,
// tpm12_get_ownerpass_digest), which no other tool expects.
func takeOwnership12(dir string) error {
	sockDir, err := os.MkdirTemp("", "glint-swtpm-own-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(sockDir)
	sock := filepath.Join(sockDir, "tpm.sock")
	in, err := launch(tpm.Version12, dir, sockDir, "type=unixio,path="+sock, "", "unix", sock)
	if err != nil {
		return err
	}
	defer in.stop()
	rw, err := tpmutil.OpenTPM(sock)
	if err != nil {
		return err
	}
	defer rw.Close()
	ek, err := legacy.ReadPubEK(rw)
	if err != nil {
		return fmt.Errorf("TPM 1.2 manufacturing: read EK: %w", err)
	}
	var wellKnown legacy.Digest
	if err := legacy.TakeOwnership(rw, wellKnown, wellKnown, ek); err != nil {
		return fmt.Errorf("TPM 1.2 manufacturing: take ownership: %w", err)
	}
	return nil
}
