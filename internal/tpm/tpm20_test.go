package tpm_test

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/tpm"
	"github.com/glint-boot/glint/internal/tpm/swtpmtest"
)

func open(t testing.TB, spec string) tpm.TPM {
	t.Helper()
	dev, err := tpm.Open(spec)
	if err != nil {
		t.Fatalf("Open(%s): %v", spec, err)
	}
	t.Cleanup(func() { dev.Close() })
	return dev
}

func start20(t testing.TB) tpm.TPM {
	t.Helper()
	return open(t, swtpmtest.Start(t, tpm.Version20))
}

// extendSim computes what a PCR holds after measuring data into old.
func extendSim(bank tpm.Alg, old, data []byte) []byte {
	switch bank {
	case tpm.SHA1:
		m := sha1.Sum(data)
		s := sha1.Sum(append(append([]byte(nil), old...), m[:]...))
		return s[:]
	default:
		m := sha256.Sum256(data)
		s := sha256.Sum256(append(append([]byte(nil), old...), m[:]...))
		return s[:]
	}
}

func readOne(t testing.TB, dev tpm.TPM, bank tpm.Alg, pcr int) []byte {
	t.Helper()
	v, err := dev.ReadPCRs(bank, []int{pcr})
	if err != nil {
		t.Fatalf("ReadPCRs(%s, %d): %v", bank, pcr, err)
	}
	return v[pcr]
}

func TestOpen20DetectsVersionAndBanks(t *testing.T) {
	dev := start20(t)
	if dev.Version() != tpm.Version20 {
		t.Fatalf("Version = %v, want TPM 2.0", dev.Version())
	}
	banks, err := dev.Banks()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(banks, []tpm.Alg{tpm.SHA1, tpm.SHA256}) {
		t.Fatalf("Banks = %v, want [sha1 sha256]", banks)
	}
}

func TestOpenErrors(t *testing.T) {
	_, err := tpm.Open("/dev/glint-no-such-tpm")
	if !errors.Is(err, tpm.ErrNoTPM) || !strings.Contains(err.Error(), "no TPM found at /dev/glint-no-such-tpm") {
		t.Fatalf("Open(missing device) = %v, want ErrNoTPM naming the path", err)
	}
	dev, err := tpm.Open("swtpm:unix:/nonexistent/sock")
	if !errors.Is(err, tpm.ErrNoTPM) {
		t.Fatalf("Open(missing socket) = %v, %v; want ErrNoTPM", dev, err)
	}
	if _, err := tpm.Open("tpm0"); err == nil || !strings.Contains(err.Error(), "not understood") {
		t.Fatalf("Open(bad spec) = %v", err)
	}
}

func TestExtendMatchesComputed20(t *testing.T) {
	dev := start20(t)
	before := map[tpm.Alg][]byte{}
	for _, b := range []tpm.Alg{tpm.SHA1, tpm.SHA256} {
		before[b] = readOne(t, dev, b, 16)
		if !bytes.Equal(before[b], make([]byte, len(before[b]))) {
			t.Fatalf("PCR 16 %s not zero after reset: %x", b, before[b])
		}
	}
	if err := dev.Extend(16, []byte("glint test")); err != nil {
		t.Fatal(err)
	}
	for _, b := range []tpm.Alg{tpm.SHA1, tpm.SHA256} {
		got := readOne(t, dev, b, 16)
		if want := extendSim(b, before[b], []byte("glint test")); !bytes.Equal(got, want) {
			t.Errorf("%s PCR 16 = %x, want %x", b, got, want)
		}
	}
}

func TestReadAllPCRs20(t *testing.T) {
	dev := start20(t)
	all := make([]int, 24)
	for i := range all {
		all[i] = i
	}
	v, err := dev.ReadPCRs(tpm.SHA256, all)
	if err != nil {
		t.Fatal(err)
	}
	if len(v) != 24 {
		t.Fatalf("got %d PCRs, want 24 (the TPM returns 8 per call)", len(v))
	}
	for i, d := range v {
		if len(d) != 32 {
			t.Errorf("PCR %d is %d bytes", i, len(d))
		}
	}
	if _, err := dev.ReadPCRs(tpm.SHA256, []int{24}); err == nil {
		t.Error("PCR 24 accepted")
	}
}

