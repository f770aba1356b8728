//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The disk-unlock chain end to end: real coreboot (TPM 2.0 ROM, owner key in CBFS) -> glint
// verifies /boot, measures the LUKS header into PCR 6, unseals the disk key and appends it
// to the REAL Debian initramfs (cryptsetup-initramfs) -> kexec -> the initramfs opens the
// LUKS2 root with the injected key, without asking. The key is sealed from the installed OS
// with `glint disk seal` (the owner's way), predicting PCR 4 and 6 from coreboot's log.
//
// Machine coreboot-tpm2-luks: virtio disk 1 = /boot, disk 2 = the owner's key stick during
// set-up, then the LUKS root (the owner unplugs the stick after set-up; glint needs it only
// to sign). Transcripts in out/e2e/coreboot-tpm2-luks/. A second machine,
// coreboot-tpm2-luks-server, has `disk.unlock = unattended` in CBFS glint/config.

// luksBench is the LUKS machine with what the rows learn.
type luksBench struct {
	bench
	os    *luksOS
	disk  string // this machine's copy of the LUKS root
	stick string
}

type luksRow struct {
	name string
	run  func(t *testing.T, b *luksBench)
}

// attended (the default): a withheld key means the OS asks for the passphrase.
var luksRows = []luksRow{
	{"L0-setup-and-seal-from-os", luksRowSetup},
	{"L1-verified-boot-unlocks-root", luksRowUnlock},
	{"L2-luks-header-changed-key-withheld", luksRowHeaderChanged},
}

// unattended (servers, `disk.unlock = unattended` in CBFS glint/config from the start: the
// config is measured into PCR 7, so the key is sealed with it in place): a withheld key
// stops the boot.
var luksServerRows = []luksRow{
	{"L0-setup-and-seal-from-os", luksRowSetup},
	{"L3a-unattended-verified-boot-unlocks-root", luksRowUnlock},
	{"L3b-unattended-header-changed-refuses-boot", luksRowServerRefuses},
}

func TestLUKSScenarios(t *testing.T) {
	needTools(t, CorebootTPM2)
	// built once, before the machines start in parallel; each machine takes its own copy
	o := buildLUKSOS(t, repoRoot(t))
	for _, v := range []struct {
		name, config string
		rows         []luksRow
	}{
		{string(CorebootTPM2) + "-luks", "", luksRows},
		{string(CorebootTPM2) + "-luks-server", "# glint owner configuration: a server\ndisk.unlock = unattended\n", luksServerRows},
	} {
		t.Run(v.name, func(t *testing.T) {
			if os.Getenv("GLINT_E2E_SERIAL") == "" {
				t.Parallel()
			}
			top := repoRoot(t)
			m := NewMachine(t, CorebootTPM2, v.name)
			if v.config != "" {
				cfg := filepath.Join(m.Dir, "config")
				must(t, os.WriteFile(cfg, []byte(v.config), 0o644))
				must(t, cbfsAdd(m.ROM, cfg, "glint/config"))
			}
			populateLUKSBoot(t, top, m.BootDir, o)
			b := &luksBench{bench: bench{m: m}, os: o, disk: filepath.Join(m.Dir, "root.img"), stick: m.Stick}
			must(t, copyFile(o.root, b.disk))
			for i, row := range v.rows {
				ok := t.Run(row.name, func(t *testing.T) { row.run(t, b) })
				if i == 0 && !ok {
					t.Fatalf("set-up failed: the other rows need an owned machine with a sealed disk key")
				}
			}
		})
	}
}

