package tpm_test

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/glint-boot/glint/internal/tpm"
	"github.com/glint-boot/glint/internal/tpm/swtpmtest"
)

// ownerSecret stands for what manifest.KeySigner derives from the owner's
// unlocked private key.
var ownerSecret = []byte("the owner's private key material, as glint derives it")

const testCounter = 0x0180474c

// setUp does glint's set-up on dev: prepare, identity, derive, set; then
// defines the rollback counter with the owner's authorisation.
func setUp(t *testing.T, dev tpm.TPM) (*tpm.Identity, tpm.HierarchyAuth) {
	t.Helper()
	if err := dev.PrepareOwnership(); err != nil {
		t.Fatalf("PrepareOwnership: %v", err)
	}
	id, err := dev.Identity()
	if err != nil {
		t.Fatalf("Identity: %v", err)
	}
	auth, err := tpm.DeriveHierarchyAuth(ownerSecret, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.SetHierarchyAuth(auth); err != nil {
		t.Fatalf("SetHierarchyAuth: %v", err)
	}
	if err := dev.NVDefine(tpm.NVSpace{Index: testCounter, Counter: true}); err != nil {
		t.Fatalf("define the rollback counter with the owner's authorisation: %v", err)
	}
	return id, auth
}

// TestTheTPMBelongsToTheOwner is the attack of issue 15 item 3: code that
// runs after glint (a forced boot, the OS, its initramfs shell) opens the
// TPM knowing nothing. Before glint took the TPM for the owner it could
// undefine the rollback counter, reset the PIN lockout and clear the TPM;
// now it cannot, while sealing, unsealing, the counter and PCRs keep
// working for it and for glint, and the owner (re-deriving the values from
// the key at a later boot) can still administer the TPM.
func TestTheTPMBelongsToTheOwner(t *testing.T) {
	for _, v := range []tpm.Version{tpm.Version20, tpm.Version12} {
		t.Run(v.String(), func(t *testing.T) {
			dir := t.TempDir()
			spec := swtpmtest.StartDir(t, v, dir)
			glint := open(t, spec)
			bank := tpm.SHA256
			if v == tpm.Version12 {
				bank = tpm.SHA1
			}

			// Today's state, the hole: nothing protects the counter.
			before := open(t, spec)
			if err := before.NVDefine(tpm.NVSpace{Index: testCounter + 1, Counter: true}); err != nil {
				t.Fatal(err)
			}
			if err := before.NVUndefine(testCounter + 1); err != nil {
				t.Fatalf("before set-up anyone can undefine a counter (the hole this closes), but: %v", err)
			}

			id, auth := setUp(t, glint)
			if v == tpm.Version20 {
				if err := glint.ConfigureLockout(3, 600, tpm.DefaultLockoutRecoverySeconds); err != nil {
					t.Fatalf("ConfigureLockout with the lockout authorisation: %v", err)
				}
			}
			c0, err := glint.CounterIncrement(testCounter)
			if err != nil {
				t.Fatal(err)
			}
			policy := currentPolicy(t, glint, bank, 0, 7)
			noPIN, err := glint.Seal([]byte("totp"), policy, nil)
			if err != nil {
				t.Fatalf("Seal after set-up: %v", err)
			}
			if err := glint.LockPlatform(); err != nil {
				t.Fatal(err)
			}

			// The OS: a fresh handle with no authorisation.
			osh := open(t, spec)
			if got, err := osh.Unseal(noPIN, nil); err != nil || string(got) != "totp" {
				t.Fatalf("the OS cannot unseal a noDA secret any more: %q, %v", got, err)
			}
			if _, err := osh.Seal([]byte("disk"), policy, []byte("1234")); err != nil {
				t.Fatalf("the OS cannot seal any more: %v", err)
			}
			if _, err := osh.CounterIncrement(testCounter); err != nil {
				t.Fatalf("increments stop working without the owner: %v", err)
			}
			if id2, err := osh.Identity(); err != nil || id2.String() != id.String() {
				t.Fatalf("Identity without secrets: %v, %v (want %v)", id2, err, id)
			}
			for _, a := range []struct {
				name   string
				attack func() error
			}{
				{"undefine the rollback counter", func() error { return osh.NVUndefine(testCounter) }},
				{"define an NV index", func() error { return osh.NVDefine(tpm.NVSpace{Index: 0x01800099, Size: 8}) }},
				{"reset the PIN lockout", osh.ResetLockout},
				{"clear the TPM", osh.Clear},
				{"change the owner authorisation", func() error {
					return osh.SetHierarchyAuth(tpm.HierarchyAuth{Owner: bytes.Repeat([]byte{7}, 32), Lockout: bytes.Repeat([]byte{8}, 32)})
				}},
			} {
				name := a.name
				err := a.attack()
				if err == nil {
					t.Errorf("the OS could %s", name)
					continue
				}
				if name != "clear the TPM" && !errors.Is(err, tpm.ErrOwnerAuth) {
					t.Errorf("%s: refused, but not for the owner's authorisation: %v", name, err)
				}
			}
			if v == tpm.Version20 {
				if err := osh.ConfigureLockout(1000, 0, 0); !errors.Is(err, tpm.ErrOwnerAuth) {
					t.Errorf("the OS could change the lockout parameters: %v", err)
				}
			}
			if c, err := glint.CounterRead(testCounter); err != nil || c != c0+1 {
				t.Fatalf("the counter after the attacks: %d, %v; want %d", c, err, c0+1)
			}

			// Next power-on: the owner authenticates, glint re-derives.
			spec = swtpmtest.StartDir(t, v, dir)
			admin := open(t, spec)
			id3, err := admin.Identity()
			if err != nil || id3.String() != id.String() {
				t.Fatalf("identity after a power cycle: %v, %v", id3, err)
			}
			again, err := tpm.DeriveHierarchyAuth(ownerSecret, id3)
			if err != nil || !bytes.Equal(again.Owner, auth.Owner) || !bytes.Equal(again.Lockout, auth.Lockout) {
				t.Fatal("the derivation is not repeatable")
			}
			admin.UseAuth(again)
			if err := admin.ResetLockout(); err != nil {
				t.Fatalf("the owner cannot reset the lockout: %v", err)
			}
			if got, err := admin.Unseal(noPIN, nil); err != nil || string(got) != "totp" {
				t.Fatalf("unseal after the power cycle (persistent SRK): %q, %v", got, err)
			}
			if err := admin.NVUndefine(testCounter); err != nil {
				t.Fatalf("the owner cannot undefine the counter: %v", err)
			}
			// Another owner key derives other values, which the TPM refuses.
			other, _ := tpm.DeriveHierarchyAuth([]byte("another organisation's owner key material"), id3)
			stranger := open(t, spec)
			stranger.UseAuth(other)
			if err := stranger.NVDefine(tpm.NVSpace{Index: testCounter, Counter: true}); !errors.Is(err, tpm.ErrOwnerAuth) {
				t.Fatalf("another owner's key administers this TPM: %v", err)
			}
		})
	}
}

// TestSetHierarchyAuthRepeatable: an interrupted set-up (power cut after the
// owner authorisation changed, before the caller learnt it) is finished by
// running it again.
func TestSetHierarchyAuthRepeatable(t *testing.T) {
	for _, v := range []tpm.Version{tpm.Version20, tpm.Version12} {
		t.Run(v.String(), func(t *testing.T) {
			spec := swtpmtest.Start(t, v)
			a := open(t, spec)
			_, auth := setUp(t, a)
			b := open(t, spec) // knows nothing, like glint after the cut
			if err := b.SetHierarchyAuth(auth); err != nil && v == tpm.Version12 {
				t.Fatalf("TPM 1.2: repeating the change: %v", err)
			} else if v == tpm.Version20 {
				// TPM 2.0 refuses to guess the lockout value (a wrong one
				// blocks the lockout hierarchy); with both values known it
				// is a no-op.
				if !errors.Is(err, tpm.ErrOwnerAuth) {
					t.Fatalf("TPM 2.0: repeating without knowing the lockout value: %v", err)
				}
				b.UseAuth(auth)
				if err := b.SetHierarchyAuth(auth); err != nil {
					t.Fatalf("TPM 2.0: repeating with the values: %v", err)
				}
			}
			if err := b.NVUndefine(testCounter); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestForeignSRKNotTrusted20: a key persisted at the SRK handle by someone
// else (here tpm2-tools: an RSA primary) is not used to seal under.
func TestForeignSRKNotTrusted20(t *testing.T) {
	tools := need(t, "tpm2_createprimary", "tpm2_evictcontrol", "tpm2_flushcontext")
	spec := swtpmtest.StartTCP(t, tpm.Version20)
	tools.run(t, spec, "tpm2_createprimary", "-C", "o", "-G", "rsa2048", "-c", tools.tmp+"/p.ctx")
	tools.run(t, spec, "tpm2_evictcontrol", "-C", "o", "-c", tools.tmp+"/p.ctx", "0x81000001")
	tools.run(t, spec, "tpm2_flushcontext", "-t")
	dev := open(t, spec)
	_, err := dev.Seal([]byte("s"), currentPolicy(t, dev, tpm.SHA256, 0), nil)
	if err == nil || !strings.Contains(err.Error(), "not a storage root key glint can trust") {
		t.Fatalf("Seal under a foreign persisted key: %v", err)
	}
	if _, err := dev.Identity(); err == nil {
		t.Fatal("Identity of a foreign persisted key")
	}
}

// TestTPM2ToolsCannotTakeTheTPM: the independent attacker, tpm2-tools from
// a root shell in the OS, after glint's set-up.
func TestTPM2ToolsCannotTakeTheTPM(t *testing.T) {
	tools := need(t, "tpm2_nvundefine", "tpm2_clear", "tpm2_dictionarylockout", "tpm2_changeauth")
	spec := swtpmtest.StartTCP(t, tpm.Version20)
	glint := open(t, spec)
	setUp(t, glint)
	if err := glint.LockPlatform(); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"tpm2_nvundefine", "-C", "o", "0x0180474c"},
		{"tpm2_clear", "-c", "l"},
		{"tpm2_clear", "-c", "p"},
		{"tpm2_dictionarylockout", "--clear-lockout"},
		{"tpm2_changeauth", "-c", "owner", "mine"},
	} {
		if out, err := tools.cmd(spec, args...).CombinedOutput(); err == nil {
			t.Errorf("%v succeeded after glint's set-up:\n%s", args, out)
		}
	}
	if _, err := glint.CounterRead(testCounter); err != nil {
		t.Fatalf("the counter is gone: %v", err)
	}
}

type toolbox struct{ tmp string }

func need(t *testing.T, bins ...string) *toolbox {
	t.Helper()
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not installed (apt-get install tpm2-tools)", b)
		}
	}
	return &toolbox{tmp: t.TempDir()}
}

func (tb *toolbox) cmd(spec string, args ...string) *exec.Cmd {
	host, port, _ := strings.Cut(strings.TrimPrefix(spec, "swtpm:tcp:"), ":")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(cmd.Environ(), "TPM2TOOLS_TCTI=swtpm:host="+host+",port="+port)
	return cmd
}

func (tb *toolbox) run(t *testing.T, spec string, args ...string) {
	t.Helper()
	if out, err := tb.cmd(spec, args...).CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
}

// TestLockoutStatusInWords: wrong PINs until the TPM locks; the status says
// so with the time left and what ends it; a noDA secret still unseals; the
// owner's lockout reset ends it.
func TestLockoutStatusInWords(t *testing.T) {
	for _, v := range []tpm.Version{tpm.Version20, tpm.Version12} {
		t.Run(v.String(), func(t *testing.T) {
			dir := t.TempDir()
			spec := swtpmtest.StartDir(t, v, dir)
			dev := open(t, spec)
			_, auth := setUp(t, dev)
			bank := tpm.SHA256
			if v == tpm.Version20 {
				if err := dev.ConfigureLockout(3, 600, tpm.DefaultLockoutRecoverySeconds); err != nil {
					t.Fatal(err)
				}
			} else {
				bank = tpm.SHA1
			}
			st, err := dev.LockoutStatus()
			if err != nil {
				t.Fatal(err)
			}
			if st.InLockout || st.Failures != 0 || !strings.Contains(st.Explain(), "none") {
				t.Fatalf("fresh: %+v %q", st, st.Explain())
			}
			policy := currentPolicy(t, dev, bank, 0)
			pinned, err := dev.Seal([]byte("disk key"), policy, []byte("right PIN"))
			if err != nil {
				t.Fatal(err)
			}
			free, err := dev.Seal([]byte("totp"), policy, nil)
			if err != nil {
				t.Fatal(err)
			}
			locked := false
			for i := 0; i < 40 && !locked; i++ {
				_, err := dev.Unseal(pinned, []byte("wrong PIN"))
				locked = errors.Is(err, tpm.ErrLockout)
			}
			if !locked {
				t.Fatal("40 wrong PINs did not lock the TPM")
			}
			st, err = dev.LockoutStatus()
			if err != nil {
				t.Fatal(err)
			}
			msg := st.Explain()
			t.Log(msg)
			if !st.InLockout || !strings.Contains(msg, "LOCKED") || !strings.Contains(msg, "owner can end it") || !strings.Contains(msg, "TOTP secret") {
				t.Fatalf("locked: %+v %q", st, msg)
			}
			if v == tpm.Version20 {
				if st.MaxTries != 3 || st.Failures != 3 || st.TimeLeft != 10*time.Minute || !strings.Contains(msg, "10 min") || !strings.Contains(msg, "only while it has power") {
					t.Fatalf("TPM 2.0 status %+v %q", st, msg)
				}
			} else if st.Failures == 0 || !st.Exact {
				t.Fatalf("TPM 1.2 status %+v", st)
			}
			got, err := dev.Unseal(free, nil)
			if v == tpm.Version20 && (err != nil || string(got) != "totp") {
				t.Fatalf("noDA secret during lockout: %q, %v", got, err)
			}
			if v == tpm.Version12 && (!errors.Is(err, tpm.ErrLockout) || !strings.Contains(msg, "TOTP secret does not unseal either")) {
				t.Fatalf("TPM 1.2 has no noDA objects: during lockout %q, %v; message %q", got, err, msg)
			}
			// Someone without the owner key tries the reset.
			if err := open(t, spec).ResetLockout(); !errors.Is(err, tpm.ErrOwnerAuth) {
				t.Fatalf("lockout reset without the owner: %v", err)
			}
			// That wrong try blocks the lockout reset until the next
			// power-on (TPM 2.0 with lockoutRecovery 0; TPM 1.2's
			// disableResetLock); the owner is told so.
			err = dev.ResetLockout()
			if !errors.Is(err, tpm.ErrOwnerAuth) || !strings.Contains(strings.ToLower(err.Error()), "switch the machine off and on") {
				t.Fatalf("the owner's reset after someone's wrong try: %v", err)
			}
			dev.Shutdown()
			spec = swtpmtest.StartDir(t, v, dir)
			dev = open(t, spec)
			dev.UseAuth(auth)
			if err := dev.ResetLockout(); err != nil {
				t.Fatalf("the owner's lockout reset: %v", err)
			}
			if st, _ := dev.LockoutStatus(); st.InLockout {
				t.Fatalf("still locked after the reset: %+v", st)
			}
			if got, err := dev.Unseal(pinned, []byte("right PIN")); err != nil || string(got) != "disk key" {
				t.Fatalf("after the reset: %q, %v", got, err)
			}
		})
	}
}

// TestReadClock: TPM 2.0 Clock advances with powered time and survives a
// power cycle; TPM 1.2 ticks start again with a new nonce.
func TestReadClock(t *testing.T) {
	for _, v := range []tpm.Version{tpm.Version20, tpm.Version12} {
		t.Run(v.String(), func(t *testing.T) {
			dir := t.TempDir()
			dev := open(t, swtpmtest.StartDir(t, v, dir))
			a, err := dev.ReadClock()
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)
			b, err := dev.ReadClock()
			if err != nil {
				t.Fatal(err)
			}
			if d := b.SinceReset - a.SinceReset; d < 200*time.Millisecond || d > 5*time.Second {
				t.Fatalf("time since reset advanced %v over 300 ms", d)
			}
			if err := dev.Shutdown(); err != nil {
				t.Fatal(err)
			}
			dev2 := open(t, swtpmtest.StartDir(t, v, dir))
			c, err := dev2.ReadClock()
			if err != nil {
				t.Fatal(err)
			}
			if v == tpm.Version20 {
				if b.Clock <= a.Clock || c.Clock < b.Clock || c.ResetCount != b.ResetCount+1 {
					t.Fatalf("TPM 2.0 clock across a power cycle: %+v %+v %+v", a, b, c)
				}
			} else if bytes.Equal(c.TickNonce, b.TickNonce) || len(c.TickNonce) != 20 {
				t.Fatalf("TPM 1.2 tick nonce did not change at power-on: %x %x", b.TickNonce, c.TickNonce)
			}
		})
	}
}

