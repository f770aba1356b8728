package manifest

import (
	"bytes"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// slowCounter answers like a TPM on a real LPC/SPI TIS interface, where one
// command takes 20-80 ms (tpm.Stats; the emulated laptop's boot timing
// lines). It stands in for such a TPM, which this machine does not have;
// swtpm answers in a fraction of a millisecond.
type slowCounter struct {
	value   uint64
	latency time.Duration
}

func (c slowCounter) CounterRead(uint32) (uint64, error) {
	time.Sleep(c.latency)
	return c.value, nil
}

// BenchmarkVerifyTPMLatency is Verify of a /boot whose biggest file, a
// 45 MB initramfs, takes about as long to hash as a real TPM takes to answer
// the rollback-counter read (30 ms here). Hashing and the TPM overlap, so a
// verification costs about the longer of the two, not their sum.
func BenchmarkVerifyTPMLatency(b *testing.B) {
	dir := b.TempDir()
	f, err := os.Create(filepath.Join(dir, "initramfs.img"))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, 45_000_000); err != nil {
		b.Fatal(err)
	}
	f.Close()
	e, err := openpgp.NewEntity("Bench Owner", "", "owner@example.org", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		b.Fatal(err)
	}
	var sec bytes.Buffer
	w, _ := armor.Encode(&sec, openpgp.PrivateKeyType, nil)
	if err := e.SerializePrivate(w, nil); err != nil {
		b.Fatal(err)
	}
	w.Close()
	s, err := NewKeySigner(sec.Bytes(), nil)
	if err != nil {
		b.Fatal(err)
	}
	m, err := Build(dir, BuildOptions{})
	if err != nil {
		b.Fatal(err)
	}
	m.CounterIndex, m.Counter = DefaultCounterIndex, 7
	sig, err := Sign(m, s)
	if err != nil {
		b.Fatal(err)
	}
	if err := Write(dir, m, sig); err != nil {
		b.Fatal(err)
	}
	kr := openpgp.EntityList{e}
	for b.Loop() {
		if _, err := Verify(dir, kr, slowCounter{value: 7, latency: 30 * time.Millisecond}); err != nil {
			b.Fatal(err)
		}
	}
}