// L0: owner set-up as in row 1 (key stick plugged in); then the stick is swapped for the
// LUKS disk and the first OS boot asks for the passphrase (nothing sealed yet); the OS
// enrols TPM unlock with `glint disk seal` and powers off; /boot then holds the record.
func luksRowSetup(t *testing.T, b *luksBench) {
	m := b.m
	m.Stick = b.stick
	r := m.Boot(t, "L0-setup")
	expect(t, r, `glint: boot flow starting`, toGlint)
	expect(t, r, `OWNER SET-UP`, toStep)
	expect(t, r, `Owner key passphrase:`, toStep)
	must(t, r.Send(m.Owner.Passphrase))
	expect(t, r, `Sign /boot as listed above\? \[y/N\] `, toStep) // issue 15: nothing signed blind
	must(t, r.Send("y"))
	got := expect(t, r, `(otpauth://totp/\S+)\n|SET-UP FAILED`, toStep)
	if got[1] == "" {
		expect(t, r, `glint> `, toStep)
		t.Fatalf("set-up failed:\n%s", r.All())
	}
	b.uri = got[1]
	expect(t, r, `Set-up complete\. Press Enter to reboot\.`, toStep)
	must(t, r.Send(""))
	r.Wait(t, toStopped)

	m.Stick = b.disk // the owner unplugs the key stick; the LUKS disk is vdb from now on
	r = m.Boot(t, "L0-first-os-boot-seal")
	expect(t, r, `glint: boot flow starting`, toGlint)
	b.expectTOTP(t, r)
	expect(t, r, `/boot: verified`, toStep)
	expect(t, r, `glint: kexec `, toStep)
	if strings.Contains(r.All(), "disk unlock key released") {
		t.Errorf("glint released a disk key before one was sealed")
	}
	expect(t, r, regexp.QuoteMeta(luksAskPrompt), toOS)
	must(t, r.Send(b.os.passphrase))
	expect(t, r, luksRootUp, toOS)
	expect(t, r, `E2E-SEAL: no sealed disk key`, toStep)
	g := expect(t, r, `E2E-SEAL-RC (\d+)\s`, toStep)
	if g[1] != "0" {
		expect(t, r, `E2E-LUKS-OS-DONE`, toStep)
		t.Fatalf("glint disk seal failed in the OS (rc %s):\n%s", g[1], r.All())
	}
	expect(t, r, `E2E-LUKS-OS-DONE`, toStep)
	r.Wait(t, toStopped)
	if _, err := os.Stat(filepath.Join(m.BootDir, luksSealedRecord)); err != nil {
		t.Fatalf("no %s on /boot after glint disk seal: %v", luksSealedRecord, err)
	}
}

// L1: a verified boot releases the key; the Debian initramfs opens the root without a prompt.
func luksRowUnlock(t *testing.T, b *luksBench) {
	row := t.Name()[strings.LastIndex(t.Name(), "/")+1:]
	r := b.m.Boot(t, row)
	start := time.Now()
	expect(t, r, `glint: boot flow starting`, toGlint)
	b.expectTOTP(t, r)
	expect(t, r, `/boot: verified`, toStep)
	expect(t, r, `disk unlock key released for LUKS volume `+regexp.QuoteMeta(b.os.uuid), toStep)
	expect(t, r, `glint: kexec `, toStep)
	g := expect(t, r, `(Please unlock disk)|`+luksRootUp, toOS)
	if g[1] != "" {
		r.Stop(t)
		t.Fatalf("the Debian initramfs asked for the passphrase although glint released the key")
	}
	// glint extended the LUKS header into PCR 6 before unsealing (the OS sees it)
	if g := expect(t, r, `E2E-PCR sha256 6 ([0-9A-Fa-f]*)\n`, toStep); strings.Trim(g[1], "0") == "" {
		t.Errorf("PCR 6 in the OS is %q: the LUKS header was not measured", g[1])
	}
	expect(t, r, `E2E-LUKS-OS-DONE`, toStep)
	r.Wait(t, toStopped)
	for _, bad := range []string{"Please unlock disk", "E2E-SEAL:", "DISK KEY WITHHELD", "cryptsetup failed"} {
		if strings.Contains(r.All(), bad) {
			t.Errorf("%q in a boot that should unlock by itself", bad)
		}
	}
	t.Logf("%s: power-on to the LUKS root up: %.1f s", b.m.Name, time.Since(start).Seconds())
}