// TestCheckRTCWithTPMClock: readings from a real TPM 2.0 at two "boots";
// the RTC set back between them is caught, an honest one is not.
func TestCheckRTCWithTPMClock(t *testing.T) {
	dir := t.TempDir()
	dev := open(t, swtpmtest.StartDir(t, tpm.Version20, dir))
	c1, err := dev.ReadClock()
	if err != nil {
		t.Fatal(err)
	}
	rtc1 := time.Date(2026, 12, 10, 9, 0, 0, 0, time.UTC) // the clock was set a week ahead to collect codes
	time.Sleep(1200 * time.Millisecond)
	dev.Shutdown()
	dev = open(t, swtpmtest.StartDir(t, tpm.Version20, dir))
	c2, err := dev.ReadClock()
	if err != nil {
		t.Fatal(err)
	}
	prev := tpm.ClockReading{RTC: rtc1, TPMClock: c1.Clock, ResetCount: c1.ResetCount}
	honest := tpm.ClockReading{RTC: rtc1.Add(10 * time.Minute), TPMClock: c2.Clock, ResetCount: c2.ResetCount}
	if err := tpm.CheckRTC(prev, honest); err != nil {
		t.Fatalf("an honest RTC is reported: %v", err)
	}
	back := tpm.ClockReading{RTC: rtc1.Add(-7 * 24 * time.Hour), TPMClock: c2.Clock, ResetCount: c2.ResetCount}
	var je *tpm.RTCJumpError
	err = tpm.CheckRTC(prev, back)
	if !errors.As(err, &je) || je.Behind < 7*24*time.Hour-time.Minute || !strings.Contains(err.Error(), "jumped back") {
		t.Fatalf("an RTC a week back: %v", err)
	}
	if err := tpm.CheckRTC(honest, prev); !errors.As(err, &je) || !je.TPMClockBack {
		t.Fatalf("a TPM clock that went back: %v", err)
	}
}

