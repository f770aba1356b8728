//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Timeouts under TCG on a 2-core CI machine (docs: emulation facts): power-on to glint ~5-25 s,
// a kexec hop ~10 s more. Generous, because a loaded host slows everything.
const (
	toGlint   = 120 * time.Second // power-on to a line of the boot flow
	toStep    = 90 * time.Second  // one step of the flow (sign, seal, verify)
	toOS      = 120 * time.Second // kexec to the OS marker
	toStopped = 60 * time.Second  // last line to QEMU exiting
)

// scenario is one row of the table: it runs on a machine in a known-good, owned state (after
// row 1) and leaves it so.
type scenario struct {
	name string
	run  func(t *testing.T, b *bench)
}

// bench is one machine running the table, with what the rows learn along the way.
type bench struct {
	m         *Machine
	uri       string // otpauth URI shown at set-up
	normalPCR string // PCR 4 the OS saw after a normal verified boot
	v1        map[string][]byte
}

// coreboot rows: the table.
var corebootRows = []scenario{
	{"01-first-boot-setup-totp-kexec", rowFirstBoot},
	{"02-kernel-modified", rowTamperFile("vmlinuz")},
	{"03-initrd-modified", rowTamperFile("initrd.img")},
	{"04-grub-cfg-extra-argument", rowGrubArg},
	{"05-file-added", rowFileAdded},
	{"06-manifest-signature-broken", rowBadSignature},
	{"07-rollback-older-manifest", rowRollback},
	{"08-firmware-cbfs-changed", rowFirmwareChanged},
	{"09-tpm-cleared", rowTPMCleared},
	{"10-recovery-shell-locks-secrets", rowRecovery},
	{"11-kernel-update-resign", rowKernelUpdate},
	{"12-wrong-clock", rowWrongClock},
}

var ovmfRows = []scenario{
	{"01-first-boot-setup-totp-kexec", rowFirstBoot},
	{"02-kernel-modified", rowTamperFile("vmlinuz")},
	{"08-uefi-secure-boot-keys-enrolled", rowOVMFVarsChanged},
}

func TestScenarios(t *testing.T) {
	parallel := os.Getenv("GLINT_E2E_SERIAL") == "" // set it for clean per-boot timings
	for _, v := range []struct {
		fw   Firmware
		rows []scenario
	}{{CorebootTPM2, corebootRows}, {CorebootTPM1, corebootRows}, {OVMF, ovmfRows}} {
		t.Run(string(v.fw), func(t *testing.T) {
			// one machine per firmware; two run at a time on a 2-core machine (go test
			// -parallel defaults to GOMAXPROCS), each QEMU (TCG) keeps one core busy
			if parallel {
				t.Parallel()
			}
			needTools(t, v.fw)
			b := &bench{m: NewMachine(t, v.fw, string(v.fw))}
			for i, row := range v.rows {
				ok := t.Run(row.name, func(t *testing.T) { row.run(t, b) })
				if i == 0 && !ok {
					t.Fatalf("set-up failed: the other rows need an owned machine")
				}
			}
		})
	}
}

// ---- the rows -------------------------------------------------------------------------

// Row 1: an unowned machine sets itself up with the owner's key from the stick, shows the
// TOTP enrolment, reboots, shows the right code, verifies /boot and kexecs the OS.
func rowFirstBoot(t *testing.T, b *bench) {
	r := b.m.Boot(t, "01-setup")
	expect(t, r, `glint: boot flow starting`, toGlint)
	expect(t, r, `OWNER SET-UP`, toStep)
	expect(t, r, `Owner key passphrase:`, toStep)
	must(t, r.Send(b.m.Owner.Passphrase))
	b.confirmSign(t, r)
	// \n: a match must not end where a read ended, in the middle of the URI
	got := expect(t, r, `(otpauth://totp/\S+)\n|SET-UP FAILED`, toStep)
	if got[1] == "" {
		expect(t, r, `glint> `, toStep) // the reason is printed before the menu
		t.Fatalf("set-up failed:\n%s", r.All())
	}
	b.uri = got[1]
	r.Screenshot(t, "setup-enrolment")
	expect(t, r, `Set-up complete\. Press Enter to reboot\.`, toStep)
	must(t, r.Send(""))
	r.Wait(t, toStopped)
	b.v1 = snapshot(t, b.m.BootDir, "glint/manifest", "glint/manifest.sig")

	r = b.m.Boot(t, "01-first-verified-boot")
	b.expectGoodBoot(t, r, "e2e_entry=default")
}

