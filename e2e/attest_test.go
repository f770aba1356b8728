//go:build e2e

package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glint-boot/glint/internal/attest"
	"github.com/glint-boot/glint/internal/attest/client"
	"github.com/glint-boot/glint/internal/attest/server"
	"github.com/glint-boot/glint/internal/attest/store"
	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/tpm"
)

// Network-bound disk unlock on the emulated laptop (a server, disk.unlock = unattended): real
// coreboot (TPM 2.0), glint's payload with a virtio network card on QEMU's user network, and a
// real glint attestation server on the host (SQLite, TLS with a pinned key) that the guest
// reaches at 10.0.2.2. The owner configuration in CBFS names the server and its pin:
//
//	A0  set-up, then the installed OS enrols the TPM (credential activation), the
//	    administrator approves it and its measurements, and `glint disk seal --network` binds
//	    the LUKS key to the server's half (released only after a trusted quote)
//	A1  first unattended boot: the payload's quote (PCR 4 before "leaving glint") is not yet
//	    approved: CHANGED, no half, no unlock, the server stops; the administrator approves
//	    these boot-time measurements
//	A2  server up, good quote: the payload gets the half, the root unlocks with no prompt
//	A3  server down: no half, no unlock, the server stops
//	A4  firmware tampered: the TPM keeps its half, the server records CHANGED (PCR 2), no unlock
//
// Transcripts in out/e2e/coreboot-tpm2-attest/.

// attestBench is the machine, its LUKS OS and the attestation server it talks to.
type attestBench struct {
	luksBench
	store *store.Store
	srv   *server.Server
	pin   string
	port  int
	cert  tls.Certificate
	mu    sync.Mutex
	l     net.Listener
	stop  context.CancelFunc
	// learn: approve the next report judged "unknown" as golden (the robot admin).
	learn bool
}

// attestRootInit is the OS's PID 1: as luksRootInit, but it enrols with the attestation
// server named on the kernel command line (e2e_attest=URL,PIN) and seals a network-bound key.
const attestRootInit = `#!/bin/busybox sh
bb=/bin/busybox
export PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
$bb mount -t proc proc /proc
$bb mount -t sysfs sysfs /sys
$bb mount -t devtmpfs devtmpfs /dev
$bb mount -t tmpfs tmpfs /run
$bb mount -t tmpfs tmpfs /tmp
echo "GLINT-E2E-LUKS-ROOT-UP uptime=$($bb cut -d' ' -f1 /proc/uptime)"
for i in 4 6 7; do echo "E2E-PCR sha256 $i $($bb cat /sys/class/tpm/tpm0/pcr-sha256/$i 2>/dev/null)"; done
$bb mkdir -p /run/boot
if $bb mount -t ext4 -o ro /dev/vda1 /run/boot; then
  if [ ! -e /run/boot/glint/sealed/disk.json ]; then
    echo "E2E-SEAL: no sealed disk key on /boot: enrolling network-bound unlock"
    attest=$($bb sed -n 's/.*e2e_attest=\([^ ]*\).*/\1/p' /proc/cmdline)
    url=${attest%%,*}; pin=${attest#*,}
    for m in failover net_failover virtio_net; do $bb insmod /lib/modules/$m.ko 2>/dev/null; done
    $bb sleep 1
    ifc=$($bb ls /sys/class/net | $bb grep -v '^lo$' | $bb head -n 1)
    $bb ip link set lo up; $bb ip link set "$ifc" up
    $bb ip addr add 10.0.2.15/24 dev "$ifc"; $bb ip route add default via 10.0.2.2
    glint --tpm /dev/tpmrm0 attest enroll --server "$url" --pin "$pin" --state /run/attest.json 2>&1
    echo "E2E-ATTEST-ENROLLED"
    n=0
    until glint --tpm /dev/tpmrm0 attest report --state /run/attest.json; do
      n=$((n+1)); [ $n -ge 120 ] && break; $bb sleep 1
    done
    $bb mount -o remount,rw /run/boot
    glint --tpm /dev/tpmrm0 --boot /run/boot disk seal --network --attest-state /run/attest.json \
      --passphrase-file /etc/luks-pass --name root_crypt /dev/vdb 2>&1
    echo "E2E-SEAL-RC $?"
    $bb sync
  fi
  $bb umount /run/boot || echo "E2E: umount /boot failed"
fi
$bb sync
echo E2E-LUKS-OS-DONE
$bb poweroff -f
`