func TestRandom20(t *testing.T) {
	dev := start20(t)
	a, err := dev.Random(100)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := dev.Random(100)
	if len(a) != 100 || bytes.Equal(a, b) {
		t.Fatalf("Random: %d bytes, repeat=%v", len(a), bytes.Equal(a, b))
	}
}

// TestPCRReadMatchesTPM2Tools cross-checks our PCR read with tpm2-tools.
func TestPCRReadMatchesTPM2Tools(t *testing.T) {
	if _, err := exec.LookPath("tpm2_pcrread"); err != nil {
		t.Skip("tpm2_pcrread not installed (apt-get install tpm2-tools)")
	}
	spec := swtpmtest.StartTCP(t, tpm.Version20)
	dev := open(t, spec)
	if err := dev.Extend(16, []byte("cross-check")); err != nil {
		t.Fatal(err)
	}
	ours := readOne(t, dev, tpm.SHA256, 16)
	hostPort := strings.TrimPrefix(spec, "swtpm:tcp:")
	host, port, _ := strings.Cut(hostPort, ":")
	cmd := exec.Command("tpm2_pcrread", "sha256:16")
	cmd.Env = append(cmd.Environ(), "TPM2TOOLS_TCTI=swtpm:host="+host+",port="+port)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("tpm2_pcrread: %v\n%s", err, out)
	}
	if !strings.Contains(strings.ToUpper(string(out)), strings.ToUpper(hexs(ours))) {
		t.Fatalf("tpm2_pcrread says\n%s\nwe read %x", out, ours)
	}
}

func hexs(b []byte) string {
	const digits = "0123456789abcdef"
	s := make([]byte, 0, 2*len(b))
	for _, c := range b {
		s = append(s, digits[c>>4], digits[c&15])
	}
	return string(s)
}

func currentPolicy(t testing.TB, dev tpm.TPM, bank tpm.Alg, pcrs ...int) tpm.PCRPolicy {
	t.Helper()
	v, err := dev.ReadPCRs(bank, pcrs)
	if err != nil {
		t.Fatal(err)
	}
	return tpm.PCRPolicy{Bank: bank, Values: v}
}

func TestSealUnseal20(t *testing.T) {
	dev := start20(t)
	secret := []byte("twenty byte secret!!")
	for _, bank := range []tpm.Alg{tpm.SHA256, tpm.SHA1} {
		blob, err := dev.Seal(secret, currentPolicy(t, dev, bank, 0, 1, 2, 3, 4, 7, 16), nil)
		if err != nil {
			t.Fatalf("Seal(%s): %v", bank, err)
		}
		got, err := dev.Unseal(blob, nil)
		if err != nil {
			t.Fatalf("Unseal(%s): %v", bank, err)
		}
		if !bytes.Equal(got, secret) {
			t.Fatalf("Unseal = %q, want %q", got, secret)
		}
	}
}

