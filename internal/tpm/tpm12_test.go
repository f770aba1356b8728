package tpm_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/tpm"
	"github.com/glint-boot/glint/internal/tpm/swtpmtest"
)

func start12(t testing.TB) tpm.TPM {
	t.Helper()
	return open(t, swtpmtest.Start(t, tpm.Version12))
}

func TestOpen12(t *testing.T) {
	dev := start12(t)
	if dev.Version() != tpm.Version12 {
		t.Fatalf("Version = %v", dev.Version())
	}
	info, err := dev.Info()
	if err != nil {
		t.Fatal(err)
	}
	if !info.Owned || info.Manufacturer == "" {
		t.Fatalf("Info = %+v", info)
	}
	if _, err := dev.ReadPCRs(tpm.SHA256, []int{0}); !errors.Is(err, tpm.ErrUnsupported) {
		t.Fatalf("sha256 on 1.2: %v", err)
	}
}

func TestExtendMatchesComputed12(t *testing.T) {
	dev := start12(t)
	before := readOne(t, dev, tpm.SHA1, 16)
	if err := dev.Extend(16, []byte("glint test")); err != nil {
		t.Fatal(err)
	}
	if got, want := readOne(t, dev, tpm.SHA1, 16), extendSim(tpm.SHA1, before, []byte("glint test")); !bytes.Equal(got, want) {
		t.Fatalf("PCR 16 = %x, want %x", got, want)
	}
	r, err := dev.Random(300)
	if err != nil || len(r) != 300 {
		t.Fatalf("Random: %d bytes, %v", len(r), err)
	}
}

func TestSealUnseal12(t *testing.T) {
	dev := start12(t)
	pol := currentPolicy(t, dev, tpm.SHA1, 0, 1, 2, 3, 4, 7, 16)
	blob, err := dev.Seal([]byte("totp secret 20 bytes"), pol, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := dev.Unseal(blob, nil)
	if err != nil || string(got) != "totp secret 20 bytes" {
		t.Fatalf("Unseal = %q, %v", got, err)
	}
	if err := dev.Extend(16, []byte("tamper")); err != nil {
		t.Fatal(err)
	}
	var pe *tpm.PolicyError
	if _, err := dev.Unseal(blob, nil); !errors.As(err, &pe) {
		t.Fatalf("after extend: %v, want *PolicyError", err)
	}
}

func TestSealPredictedAndPIN12(t *testing.T) {
	dev := start12(t)
	pol := currentPolicy(t, dev, tpm.SHA1, 0, 16)
	pol.Values[16] = extendSim(tpm.SHA1, pol.Values[16], []byte("normal"))
	blob, err := dev.Seal([]byte("disk key"), pol, []byte("pin"))
	if err != nil {
		t.Fatal(err)
	}
	var pe *tpm.PolicyError
	if _, err := dev.Unseal(blob, []byte("pin")); !errors.As(err, &pe) {
		t.Fatalf("before predicted extend: %v", err)
	}
	if err := dev.Extend(16, []byte("normal")); err != nil {
		t.Fatal(err)
	}
	if _, err := dev.Unseal(blob, []byte("nip")); !errors.Is(err, tpm.ErrAuthFail) {
		t.Fatalf("wrong PIN: %v, want ErrAuthFail", err)
	}
	got, err := dev.Unseal(blob, []byte("pin"))
	if err != nil || string(got) != "disk key" {
		t.Fatalf("right PIN: %q, %v", got, err)
	}
}

func TestNV12(t *testing.T) {
	dev := start12(t)
	const idx = 0x00001234
	if err := dev.NVDefine(tpm.NVSpace{Index: idx, Size: 200}); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789"), 20)
	if err := dev.NVWrite(idx, data); err != nil {
		t.Fatal(err)
	}
	got, err := dev.NVRead(idx)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("NVRead = %q, %v", got, err)
	}
	if err := dev.NVUndefine(idx); err != nil {
		t.Fatal(err)
	}
	if _, err := dev.NVRead(idx); err == nil || !strings.Contains(err.Error(), "not defined") {
		t.Fatalf("after undefine: %v", err)
	}
}

func TestCounter12AcrossRestart(t *testing.T) {
	dir := t.TempDir()
	dev := open(t, swtpmtest.StartDir(t, tpm.Version12, dir))
	const idx = 0x01500010
	if err := dev.NVDefine(tpm.NVSpace{Index: idx, Counter: true}); err != nil {
		t.Fatal(err)
	}
	v0, err := dev.CounterRead(idx)
	if err != nil {
		t.Fatal(err)
	}
	v1, err := dev.CounterIncrement(idx)
	if err != nil || v1 != v0+1 {
		t.Fatalf("increment: %d, %v (was %d)", v1, err, v0)
	}
	v2, err := dev.CounterIncrement(idx)
	if err != nil || v2 != v1+1 {
		t.Fatalf("increment: %d, %v (was %d)", v2, err, v1)
	}
	if err := dev.Shutdown(); err != nil {
		t.Fatal(err)
	}
	dev.Close()
	dev = open(t, swtpmtest.StartDir(t, tpm.Version12, dir))
	if v, err := dev.CounterRead(idx); err != nil || v != v2 {
		t.Fatalf("after restart: %d, %v; want %d", v, err, v2)
	}
	if v, err := dev.CounterIncrement(idx); err != nil || v != v2+1 {
		t.Fatalf("increment after restart: %d, %v", v, err)
	}
	if err := dev.NVUndefine(idx); err != nil {
		t.Fatal(err)
	}
	if _, err := dev.CounterRead(idx); err == nil {
		t.Fatal("counter readable after release")
	}
}