func TestAttestScenarios(t *testing.T) {
	needTools(t, CorebootTPM2)
	top := repoRoot(t)
	ver := kernelVersion(t, top)
	mods := filepath.Join(top, "cache", "kernel", "modules", ver, "kernel")
	o := buildLUKSOSWith(t, top, "e2e-luks-attest", attestRootInit, map[string]string{
		filepath.Join(mods, "net", "core", "failover.ko"):        "lib/modules/failover.ko",
		filepath.Join(mods, "drivers", "net", "net_failover.ko"): "lib/modules/net_failover.ko",
		filepath.Join(mods, "drivers", "net", "virtio_net.ko"):   "lib/modules/virtio_net.ko",
	})
	name := string(CorebootTPM2) + "-attest"
	m := NewMachine(t, CorebootTPM2, name)
	b := &attestBench{luksBench: luksBench{bench: bench{m: m}, os: o, disk: filepath.Join(m.Dir, "root.img"), stick: m.Stick}}
	b.startServer(t)
	url := fmt.Sprintf("https://10.0.2.2:%d", b.port)
	cfg := filepath.Join(m.Dir, "config")
	must(t, os.WriteFile(cfg, []byte(fmt.Sprintf("# glint owner configuration: a server bound to its attestation server\n"+
		"disk.unlock = unattended\nattest.server = %s\nattest.pin = %s\n", url, b.pin)), 0o644))
	must(t, cbfsAdd(m.ROM, cfg, "glint/config"))
	m.QEMUArgs = []string{"-nic", "user,model=virtio-net-pci"}
	populateLUKSBoot(t, top, m.BootDir, o)
	grub := filepath.Join(m.BootDir, "grub", "grub.cfg")
	g := readFile(t, grub)
	writeFile(t, grub, []byte(strings.Replace(string(g), "e2e_entry=luks", "e2e_entry=luks e2e_attest="+url+","+b.pin, 1)))
	must(t, copyFile(o.root, b.disk))

	rows := []struct {
		name string
		run  func(t *testing.T, b *attestBench)
	}{
		{"A0-setup-enrol-seal-network-bound", attestRowSetup},
		{"A1-boot-measurements-not-yet-approved", attestRowNotApproved},
		{"A2-server-up-good-quote-unlocks", attestRowUnlock},
		{"A3-server-down-no-unlock", attestRowServerDown},
		{"A4-firmware-tampered-no-unlock", attestRowTampered},
	}
	for i, row := range rows {
		ok := t.Run(row.name, func(t *testing.T) { row.run(t, b) })
		if i == 0 && !ok {
			t.Fatalf("set-up failed: the other rows need an enrolled machine with a network-bound key")
		}
	}
}

// startServer runs the attestation server on 127.0.0.1 (QEMU's user network maps the guest's
// 10.0.2.2 to it), with an administrator robot that approves enrolments and, when asked,
// learns an "unknown" report's measurements as golden.
func (b *attestBench) startServer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	b.stop = cancel
	t.Cleanup(cancel)
	s, err := store.Open(ctx, "sqlite:"+filepath.Join(b.m.Dir, "attest.db"))
	must(t, err)
	t.Cleanup(func() { s.Close() })
	key := make([]byte, 32)
	rand.Read(key)
	logf, err := os.Create(filepath.Join(b.m.Dir, "attest-server.log"))
	must(t, err)
	t.Cleanup(func() { logf.Close() })
	srv, err := server.New(ctx, s, server.Config{UnlockKey: key, Log: log.New(logf, "", log.LstdFlags),
		ReportsPerDevice: server.Rate{Every: time.Millisecond, Burst: 1000}})
	must(t, err)
	b.store, b.srv = s, srv
	pk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "glint e2e attestation server"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IPAddresses: []net.IP{net.IPv4(10, 0, 2, 2)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &pk.PublicKey, pk)
	must(t, err)
	leaf, _ := x509.ParseCertificate(der)
	b.cert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: pk, Leaf: leaf}
	b.pin = client.PinOf(leaf)
	b.listen(t)
	go b.robot(ctx, t)
}