// Rows 2, 3: a file glint verified is changed behind its back.
func rowTamperFile(prefix string) func(t *testing.T, b *bench) {
	return func(t *testing.T, b *bench) {
		path := findBootFile(t, b.m.BootDir, prefix)
		orig := readFile(t, path)
		defer writeFile(t, path, orig)
		changed := bytes.Clone(orig)
		// one bit in the middle: same size, so only the hash tells
		changed[len(changed)/2] ^= 0x01
		writeFile(t, path, changed)
		b.expectRefusal(t, "tamper-"+prefix, true, regexp.QuoteMeta(filepath.Base(path)))
	}
}

// Row 4: an extra kernel argument (the classic init=/bin/sh) in grub.cfg.
func rowGrubArg(t *testing.T, b *bench) {
	path := filepath.Join(b.m.BootDir, "grub", "grub.cfg")
	orig := readFile(t, path)
	defer writeFile(t, path, orig)
	writeFile(t, path, bytes.Replace(orig, []byte("e2e_entry=default"), []byte("e2e_entry=default init=/bin/sh"), 1))
	b.expectRefusal(t, "grub-cfg", true, `grub/grub\.cfg`)
}

// Row 5: a file nobody signed appears in /boot.
func rowFileAdded(t *testing.T, b *bench) {
	path := filepath.Join(b.m.BootDir, "evil-maid.efi")
	writeFile(t, path, []byte("not signed by the owner\n"))
	defer os.Remove(path)
	b.expectRefusal(t, "file-added", true, `evil-maid\.efi`)
}

// Row 6: the manifest no longer matches its signature.
func rowBadSignature(t *testing.T, b *bench) {
	path := filepath.Join(b.m.BootDir, "glint", "manifest")
	orig := readFile(t, path)
	defer writeFile(t, path, orig)
	// flip one hex digit of the first file hash: the text still parses, the signature fails
	re := regexp.MustCompile(`[0-9a-f]{64}`)
	loc := re.FindIndex(orig)
	if loc == nil {
		t.Fatalf("no SHA-256 in the manifest:\n%s", orig)
	}
	changed := bytes.Clone(orig)
	if changed[loc[0]] == '0' {
		changed[loc[0]] = '1'
	} else {
		changed[loc[0]] = '0'
	}
	writeFile(t, path, changed)
	b.expectRefusal(t, "bad-signature", true, `(?i)signature`)
}

// Row 7: the owner re-signs (counter goes up); an attacker puts the older, validly signed
// manifest back.
func rowRollback(t *testing.T, b *bench) {
	r := b.m.Boot(t, "07-resign")
	b.expectTOTP(t, r)
	expect(t, r, `/boot: verified`, toStep)
	expect(t, r, `press Enter for the menu`, toStep)
	must(t, r.Send(""))
	b.resign(t, r)
	expect(t, r, `glint> `, toStep)
	must(t, r.Send("p"))
	r.Wait(t, toStopped)

	v2 := snapshot(t, b.m.BootDir, "glint/manifest", "glint/manifest.sig")
	if bytes.Equal(v2["glint/manifest"], b.v1["glint/manifest"]) {
		t.Fatal("re-signing did not change the manifest")
	}
	restore(t, b.m.BootDir, b.v1)
	defer restore(t, b.m.BootDir, v2)
	b.expectRefusal(t, "rollback", true, `(?i)rollback`)
}