func TestQuote12(t *testing.T) {
	dev := start12(t)
	ak, err := dev.CreateAK()
	if err != nil {
		t.Fatal(err)
	}
	nonce := []byte("nonce-12")
	q, err := dev.Quote(ak, tpm.SHA1, []int{0, 16}, nonce)
	if err != nil {
		t.Fatal(err)
	}
	if err := tpm.VerifyQuote(ak.Public, q, nonce); err != nil {
		t.Fatalf("VerifyQuote: %v", err)
	}
	if err := tpm.VerifyQuote(ak.Public, q, []byte("other")); err == nil {
		t.Fatal("wrong nonce verified")
	}
	bad := *q
	bad.PCRs = map[int][]byte{0: q.PCRs[0], 16: bytes.Repeat([]byte{1}, 20)}
	if err := tpm.VerifyQuote(ak.Public, &bad, nonce); err == nil {
		t.Fatal("tampered PCRs verified")
	}
	forged := *q
	forged.Signature = append([]byte(nil), q.Signature...)
	forged.Signature[10] ^= 1
	if err := tpm.VerifyQuote(ak.Public, &forged, nonce); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("forged signature: %v", err)
	}
}

func TestClear12(t *testing.T) {
	dev := start12(t)
	blob, err := dev.Seal([]byte("s"), currentPolicy(t, dev, tpm.SHA1, 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.Clear(); err != nil {
		t.Fatal(err)
	}
	if _, err := dev.Unseal(blob, nil); !errors.Is(err, tpm.ErrCleared) {
		t.Fatalf("Unseal after Clear = %v, want ErrCleared", err)
	}
	// Ownership was taken again: sealing works.
	if _, err := dev.Seal([]byte("s"), currentPolicy(t, dev, tpm.SHA1, 0), nil); err != nil {
		t.Fatalf("Seal after Clear: %v", err)
	}
}

func TestUnsupported12(t *testing.T) {
	dev := start12(t)
	if err := dev.ConfigureLockout(3, 1, 1); !errors.Is(err, tpm.ErrUnsupported) {
		t.Fatalf("ConfigureLockout: %v", err)
	}
	if _, err := dev.Seal([]byte("x"), tpm.PCRPolicy{Bank: tpm.SHA256, Values: map[int][]byte{0: make([]byte, 32)}}, nil); !errors.Is(err, tpm.ErrUnsupported) {
		t.Fatalf("sha256 policy on 1.2: %v", err)
	}
}

func TestBlobFromOtherFamilyRefused(t *testing.T) {
	d20, d12 := start20(t), start12(t)
	b20, err := d20.Seal([]byte("x"), currentPolicy(t, d20, tpm.SHA256, 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d12.Unseal(b20, nil); err == nil || !strings.Contains(err.Error(), "TPM 2.0") {
		t.Fatalf("2.0 blob on 1.2: %v", err)
	}
}

func TestLockPlatform12BlocksClear(t *testing.T) {
	dev := start12(t)
	if err := dev.LockPlatform(); err != nil {
		t.Fatal(err)
	}
	// Re-enabling after a clear needs physical presence, now locked:
	// Clear must refuse before clearing anything, and say why.
	blob, err := dev.Seal([]byte("s"), currentPolicy(t, dev, tpm.SHA1, 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.Clear(); err == nil || !strings.Contains(err.Error(), "not cleared") {
		t.Fatalf("Clear after LockPlatform: %v", err)
	}
	if _, err := dev.Unseal(blob, nil); err != nil {
		t.Fatalf("the refused Clear cleared something: %v", err)
	}
}

func TestTakeOwnershipOnOwnedTPMIsNoOp12(t *testing.T) {
	dev, err := tpm.Open(swtpmtest.Start(t, tpm.Version12))
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	o, ok := dev.(tpm.Owner)
	if !ok {
		t.Fatal("TPM 1.2 does not offer TakeOwnership")
	}
	if err := o.TakeOwnership(); err != nil {
		t.Fatalf("owned TPM: %v", err)
	}
	// Still usable with the well-known owner secret afterwards.
	if err := dev.NVDefine(tpm.NVSpace{Index: 0x00011234, Size: 8}); err != nil {
		t.Fatalf("NV define after TakeOwnership: %v", err)
	}
}