// listen (re)opens the server's port.
func (b *attestBench) listen(t *testing.T) {
	addr := "127.0.0.1:0"
	if b.port != 0 {
		addr = fmt.Sprintf("127.0.0.1:%d", b.port)
	}
	l, err := net.Listen("tcp", addr)
	must(t, err)
	b.port = l.Addr().(*net.TCPAddr).Port
	b.mu.Lock()
	b.l = l
	b.mu.Unlock()
	go b.srv.Serve(context.Background(), l, &tls.Config{Certificates: []tls.Certificate{b.cert}})
}

// down closes the server's port (the server is unreachable).
func (b *attestBench) down() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.l.Close()
}

func (b *attestBench) robot(ctx context.Context, t *testing.T) {
	for ctx.Err() == nil {
		time.Sleep(300 * time.Millisecond)
		devs, err := b.store.Devices(ctx, "", 100)
		if err != nil {
			continue
		}
		for _, d := range devs {
			if d.Status == store.StatusPending {
				b.store.SetStatus(ctx, d.Row, store.StatusApproved, "e2e admin", time.Now())
			}
			b.mu.Lock()
			learn := b.learn
			b.mu.Unlock()
			if learn && d.Status == store.StatusApproved && d.LastVerdict == "unknown" {
				if err := b.learnGolden(ctx, &d); err == nil {
					b.mu.Lock()
					b.learn = false
					b.mu.Unlock()
				}
			}
		}
	}
}

// learnGolden approves the device's latest report as its model's golden set (what the
// dashboard's "approve its latest measurements" does; the dashboard itself is tested in
// internal/attest/server).
func (b *attestBench) learnGolden(ctx context.Context, d *store.Device) error {
	hist, err := b.store.Reports(ctx, d.Row, 1)
	if err != nil || len(hist) == 0 {
		return fmt.Errorf("no report")
	}
	rep := hist[0]
	pcrs, err := store.DecodePCRs(rep.PCRs)
	if err != nil {
		return err
	}
	keep := map[int][]byte{}
	for _, p := range attest.QuotedPCRs {
		keep[p] = pcrs[p]
	}
	g := &attest.Golden{Model: d.Model, Label: fmt.Sprintf("%s (report %d)", rep.Firmware, rep.ID), Bank: tpm.Alg(rep.Bank), PCRs: keep, Source: "e2e admin"}
	if raw, err := b.store.EventLog(ctx, rep.LogSHA256); err == nil {
		if l, err := eventlog.Parse(raw); err == nil {
			g.Events = l.Records(g.Bank)
		}
	}
	_, err = b.store.AddGolden(ctx, g, "e2e admin", time.Now())
	return err
}

func (b *attestBench) setLearn() {
	b.mu.Lock()
	b.learn = true
	b.mu.Unlock()
}

func (b *attestBench) lastVerdict(t *testing.T) string {
	devs, err := b.store.Devices(context.Background(), "", 10)
	must(t, err)
	if len(devs) != 1 {
		t.Fatalf("%d devices enrolled, want 1", len(devs))
	}
	return devs[0].LastVerdict
}