// Row 8 (coreboot): the flash image is changed. The payload is re-added with its kernel
// arguments in another order (same size, so it fits the freed CBFS slot: glint/owner.asc sits
// right behind it), so coreboot measures different bytes for fallback/payload into PCR 2.
func rowFirmwareChanged(t *testing.T, b *bench) {
	backup := b.m.ROM + ".good"
	must(t, copyFile(b.m.ROM, backup))
	defer func() { must(t, os.Rename(backup, b.m.ROM)) }()
	// the kernel and initrd this ROM was built with (scripts/build-coreboot.sh keeps them in
	// out/, beside the ROM: the shared cache's build tree may hold another checkout's by now)
	work := filepath.Join(b.m.Top, "out", string(b.m.Firmware)+".rom.payload")
	must(t, run("cbfstool", b.m.ROM, "remove", "-n", "fallback/payload"))
	must(t, run("cbfstool", b.m.ROM, "add-payload", "-n", "fallback/payload",
		"-f", filepath.Join(work, "vmlinuz"), "-I", filepath.Join(work, "initrd"),
		"-C", strings.Replace(kernelCmdline, "quiet panic=-1", "panic=-1 quiet", 1)))
	r := b.m.Boot(t, "08-firmware")
	expect(t, r, `glint: boot flow starting`, toGlint)
	// only glint's words count: coreboot itself logs "PCR-2 ... fallback/payload" earlier
	mark := r.Mark()
	expect(t, r, `TOTP: unavailable: `, toStep)
	expect(t, r, `glint> `, toStep)
	why := r.Since(mark)
	for _, want := range []string{`PCR 2\b|PCR\[ ?2\]|PCRs? [0-9, ]*\b2\b`, `fallback/payload`} {
		if !regexp.MustCompile(want).MatchString(why) {
			t.Errorf("the refusal does not name /%s/; glint said:\n%s", want, why)
		}
	}
	b.noKexec(t, r)
	must(t, r.Send("p"))
	r.Wait(t, toStopped)
}

// Row 9: the TPM is cleared (owner hierarchy reset): sealed secrets and the rollback counter
// are gone. TPM 2.0: a real TPM2_Clear with platform authorisation (tpm2-tools against the
// same swtpm state); TPM 1.2: a factory-fresh TPM state (swtpm_setup) stands in for
// TPM_ForceClear, which needs physical presence.
func rowTPMCleared(t *testing.T, b *bench) {
	backup := b.m.TPMDir + ".good"
	os.RemoveAll(backup)
	must(t, exec.Command("cp", "-a", b.m.TPMDir, backup).Run())
	defer func() {
		must(t, os.RemoveAll(b.m.TPMDir))
		must(t, os.Rename(backup, b.m.TPMDir))
	}()
	if b.m.Firmware.TPM2() {
		must(t, clearTPM2(b.m))
	} else {
		must(t, b.m.manufactureTPM())
	}
	r := b.m.Boot(t, "09-tpm-cleared")
	expect(t, r, `glint: boot flow starting`, toGlint)
	mark := r.Mark()
	expect(t, r, `TOTP: unavailable: `, toStep)
	expect(t, r, `glint> `, toStep)
	if why := r.Since(mark); !regexp.MustCompile(`(?i)cleared`).MatchString(why) {
		t.Errorf("glint does not say the TPM was cleared; it said:\n%s", why)
	}
	b.noKexec(t, r)
	must(t, r.Send("p"))
	r.Wait(t, toStopped)
}

