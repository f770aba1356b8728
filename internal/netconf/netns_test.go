package netconf

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A real DHCP server (busybox udhcpd) on one end of a veth pair, glint's
// client on the other, each in a network namespace of its own that the test
// makes and removes: the lease is what the server hands out, and the
// address and default route end up on the interface.
func TestUpAgainstUdhcpd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	for _, tool := range []string{"ip", "busybox"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	var r [3]byte
	rand.Read(r[:])
	id := hex.EncodeToString(r[:])
	srv, cli := "glint-dhs-"+id, "glint-dhc-"+id
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	run("ip", "netns", "add", srv)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", srv).Run() })
	run("ip", "netns", "add", cli)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", cli).Run() })
	run("ip", "link", "add", "vs"+id, "type", "veth", "peer", "name", "vc"+id)
	run("ip", "link", "set", "vs"+id, "netns", srv)
	run("ip", "link", "set", "vc"+id, "netns", cli)
	run("ip", "-n", srv, "addr", "add", "192.168.77.1/24", "dev", "vs"+id)
	run("ip", "-n", srv, "link", "set", "vs"+id, "up")
	dir := t.TempDir()
	conf := filepath.Join(dir, "udhcpd.conf")
	os.WriteFile(conf, []byte(strings.Join([]string{
		"start 192.168.77.100", "end 192.168.77.110", "interface vs" + id, "lease_file " + filepath.Join(dir, "leases"),
		"option subnet 255.255.255.0", "option router 192.168.77.1", "option dns 192.168.77.53", "option lease 600"}, "\n")+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "leases"), nil, 0o644)
	d := exec.Command("ip", "netns", "exec", srv, "busybox", "udhcpd", "-f", conf)
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Process.Kill(); d.Wait() })

	type result struct {
		lease *Lease
		err   error
	}
	done := make(chan result, 1)
	go func() {
		// setns applies to this OS thread only; it is never unlocked, so
		// Go retires the thread (and its namespace) when this goroutine ends.
		runtime.LockOSThread()
		f, err := os.Open("/var/run/netns/" + cli)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- result{err: err}
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		l, err := Up(ctx, Config{Interface: "vc" + id, ResolvConf: filepath.Join(dir, "resolv.conf")})
		done <- result{lease: l, err: err}
	}()
	res := <-done
	if res.err != nil {
		t.Fatalf("Up: %v", res.err)
	}
	l := res.lease
	if !netip.MustParsePrefix("192.168.77.96/27").Contains(l.Addr.Addr()) || l.Addr.Bits() != 24 ||
		l.Gateway != netip.MustParseAddr("192.168.77.1") || l.Server != netip.MustParseAddr("192.168.77.1") {
		t.Fatalf("lease %s", l)
	}
	out, err := exec.Command("ip", "-n", cli, "-4", "addr", "show", "vc"+id).CombinedOutput()
	if err != nil || !strings.Contains(string(out), l.Addr.String()) {
		t.Fatalf("the address is not on the interface:\n%s", out)
	}
	out, _ = exec.Command("ip", "-n", cli, "route").CombinedOutput()
	if !strings.Contains(string(out), "default via 192.168.77.1") {
		t.Fatalf("no default route:\n%s", out)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "resolv.conf")); string(b) != "nameserver 192.168.77.53\n" {
		t.Fatalf("resolv.conf: %q", b)
	}
	t.Logf("lease: %s", l)
}
