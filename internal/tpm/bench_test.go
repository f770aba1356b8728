package tpm_test

import (
	"testing"

	"github.com/glint-boot/glint/internal/tpm"
	"github.com/glint-boot/glint/internal/tpm/swtpmtest"
)

// Per-operation latency against swtpm over its unix socket (one connection
// per command, as in production use of swtpm). Run:
//
//	go test ./internal/tpm/ -run XXX -bench . -benchtime 200x

var families = []struct {
	name string
	v    tpm.Version
	bank tpm.Alg
}{{"tpm20", tpm.Version20, tpm.SHA256}, {"tpm12", tpm.Version12, tpm.SHA1}}

func BenchmarkExtend(b *testing.B) {
	for _, f := range families {
		b.Run(f.name, func(b *testing.B) {
			dev := open(b, swtpmtest.Start(b, f.v))
			for b.Loop() {
				if err := dev.Extend(16, []byte("bench")); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkReadPCRs(b *testing.B) {
	for _, f := range families {
		b.Run(f.name+"/8pcrs", func(b *testing.B) {
			dev := open(b, swtpmtest.Start(b, f.v))
			pcrs := []int{0, 1, 2, 3, 4, 5, 6, 7}
			for b.Loop() {
				if _, err := dev.ReadPCRs(f.bank, pcrs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSeal(b *testing.B) {
	for _, f := range families {
		b.Run(f.name, func(b *testing.B) {
			dev := open(b, swtpmtest.Start(b, f.v))
			pol := currentPolicy(b, dev, f.bank, 0, 1, 2, 3, 4, 7)
			for b.Loop() {
				if _, err := dev.Seal([]byte("twenty byte secret!!"), pol, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkUnseal(b *testing.B) {
	for _, f := range families {
		for _, pin := range []string{"", "1234"} {
			name := f.name
			if pin != "" {
				name += "/pin"
			}
			b.Run(name, func(b *testing.B) {
				dev := open(b, swtpmtest.Start(b, f.v))
				blob, err := dev.Seal([]byte("twenty byte secret!!"), currentPolicy(b, dev, f.bank, 0, 1, 2, 3, 4, 7), []byte(pin))
				if err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					if _, err := dev.Unseal(blob, []byte(pin)); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkQuote(b *testing.B) {
	for _, f := range families {
		b.Run(f.name, func(b *testing.B) {
			dev := open(b, swtpmtest.Start(b, f.v))
			ak, err := dev.CreateAK()
			if err != nil {
				b.Fatal(err)
			}
			nonce := []byte("0123456789abcdef")
			for b.Loop() {
				if _, err := dev.Quote(ak, f.bank, []int{0, 1, 2, 3, 4, 7}, nonce); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerifyQuote20(b *testing.B) {
	dev := open(b, swtpmtest.Start(b, tpm.Version20))
	ak, err := dev.CreateAK()
	if err != nil {
		b.Fatal(err)
	}
	nonce := []byte("0123456789abcdef")
	q, err := dev.Quote(ak, tpm.SHA256, []int{0, 1, 2, 3, 4, 7}, nonce)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := tpm.VerifyQuote(ak.Public, q, nonce); err != nil {
			b.Fatal(err)
		}
	}
}