// Row 10: the owner enters the recovery shell; from then on this boot can no longer unseal
// the TOTP secret (PCR 4 left its normal value).
func rowRecovery(t *testing.T, b *bench) {
	r := b.m.Boot(t, "10-recovery")
	b.expectTOTP(t, r)
	expect(t, r, `press Enter for the menu`, toStep)
	must(t, r.Send(""))
	expect(t, r, `glint> `, toStep)
	must(t, r.Send("x"))
	expect(t, r, `Owner key passphrase:`, toStep)
	must(t, r.Send(b.m.Owner.Passphrase))
	expect(t, r, `RECOVERY SHELL`, toStep)
	must(t, r.Send("exit")) // leaves the shell if the payload has one; else an unknown menu choice
	expect(t, r, `glint> `, toStep)
	r.Screenshot(t, "recovery")
	must(t, r.Send("o"))
	expect(t, r, `TOTP: unavailable: `, toStep)
	expect(t, r, `glint> `, toStep)
	must(t, r.Send("p"))
	r.Wait(t, toStopped)
}

// Row 11: a legitimate kernel update (new kernel and initrd, grub.cfg rewritten with the new
// entry on top) is refused until the owner re-signs; then it boots.
func rowKernelUpdate(t *testing.T, b *bench) {
	ver := kernelVersion(t, b.m.Top)
	newVer := strings.Replace(ver, "-56-", "-99-", 1)
	if newVer == ver {
		newVer = ver + "-update"
	}
	dir := b.m.BootDir
	must(t, copyFile(filepath.Join(dir, "vmlinuz-"+ver), filepath.Join(dir, "vmlinuz-"+newVer)))
	must(t, copyFile(filepath.Join(dir, "initrd.img-"+ver), filepath.Join(dir, "initrd.img-"+newVer)))
	cfg := grubCfg(ver, "")
	cfg = strings.Replace(cfg, "set timeout=5\n", "set timeout=5\n"+menuEntry("Debian GNU/Linux", newVer, "console=ttyS0,115200 quiet e2e_entry=updated"), 1)
	writeFile(t, filepath.Join(dir, "grub", "grub.cfg"), []byte(cfg))

	r := b.m.Boot(t, "11-kernel-update")
	b.expectTOTP(t, r)
	expect(t, r, `TAMPER: .*vmlinuz-`+regexp.QuoteMeta(newVer), toStep)
	b.noKexec(t, r)
	b.resign(t, r) // waits for the menu first
	expect(t, r, `glint> `, toStep)
	must(t, r.Send("d"))
	expect(t, r, `glint: kexec `, toStep)
	expect(t, r, markerOS, toOS)
	expect(t, r, `E2E-CMDLINE: .*e2e_entry=updated`, toStep)
	r.Wait(t, toStopped)

	// and the next power-on boots the update by itself
	r = b.m.Boot(t, "11-after-update")
	b.expectGoodBoot(t, r, "e2e_entry=updated")
}

// Row 12: the RTC is far in the past (flat CMOS battery): no TOTP code from a wrong clock,
// and nothing boots by itself. The owner sets the clock from the menu and gets the right code.
func rowWrongClock(t *testing.T, b *bench) {
	b.m.RTC = "2001-01-01"
	defer func() { b.m.RTC = "" }()
	r := b.m.Boot(t, "12-wrong-clock")
	expect(t, r, `glint: boot flow starting`, toGlint)
	expect(t, r, `TOTP: unavailable: .*(?i:clock)`, toStep)
	expect(t, r, `glint> `, toStep)
	b.noKexec(t, r)
	must(t, r.Send("t"))
	expect(t, r, `New UTC time`, toStep)
	must(t, r.Send(time.Now().UTC().Format("2006-01-02 15:04:05")))
	// Issue 15: a clock set by hand locks the TOTP secret for the boot (PCR 4), so nobody
	// collects codes for a time of their choosing; the next boot (the next row, with the
	// RTC right again) shows the code.
	expect(t, r, `clock set to .*locked until the next boot`, toStep)
	expect(t, r, `glint> `, toStep)
	must(t, r.Send("o"))
	expect(t, r, `TOTP REFUSED`, toStep)
	expect(t, r, `glint> `, toStep)
	if strings.Contains(r.All(), "TOTP code:") {
		t.Error("a TOTP code was shown after the clock was set by hand")
	}
	must(t, r.Send("p"))
	r.Wait(t, toStopped)
}