func TestParseIdentity(t *testing.T) {
	id := tpm.Identity{Kind: tpm.IdentitySRKName}
	id.Digest[0], id.Digest[31] = 0xab, 0x01
	got, err := tpm.ParseIdentity(id.String())
	if err != nil || *got != id {
		t.Fatalf("round trip: %v, %v", got, err)
	}
	for _, bad := range []string{"", "tpm2-srk-name", "x:" + strings.Repeat("0", 64), "tpm2-srk-name:" + strings.Repeat("A", 64), "tpm2-srk-name:00"} {
		if _, err := tpm.ParseIdentity(bad); err == nil {
			t.Errorf("ParseIdentity(%q) accepted", bad)
		}
	}
}

// TestPlatformLockedByFirmware: OVMF sets a random platform authorisation
// before glint runs. That is a locked platform hierarchy, not a wrong PIN
// (today's message): LockPlatform is content and Platform says who locked
// it. Firmware is played by tpm2-tools.
func TestPlatformLockedByFirmware(t *testing.T) {
	tools := need(t, "tpm2_changeauth", "tpm2_hierarchycontrol")
	spec := swtpmtest.StartTCP(t, tpm.Version20)
	tools.run(t, spec, "tpm2_changeauth", "-c", "platform", "firmware-random")
	dev := open(t, spec)
	if st, err := dev.Platform(); err != nil || st != tpm.PlatformLockedBefore {
		t.Fatalf("Platform: %v, %v", st, err)
	}
	if err := dev.LockPlatform(); err != nil {
		t.Fatalf("LockPlatform on a platform hierarchy the firmware locked: %v", err)
	}
	if st, _ := dev.Platform(); !st.Locked() || !strings.Contains(st.String(), "firmware") {
		t.Fatalf("after: %v", st)
	}

	// Disabled by the firmware for this boot.
	spec2 := swtpmtest.StartTCP(t, tpm.Version20)
	tools.run(t, spec2, "tpm2_hierarchycontrol", "-C", "p", "phEnable", "clear")
	dev2 := open(t, spec2)
	if st, err := dev2.Platform(); err != nil || st != tpm.PlatformDisabled {
		t.Fatalf("disabled: %v, %v", st, err)
	}
	if err := dev2.LockPlatform(); err != nil {
		t.Fatalf("LockPlatform on a disabled platform hierarchy: %v", err)
	}
}