func TestUnsealAfterExtendFailsWithPolicyError20(t *testing.T) {
	dev := start20(t)
	blob, err := dev.Seal([]byte("s"), currentPolicy(t, dev, tpm.SHA256, 7, 16), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.Extend(16, []byte("tamper")); err != nil {
		t.Fatal(err)
	}
	_, err = dev.Unseal(blob, nil)
	var pe *tpm.PolicyError
	if !errors.As(err, &pe) {
		t.Fatalf("Unseal after extend = %v, want *PolicyError", err)
	}
	if !slices.Equal(pe.PCRs, []int{7, 16}) || pe.Bank != tpm.SHA256 {
		t.Fatalf("PolicyError names %s %v", pe.Bank, pe.PCRs)
	}
	if !strings.Contains(err.Error(), "no longer match") {
		t.Fatalf("message %q does not explain", err)
	}
}

func TestSealToPredictedValues20(t *testing.T) {
	dev := start20(t)
	pol := currentPolicy(t, dev, tpm.SHA256, 0, 16)
	pol.Values[16] = extendSim(tpm.SHA256, pol.Values[16], []byte("normal boot"))
	blob, err := dev.Seal([]byte("future"), pol, nil)
	if err != nil {
		t.Fatal(err)
	}
	var pe *tpm.PolicyError
	if _, err := dev.Unseal(blob, nil); !errors.As(err, &pe) {
		t.Fatalf("Unseal before the predicted extend = %v, want *PolicyError", err)
	}
	if err := dev.Extend(16, []byte("normal boot")); err != nil {
		t.Fatal(err)
	}
	got, err := dev.Unseal(blob, nil)
	if err != nil || string(got) != "future" {
		t.Fatalf("Unseal after the predicted extend = %q, %v", got, err)
	}
}

func TestSealWithPIN20(t *testing.T) {
	dev := start20(t)
	blob, err := dev.Seal([]byte("disk key"), currentPolicy(t, dev, tpm.SHA256, 0, 16), []byte("correct horse"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dev.Unseal(blob, []byte("wrong")); !errors.Is(err, tpm.ErrAuthFail) {
		t.Fatalf("wrong PIN: %v, want ErrAuthFail", err)
	}
	if _, err := dev.Unseal(blob, nil); !errors.Is(err, tpm.ErrAuthFail) {
		t.Fatalf("no PIN: %v, want ErrAuthFail", err)
	}
	got, err := dev.Unseal(blob, []byte("correct horse"))
	if err != nil || string(got) != "disk key" {
		t.Fatalf("right PIN: %q, %v", got, err)
	}
	// PCRs are checked too, and a policy failure is not a DA event.
	if err := dev.Extend(16, []byte("x")); err != nil {
		t.Fatal(err)
	}
	var pe *tpm.PolicyError
	if _, err := dev.Unseal(blob, []byte("correct horse")); !errors.As(err, &pe) {
		t.Fatalf("right PIN, wrong PCRs: %v, want *PolicyError", err)
	}
}

func TestLockout20(t *testing.T) {
	dev := start20(t)
	// libtpms defaults are 3 tries / 1000 s; use other values so the test
	// shows ConfigureLockout took effect.
	if err := dev.ConfigureLockout(2, 777, 1000); err != nil {
		t.Fatal(err)
	}
	blob, err := dev.Seal([]byte("k"), currentPolicy(t, dev, tpm.SHA256, 0), []byte("1234"))
	if err != nil {
		t.Fatal(err)
	}
	var lockedOut error
	for i := 0; i < 5; i++ {
		_, err := dev.Unseal(blob, []byte("0000"))
		if errors.Is(err, tpm.ErrLockout) {
			lockedOut = err
			break
		}
		if !errors.Is(err, tpm.ErrAuthFail) {
			t.Fatalf("attempt %d: %v, want ErrAuthFail", i, err)
		}
	}
	if lockedOut == nil {
		t.Fatal("no lockout after 5 wrong PINs with maxTries 2")
	}
	var le *tpm.LockoutError
	if !errors.As(lockedOut, &le) || le.Recovery.Seconds() != 777 {
		t.Fatalf("lockout error %v does not carry the 777 s recovery", lockedOut)
	}
	// Even the right PIN is refused now.
	if _, err := dev.Unseal(blob, []byte("1234")); !errors.Is(err, tpm.ErrLockout) {
		t.Fatalf("right PIN in lockout: %v", err)
	}
	info, err := dev.Info()
	if err != nil || !info.LockedOut || info.MaxTries != 2 {
		t.Fatalf("Info in lockout: %+v, %v", info, err)
	}
	// A secret without PIN is noDA and keeps working during lockout.
	free, err := dev.Seal([]byte("totp"), currentPolicy(t, dev, tpm.SHA256, 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dev.Unseal(free, nil); err != nil {
		t.Fatalf("noDA secret during lockout: %v", err)
	}
	if err := dev.ResetLockout(); err != nil {
		t.Fatal(err)
	}
	if got, err := dev.Unseal(blob, []byte("1234")); err != nil || string(got) != "k" {
		t.Fatalf("after ResetLockout: %q, %v", got, err)
	}
}

func TestNV20(t *testing.T) {
	dev := start20(t)
	const idx = 0x01500001
	if err := dev.NVDefine(tpm.NVSpace{Index: idx, Size: 64}); err != nil {
		t.Fatal(err)
	}
	if _, err := dev.NVRead(idx); err == nil || !strings.Contains(err.Error(), "never been written") {
		t.Fatalf("read of unwritten index: %v", err)
	}
	data := bytes.Repeat([]byte("glint-nv"), 8)
	if err := dev.NVWrite(idx, data); err != nil {
		t.Fatal(err)
	}
	got, err := dev.NVRead(idx)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("NVRead = %q, %v", got, err)
	}
	if err := dev.NVWrite(idx, make([]byte, 65)); err == nil {
		t.Fatal("oversized write accepted")
	}
	if err := dev.NVUndefine(idx); err != nil {
		t.Fatal(err)
	}
	if _, err := dev.NVRead(idx); err == nil || !strings.Contains(err.Error(), "not defined") {
		t.Fatalf("read after undefine: %v", err)
	}
}

func TestCounterMonotonicAcrossRestart20(t *testing.T) {
	dir := t.TempDir()
	dev := open(t, swtpmtest.StartDir(t, tpm.Version20, dir))
	const idx = 0x01500010
	if err := dev.NVDefine(tpm.NVSpace{Index: idx, Counter: true}); err != nil {
		t.Fatal(err)
	}
	first, err := dev.CounterRead(idx)
	if err != nil {
		t.Fatal(err)
	}
	prev := first
	for i := 0; i < 3; i++ {
		n, err := dev.CounterIncrement(idx)
		if err != nil {
			t.Fatal(err)
		}
		if n != prev+1 {
			t.Fatalf("increment %d: %d after %d", i, n, prev)
		}
		prev = n
	}
	if err := dev.Shutdown(); err != nil {
		t.Fatal(err)
	}
	dev.Close()
	dev = open(t, swtpmtest.StartDir(t, tpm.Version20, dir)) // power cycle
	n, err := dev.CounterRead(idx)
	if err != nil || n != prev {
		t.Fatalf("after restart: %d, %v; want %d", n, err, prev)
	}
	if n, err := dev.CounterIncrement(idx); err != nil || n != prev+1 {
		t.Fatalf("increment after restart: %d, %v", n, err)
	}
}

func TestQuote20(t *testing.T) {
	dev := start20(t)
	if err := dev.Extend(16, []byte("measured")); err != nil {
		t.Fatal(err)
	}
	ak, err := dev.CreateAK()
	if err != nil {
		t.Fatal(err)
	}
	nonce := []byte("fresh nonce 1234")
	q, err := dev.Quote(ak, tpm.SHA256, []int{0, 7, 16}, nonce)
	if err != nil {
		t.Fatal(err)
	}
	if err := tpm.VerifyQuote(ak.Public, q, nonce); err != nil {
		t.Fatalf("VerifyQuote: %v", err)
	}
	if err := tpm.VerifyQuote(ak.Public, q, []byte("other nonce")); err == nil || !strings.Contains(err.Error(), "nonce") {
		t.Fatalf("wrong nonce: %v", err)
	}
	tampered := *q
	tampered.PCRs = map[int][]byte{0: q.PCRs[0], 7: q.PCRs[7], 16: make([]byte, 32)}
	if err := tpm.VerifyQuote(ak.Public, &tampered, nonce); err == nil || !strings.Contains(err.Error(), "not the ones the TPM signed") {
		t.Fatalf("tampered PCRs: %v", err)
	}
	bad := *q
	bad.Attest = append([]byte(nil), q.Attest...)
	bad.Attest[len(bad.Attest)-1] ^= 1
	if err := tpm.VerifyQuote(ak.Public, &bad, nonce); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("tampered attest: %v", err)
	}
	// Another TPM's key (different seed after clear) does not verify.
	ak2, err := dev.CreateAK()
	if err != nil || !bytes.Equal(ak2.Public, ak.Public) {
		t.Fatalf("AK is not stable: %v", err)
	}
}

func TestClearInvalidatesSealedBlob20(t *testing.T) {
	dev := start20(t)
	blob, err := dev.Seal([]byte("s"), currentPolicy(t, dev, tpm.SHA256, 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.Clear(); err != nil {
		t.Fatal(err)
	}
	if _, err := dev.Unseal(blob, nil); !errors.Is(err, tpm.ErrCleared) {
		t.Fatalf("Unseal after Clear = %v, want ErrCleared", err)
	}
}

func TestLockPlatform20(t *testing.T) {
	dir := t.TempDir()
	spec := swtpmtest.StartDir(t, tpm.Version20, dir)
	dev := open(t, spec)
	if st, err := dev.Platform(); err != nil || st != tpm.PlatformOpen {
		t.Fatalf("fresh: %v, %v", st, err)
	}
	if err := dev.LockPlatform(); err != nil {
		t.Fatal(err)
	}
	if st, err := dev.Platform(); err != nil || st != tpm.PlatformLockedByGlint {
		t.Fatalf("after LockPlatform: %v, %v", st, err)
	}
	// Another handle (the OS) finds it locked before it, and cannot clear
	// through it.
	osh := open(t, spec)
	if st, err := osh.Platform(); err != nil || st != tpm.PlatformLockedBefore {
		t.Fatalf("the OS sees: %v, %v", st, err)
	}
	dev.Close()
	dev = open(t, swtpmtest.StartDir(t, tpm.Version20, dir))
	if st, err := dev.Platform(); err != nil || st != tpm.PlatformOpen {
		t.Fatalf("platform auth did not return to empty after reset: %v, %v", st, err)
	}
}

// TestNoHandleLeaks20: swtpm has three object slots and no resource
// manager, so a verb that leaked one transient object or session per
// failure would break within a few calls.
func TestNoHandleLeaks20(t *testing.T) {
	dev := start20(t)
	pol := currentPolicy(t, dev, tpm.SHA256, 16)
	blob, err := dev.Seal([]byte("s"), pol, nil)
	if err != nil {
		t.Fatal(err)
	}
	pinned, err := dev.Seal([]byte("p"), pol, []byte("pin"))
	if err != nil {
		t.Fatal(err)
	}
	ak, err := dev.CreateAK()
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.Extend(16, []byte("move")); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if _, err := dev.Unseal(blob, nil); err == nil {
			t.Fatal("unsealed after extend")
		}
		if _, err := dev.Unseal(pinned, []byte("pin")); err == nil {
			t.Fatal("unsealed after extend")
		}
		if _, err := dev.Quote(ak, tpm.SHA256, []int{0}, nil); err != nil {
			t.Fatal(err)
		}
		damaged := append([]byte(nil), blob...)
		damaged[len(damaged)-5] ^= 0xff
		if _, err := dev.Unseal(damaged, nil); err == nil {
			t.Fatal("damaged blob unsealed")
		}
	}
	fresh, err := dev.Seal([]byte("after"), currentPolicy(t, dev, tpm.SHA256, 16), nil)
	if err != nil {
		t.Fatalf("Seal after 40 failures: %v (a leaked handle?)", err)
	}
	if got, err := dev.Unseal(fresh, nil); err != nil || string(got) != "after" {
		t.Fatalf("Unseal after 40 failures: %q, %v", got, err)
	}
}

// TestOwnerPasswordIsNotAWrongPIN: an owner password set by another tool
// must not be reported as a wrong PIN.
func TestOwnerPasswordIsNotAWrongPIN(t *testing.T) {
	if _, err := exec.LookPath("tpm2_changeauth"); err != nil {
		t.Skip("tpm2_changeauth not installed (apt-get install tpm2-tools)")
	}
	spec := swtpmtest.StartTCP(t, tpm.Version20)
	host, port, _ := strings.Cut(strings.TrimPrefix(spec, "swtpm:tcp:"), ":")
	cmd := exec.Command("tpm2_changeauth", "-c", "owner", "ownerpass")
	cmd.Env = append(cmd.Environ(), "TPM2TOOLS_TCTI=swtpm:host="+host+",port="+port)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tpm2_changeauth: %v\n%s", err, out)
	}
	dev := open(t, spec)
	_, err := dev.Seal([]byte("s"), currentPolicy(t, dev, tpm.SHA256, 0), nil)
	if !errors.Is(err, tpm.ErrOwnerAuth) || errors.Is(err, tpm.ErrAuthFail) && !strings.Contains(err.Error(), "owner authorisation") {
		t.Fatalf("Seal with an owner password set: %v", err)
	}
}