// Row 8 (OVMF): the UEFI variable store changes: Secure Boot keys enrolled (Debian's
// OVMF_VARS with Microsoft's keys). UEFI measures the Secure Boot variables into PCR 7.
func rowOVMFVarsChanged(t *testing.T, b *bench) {
	good := b.m.OVMFVars
	vars := filepath.Join(b.m.Dir, "OVMF_VARS.ms.fd")
	must(t, copyFile(ovmfVarsMS, vars))
	b.m.OVMFVars = vars
	defer func() { b.m.OVMFVars = good }()
	r := b.m.Boot(t, "08-uefi-vars")
	expect(t, r, `glint: boot flow starting`, toGlint)
	mark := r.Mark()
	expect(t, r, `TOTP: unavailable: `, toStep)
	expect(t, r, `glint> `, toStep)
	if why := r.Since(mark); !regexp.MustCompile(`PCR 7\b|PCR\[ ?7\]|PCRs? [0-9, ]*\b7\b`).MatchString(why) {
		t.Errorf("the refusal does not name PCR 7; glint said:\n%s", why)
	}
	b.noKexec(t, r)
	must(t, r.Send("p"))
	r.Wait(t, toStopped)
}

// ---- shared steps -----------------------------------------------------------------------

// expectGoodBoot: right TOTP, /boot verified, countdown, kexec, the OS comes up with the
// expected entry; PCR 4 as the OS sees it is remembered.
func (b *bench) expectGoodBoot(t *testing.T, r *Run, entryMarker string) {
	t.Helper()
	expect(t, r, `glint: boot flow starting`, toGlint)
	b.expectTOTP(t, r)
	expect(t, r, `/boot: verified`, toStep)
	expect(t, r, `Booting default entry .* in \d+ s`, toStep)
	r.Screenshot(t, "countdown")
	expect(t, r, `glint: kexec `, toStep)
	expect(t, r, markerOS, toOS)
	expect(t, r, `E2E-CMDLINE: .*`+regexp.QuoteMeta(entryMarker), toStep)
	if g, err := r.Expect(`E2E-PCR (?:sha256|sha1) 4 ([0-9a-fA-F]+)\n|E2E-PCR12 4 ([0-9A-F ]+)\n`, toStep); err == nil {
		b.normalPCR = g[1] + g[2]
	}
	expect(t, r, `E2E-OS-DONE`, toStep)
	r.Wait(t, toStopped)
}

// expectRefusal boots the tampered machine: glint must name every pattern in TAMPER lines,
// must not boot by itself, and the menu must come up; the test powers off from the menu.
func (b *bench) expectRefusal(t *testing.T, scen string, totpStillOK bool, names ...string) {
	t.Helper()
	r := b.m.Boot(t, scen)
	expect(t, r, `glint: boot flow starting`, toGlint)
	if totpStillOK {
		// /boot is not measured: firmware and TPM are unchanged, so the code is still right
		b.expectTOTP(t, r)
	}
	for _, n := range names {
		expect(t, r, `TAMPER: .*`+n, toStep)
	}
	expect(t, r, `glint> `, toStep)
	r.Screenshot(t, scen)
	b.noKexec(t, r)
	must(t, r.Send("p"))
	r.Wait(t, toStopped)
}

// noKexec fails if glint started to hand over (or counted down to it) in this boot.
func (b *bench) noKexec(t *testing.T, r *Run) {
	t.Helper()
	all := r.All()
	for _, bad := range []string{"glint: kexec", "Booting default entry", markerOS} {
		if strings.Contains(all, bad) {
			t.Errorf("tampered content was on its way to boot: %q seen", bad)
		}
	}
}