// TestPlatform12: physical presence locked by glint; code after glint
// finds it locked and cannot clear the TPM through it.
func TestPlatform12(t *testing.T) {
	spec := swtpmtest.Start(t, tpm.Version12)
	dev := open(t, spec)
	if st, err := dev.Platform(); err != nil || st != tpm.PlatformOpen {
		t.Fatalf("fresh: %v, %v", st, err)
	}
	if err := dev.LockPlatform(); err != nil {
		t.Fatal(err)
	}
	if st, _ := dev.Platform(); st != tpm.PlatformLockedByGlint {
		t.Fatalf("after LockPlatform: %v", st)
	}
	osh := open(t, spec)
	if st, err := osh.Platform(); err != nil || st != tpm.PlatformLockedBefore {
		t.Fatalf("the OS sees: %v, %v", st, err)
	}
	if err := osh.LockPlatform(); err != nil {
		t.Fatalf("LockPlatform on a locked platform: %v", err)
	}
}

// TestSetupMarks: a fresh TPM has none; after glint's set-up the counter,
// the storage key and (2.0) the authorisations are there, and no one with
// only the disk can take them away.
func TestSetupMarks(t *testing.T) {
	for _, v := range []tpm.Version{tpm.Version20, tpm.Version12} {
		t.Run(v.String(), func(t *testing.T) {
			spec := swtpmtest.Start(t, v)
			dev := open(t, spec)
			m, err := dev.SetupMarks(testCounter)
			if err != nil || m.Any() {
				t.Fatalf("fresh TPM: %+v, %v", m, err)
			}
			setUp(t, dev)
			m, err = open(t, spec).SetupMarks(testCounter)
			if err != nil || !m.Counter || !m.SRK {
				t.Fatalf("after set-up: %+v, %v", m, err)
			}
			if v == tpm.Version20 && (!m.OwnerAuth || !m.LockoutAuth) {
				t.Fatalf("TPM 2.0 authorisations not marked: %+v", m)
			}
			if !strings.Contains(m.String(), "rollback counter") {
				t.Fatalf("words: %s", m)
			}
		})
	}
}