// L2: a keyslot is added to the LUKS header behind glint's back (host cryptsetup): glint
// withholds the key and names the keyslot; attended mode boots anyway, the initramfs asks,
// the owner types the passphrase and the root comes up. The disk is restored afterwards.
func luksRowHeaderChanged(t *testing.T, b *luksBench) {
	restore := b.changeHeader(t)
	defer restore()

	r := b.m.Boot(t, "L2-header-changed")
	expect(t, r, `glint: boot flow starting`, toGlint)
	b.expectTOTP(t, r) // firmware and /boot unchanged: the code is still right
	expect(t, r, `/boot: verified`, toStep)
	expect(t, r, `DISK KEY WITHHELD`, toStep)
	why := expect(t, r, `disk key: (.*)\n`, toStep)
	if !regexp.MustCompile(`keyslot \d+`).MatchString(why[1]) {
		t.Errorf("glint does not name the keyslot change; it said: %s", why[1])
	}
	expect(t, r, `the OS will ask for the disk passphrase`, toStep)
	expect(t, r, `glint: kexec `, toStep)
	expect(t, r, regexp.QuoteMeta(luksAskPrompt), toOS)
	must(t, r.Send(b.os.passphrase))
	expect(t, r, luksRootUp, toOS)
	expect(t, r, `E2E-LUKS-OS-DONE`, toStep)
	r.Wait(t, toStopped)
	if strings.Contains(r.All(), "disk unlock key released") {
		t.Errorf("glint released the disk key for a changed LUKS header")
	}
}

// L3b (unattended): the same header change stops the boot: glint names the keyslot, says
// it will not boot without the key, and nothing is handed over; the owner powers off.
func luksRowServerRefuses(t *testing.T, b *luksBench) {
	restore := b.changeHeader(t)
	defer restore()
	r := b.m.Boot(t, "L3b-unattended-header-changed")
	expect(t, r, `glint: boot flow starting`, toGlint)
	b.expectTOTP(t, r)
	expect(t, r, `/boot: verified`, toStep)
	expect(t, r, `DISK KEY WITHHELD`, toStep)
	why := expect(t, r, `disk key: (.*)\n`, toStep)
	if !regexp.MustCompile(`keyslot \d+`).MatchString(why[1]) {
		t.Errorf("glint does not name the keyslot change; it said: %s", why[1])
	}
	expect(t, r, `unattended mode: not booting without the disk key`, toStep)
	expect(t, r, `glint> `, toStep)
	r.Screenshot(t, "L3b-unattended-refusal")
	for _, bad := range []string{"glint: kexec", "disk unlock key released", "Please unlock disk", luksRootUp} {
		if strings.Contains(r.All(), bad) {
			t.Errorf("a server with a changed LUKS header was on its way to boot: %q seen", bad)
		}
	}
	must(t, r.Send("p"))
	r.Wait(t, toStopped)
}

// changeHeader adds a keyslot to the machine's LUKS disk with the host's cryptsetup (pbkdf2,
// fast) and returns the function that puts the original disk back.
func (b *luksBench) changeHeader(t *testing.T) func() {
	t.Helper()
	backup := b.disk + ".good"
	must(t, copyFile(b.disk, backup))
	dir := t.TempDir()
	oldPass, newPass := filepath.Join(dir, "old"), filepath.Join(dir, "new")
	must(t, os.WriteFile(oldPass, []byte(b.os.passphrase), 0o600))
	must(t, os.WriteFile(newPass, []byte("evil-maid-passphrase"), 0o600))
	must(t, run(cryptsetupPath(), "luksAddKey", "--batch-mode", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000",
		"--key-file", oldPass, b.disk, newPass))
	return func() { must(t, os.Rename(backup, b.disk)) }
}

func cryptsetupPath() string {
	if _, err := os.Stat("/usr/sbin/cryptsetup"); err == nil {
		return "/usr/sbin/cryptsetup"
	}
	return "cryptsetup"
}