// expectTOTP checks the code glint shows against oathtool's (an independent implementation)
// for the enrolled secret at host time, allowing one 30 s step either way.
func (b *bench) expectTOTP(t *testing.T, r *Run) {
	t.Helper()
	g := expect(t, r, `TOTP code: (\d{6,8})\s`, toStep)
	now := time.Now()
	want, err := totpCodes(b.uri, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		if w == g[1] {
			return
		}
	}
	t.Errorf("TOTP code %s is not oathtool's %v for the enrolled secret at %s", g[1], want, now.UTC().Format(time.RFC3339))
}

// confirmSign answers glint's "what will be signed" screen (issue 15: nothing is signed
// blind) after checking it is there.
func (b *bench) confirmSign(t *testing.T, r *Run) {
	t.Helper()
	expect(t, r, `--- what will be signed ---`, toStep)
	expect(t, r, `\d+ changed, \d+ added, \d+ removed\.`, toStep)
	expect(t, r, `Sign /boot as listed above\? \[y/N\] `, toStep)
	must(t, r.Send("y"))
}

func (b *bench) resign(t *testing.T, r *Run) {
	t.Helper()
	expect(t, r, `glint> `, toStep)
	must(t, r.Send("s"))
	expect(t, r, `Owner key passphrase:`, toStep)
	must(t, r.Send(b.m.Owner.Passphrase))
	b.confirmSign(t, r)
	expect(t, r, `/boot signed: \d+ files, rollback counter \d+`, toStep)
	expect(t, r, `/boot: verified`, toStep)
}

// totpCodes returns the codes for now-30s, now, now+30s computed by oathtool from the
// otpauth URI (Key Uri Format: secret, algorithm, digits, period).
func totpCodes(uri string, now time.Time) ([]string, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("otpauth URI %q: %w", uri, err)
	}
	q := u.Query()
	secret := q.Get("secret")
	if secret == "" {
		return nil, fmt.Errorf("otpauth URI %q has no secret", uri)
	}
	alg := strings.ToLower(q.Get("algorithm"))
	if alg == "" {
		alg = "sha1"
	}
	digits := q.Get("digits")
	if digits == "" {
		digits = "6"
	}
	period := q.Get("period")
	if period == "" {
		period = "30"
	}
	var codes []string
	for _, d := range []time.Duration{-30 * time.Second, 0, 30 * time.Second} {
		out, err := exec.Command("oathtool", "--totp="+alg, "--base32", "--digits="+digits, "--time-step-size="+period+"s",
			"--now", fmt.Sprintf("@%d", now.Add(d).Unix()), secret).Output()
		if err != nil {
			return nil, fmt.Errorf("oathtool: %w", err)
		}
		codes = append(codes, strings.TrimSpace(string(out)))
	}
	return codes, nil
}

// ---- helpers --------------------------------------------------------------------------

func expect(t *testing.T, r *Run, pattern string, timeout time.Duration) []string {
	t.Helper()
	g, err := r.Expect(pattern, timeout)
	if err != nil {
		r.Screenshot(t, "failed-"+sanitize(t.Name()))
		t.Fatal(err)
	}
	return g
}

func sanitize(s string) string {
	return regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(s, "_")
}

func findBootFile(t *testing.T, dir, prefix string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	must(t, err)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix+"-") && e.Type().IsRegular() {
			return filepath.Join(dir, e.Name())
		}
	}
	t.Fatalf("no %s-* in %s", prefix, dir)
	return ""
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	must(t, err)
	return b
}

func writeFile(t *testing.T, p string, data []byte) {
	t.Helper()
	must(t, os.WriteFile(p, data, 0o644))
}

func snapshot(t *testing.T, dir string, names ...string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, n := range names {
		out[n] = readFile(t, filepath.Join(dir, n))
	}
	return out
}

func restore(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for n, b := range files {
		writeFile(t, filepath.Join(dir, n), b)
	}
}