// A0: owner set-up; then the OS (no key sealed yet, the passphrase typed) enrols with the
// server, reports until its measurements are approved, and seals a network-bound key.
func attestRowSetup(t *testing.T, b *attestBench) {
	m := b.m
	m.Stick = b.stick
	r := m.Boot(t, "A0-setup")
	expect(t, r, `glint: boot flow starting`, toGlint)
	expect(t, r, `OWNER SET-UP`, toStep)
	expect(t, r, `Owner key passphrase:`, toStep)
	must(t, r.Send(m.Owner.Passphrase))
	expect(t, r, `Sign /boot as listed above\? \[y/N\] `, toStep)
	must(t, r.Send("y"))
	got := expect(t, r, `(otpauth://totp/\S+)\n|SET-UP FAILED`, toStep)
	if got[1] == "" {
		t.Fatalf("set-up failed:\n%s", r.All())
	}
	b.uri = got[1]
	expect(t, r, `Set-up complete\. Press Enter to reboot\.`, toStep)
	must(t, r.Send(""))
	r.Wait(t, toStopped)

	m.Stick = b.disk
	b.setLearn() // the OS's first report is unknown: the administrator approves it
	r = m.Boot(t, "A0-first-os-boot-enrol-seal")
	expect(t, r, `glint: boot flow starting`, toGlint)
	b.expectTOTP(t, r)
	expect(t, r, `/boot: verified`, toStep)
	// not enrolled yet: the payload's report is refused, the boot goes on
	expect(t, r, `attestation: no report to `, toStep)
	expect(t, r, `glint: kexec `, toStep)
	expect(t, r, regexp.QuoteMeta(luksAskPrompt), toOS)
	must(t, r.Send(b.os.passphrase))
	expect(t, r, luksRootUp, toOS)
	expect(t, r, `E2E-ATTEST-ENROLLED`, toStep)
	expect(t, r, `trusted: PCRs match the approved measurements`, 3*toStep)
	expect(t, r, `network-bound: the key also needs`, toStep)
	g := expect(t, r, `E2E-SEAL-RC (\d+)\s`, toStep)
	if g[1] != "0" {
		t.Fatalf("glint disk seal --network failed (rc %s):\n%s", g[1], r.All())
	}
	expect(t, r, `E2E-LUKS-OS-DONE`, toStep)
	r.Wait(t, toStopped)
	rec := readFile(t, filepath.Join(m.BootDir, luksSealedRecord))
	if !strings.Contains(string(rec), "attest.server") {
		t.Fatalf("the disk record is not network-bound:\n%s", rec)
	}
}

// expectStopped: an unattended server withholds the key, says why, and stops at the menu.
func (b *attestBench) expectStopped(t *testing.T, r *Run) string {
	expect(t, r, `DISK KEY WITHHELD`, toStep)
	why := expect(t, r, `disk key: (.*)\n`, toStep)
	expect(t, r, `unattended mode: not booting without the disk key`, toStep)
	expect(t, r, `glint> `, toStep)
	for _, bad := range []string{"glint: kexec", "disk unlock key released", luksRootUp} {
		if strings.Contains(r.All(), bad) {
			t.Errorf("the server was on its way to boot: %q seen", bad)
		}
	}
	return why[1]
}

// A1: the payload's measurements differ from the OS's (PCR 4 has not yet been moved on by
// "leaving glint"): no half until the administrator approves them.
func attestRowNotApproved(t *testing.T, b *attestBench) {
	r := b.m.Boot(t, "A1-not-yet-approved")
	expect(t, r, `glint: boot flow starting`, toGlint)
	b.expectTOTP(t, r)
	expect(t, r, `/boot: verified`, toStep)
	expect(t, r, `ATTESTATION: CHANGED`, toStep)
	why := b.expectStopped(t, r)
	if !strings.Contains(why, "did not release") {
		t.Errorf("the refusal does not say the server withheld its half: %s", why)
	}
	r.Screenshot(t, "A1-not-approved")
	must(t, r.Send("p"))
	r.Wait(t, toStopped)
	// The administrator approves the boot-time measurements of this machine.
	dev, err := b.store.Devices(context.Background(), "", 1)
	must(t, err)
	must(t, b.learnGolden(context.Background(), &dev[0]))
}

