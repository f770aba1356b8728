// Package pcscdtest starts a real pcscd whose only reader is vsmartcard's
// vpcd driver with a cardsim card behind it, for tests of everything that
// reaches cards through PC/SC: glint's own client, gpg and scdaemon.
//
// pcscd 1.9 always serves /run/pcscd/pcscd.comm (the path is compiled in;
// only clients honour $PCSCLITE_CSOCK_NAME), so each test's pcscd runs in a
// private mount namespace with its own tmpfs on /run/pcscd (unshare, which
// needs root): it never meets the machine's pcscd or another test's.
// Clients reach it through /proc/PID/root/run/pcscd/pcscd.comm.
package pcscdtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/glint-boot/glint/internal/card/cardsim"
	"github.com/glint-boot/glint/internal/card/pcsc"
)

// VPCDDriver is where Debian's vsmartcard-vpcd puts the pcscd driver.
const VPCDDriver = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"

// PCSCD is a running private pcscd with the simulated card inserted.
type PCSCD struct {
	// Socket is the client socket; give it to clients as
	// PCSCLITE_CSOCK_NAME.
	Socket string
	// Reader is the reader's name as pcscd lists it.
	Reader string
	Log    *bytes.Buffer
}

// Env returns os.Environ with PCSCLITE_CSOCK_NAME pointing at this pcscd.
func (p *PCSCD) Env() []string {
	return append(os.Environ(), "PCSCLITE_CSOCK_NAME="+p.Socket)
}

// Start runs pcscd with a vpcd reader and connects sim to it. It skips the
// test when pcscd, the vpcd driver or unshare are missing, or when not root.
func Start(t testing.TB, sim *cardsim.Card) *PCSCD {
	t.Helper()
	pcscd, err := exec.LookPath("pcscd")
	if err != nil {
		pcscd = "/usr/sbin/pcscd"
	}
	for _, need := range []string{pcscd, VPCDDriver} {
		if _, err := os.Stat(need); err != nil {
			t.Skipf("%s missing (bash scripts/install-deps.sh installs pcscd and vsmartcard-vpcd): %v", need, err)
		}
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skipf("unshare missing (util-linux): %v", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("a private pcscd needs a mount namespace, which needs root")
	}
	port := freePortPair(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "reader.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("FRIENDLYNAME \"glint cardsim\"\nDEVICENAME /dev/null:%d\nLIBPATH %s\nCHANNELID %d\n", port, VPCDDriver, port)), 0o644); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("mkdir -p /run/pcscd && mount -t tmpfs -o mode=0755 glint-pcscd /run/pcscd && exec %s --foreground --debug -c %s", pcscd, conf)
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	log := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &PCSCD{Socket: fmt.Sprintf("/proc/%d/root/run/pcscd/pcscd.comm", cmd.Process.Pid), Log: log}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- sim.ServeVPCD(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(port))) }()
	t.Cleanup(func() {
		cancel()
		<-served
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("pcscd log:\n%s", tail(log.String(), 40))
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		if name, ok := cardReader(p.Socket); ok {
			p.Reader = name
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("pcscd did not show the simulated card within 15 s; log:\n%s", tail(log.String(), 40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func cardReader(socket string) (string, bool) {
	c, err := pcsc.Dial(socket)
	if err != nil {
		return "", false
	}
	defer c.Close()
	rs, err := c.Readers()
	if err != nil {
		return "", false
	}
	for _, r := range rs {
		if r.CardPresent {
			return r.Name, true
		}
	}
	return "", false
}

// freePortPair finds a TCP port p with p+1 free too: vpcd opens two slots.
func freePortPair(t testing.TB) int {
	for i := 0; i < 50; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+1))
		l.Close()
		if err == nil {
			l2.Close()
			return port
		}
	}
	t.Fatal("no free pair of TCP ports")
	return 0
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