// A2: server up, quote matches the approved boot-time measurements: the half is released, the
// Debian initramfs opens the root with the combined key, no prompt.
func attestRowUnlock(t *testing.T, b *attestBench) {
	r := b.m.Boot(t, "A2-unlock")
	start := time.Now()
	expect(t, r, `glint: boot flow starting`, toGlint)
	b.expectTOTP(t, r)
	expect(t, r, `/boot: verified`, toStep)
	expect(t, r, `ATTESTATION: TRUSTED`, toStep)
	expect(t, r, `disk unlock key released for LUKS volume `+regexp.QuoteMeta(b.os.uuid), toStep)
	expect(t, r, `glint: kexec `, toStep)
	g := expect(t, r, `(Please unlock disk)|`+luksRootUp, toOS)
	if g[1] != "" {
		r.Stop(t)
		t.Fatalf("the initramfs asked for the passphrase although glint released the network-bound key")
	}
	expect(t, r, `E2E-LUKS-OS-DONE`, toStep)
	r.Wait(t, toStopped)
	if v := b.lastVerdict(t); v != "trusted" {
		t.Errorf("the server's last verdict is %q", v)
	}
	t.Logf("power-on to the LUKS root up, through the attestation server: %.1f s", time.Since(start).Seconds())
}

// A3: the attestation server is unreachable (a stolen server): the TPM's half alone does not
// open the disk; the machine stops.
func attestRowServerDown(t *testing.T, b *attestBench) {
	b.down()
	defer b.listen(t)
	r := b.m.Boot(t, "A3-server-down")
	expect(t, r, `glint: boot flow starting`, toGlint)
	b.expectTOTP(t, r)
	expect(t, r, `/boot: verified`, toStep)
	why := b.expectStopped(t, r)
	if !strings.Contains(why, "attestation server") {
		t.Errorf("the refusal does not name the attestation server: %s", why)
	}
	must(t, r.Send("p"))
	r.Wait(t, toStopped)
}

// A4: the flash image is changed (the payload re-added with its arguments reordered, as row 8):
// PCR 2 moves, the TPM keeps its secrets (the disk key's half among them), the machine stops at
// the menu and tells the server, which records CHANGED naming PCR 2.
func attestRowTampered(t *testing.T, b *attestBench) {
	backup := b.m.ROM + ".good"
	must(t, copyFile(b.m.ROM, backup))
	defer func() { must(t, os.Rename(backup, b.m.ROM)) }()
	// The kernel and initrd this ROM was built with (scripts/build-coreboot.sh keeps them beside
	// it in out/; the shared coreboot build tree may hold another checkout's by now).
	work := filepath.Join(b.m.Top, "out", string(b.m.Firmware)+".rom.payload")
	must(t, run("cbfstool", b.m.ROM, "remove", "-n", "fallback/payload"))
	must(t, run("cbfstool", b.m.ROM, "add-payload", "-n", "fallback/payload",
		"-f", filepath.Join(work, "vmlinuz"), "-I", filepath.Join(work, "initrd"),
		"-C", strings.Replace(kernelCmdline, "quiet panic=-1", "panic=-1 quiet", 1)))
	r := b.m.Boot(t, "A4-firmware-tampered")
	expect(t, r, `glint: boot flow starting`, toGlint)
	// the TPM keeps its secrets: the TOTP secret (and the disk key's half) stay sealed
	expect(t, r, `TOTP: unavailable: the TPM refused`, toStep)
	expect(t, r, `PROBLEM\(S\) FOUND: the default entry will not boot by itself`, toStep)
	// the stopped server reports, so the fleet sees why
	expect(t, r, `ATTESTATION: CHANGED`, toStep)
	expect(t, r, `glint> `, toStep)
	r.Screenshot(t, "A4-tampered")
	for _, bad := range []string{"glint: kexec", "disk unlock key released", luksRootUp} {
		if strings.Contains(r.All(), bad) {
			t.Errorf("a tampered server was on its way to boot: %q seen", bad)
		}
	}
	must(t, r.Send("p"))
	r.Wait(t, toStopped)
	if v := b.lastVerdict(t); v != "changed" {
		t.Errorf("the server's last verdict is %q, want changed", v)
	}
	devs, _ := b.store.Devices(context.Background(), "", 1)
	hist, _ := b.store.Reports(context.Background(), devs[0].Row, 1)
	if len(hist) == 0 || !strings.Contains(hist[0].Summary, "PCR 2") {
		t.Errorf("the server's record does not name PCR 2: %+v", hist)
	}
}
