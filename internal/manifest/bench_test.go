package manifest

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// makeBenchBoot writes a /boot-like tree: 2 kernels of 8 MiB, 2 initrds of
// 60 MiB, 200 small files (grub modules, fonts, configs) of 1-64 KiB.
// Returns the directory and the total bytes of file content.
func makeBenchBoot(b *testing.B) (string, int64) {
	b.Helper()
	dir := b.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	var total int64
	put := func(rel string, size int) {
		data := make([]byte, size)
		for i := 0; i+8 <= len(data); i += 8 {
			v := rng.Uint64()
			for j := 0; j < 8; j++ {
				data[i+j] = byte(v >> (8 * j))
			}
		}
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			b.Fatal(err)
		}
		total += int64(size)
	}
	for i, v := range []string{"6.1.0-17-amd64", "6.1.0-18-amd64"} {
		put("vmlinuz-"+v, 8<<20)
		put("initrd.img-"+v, 60<<20+i*4096)
	}
	for i := range 200 {
		put(fmt.Sprintf("grub/x86_64-efi/mod%03d.mod", i), 1024+rng.IntN(63*1024))
	}
	return dir, total
}

// BenchmarkBuild hashes the tree with all cores (the page cache is warm
// after the first iteration, as it is for sha256sum in bench/hash.sh).
func BenchmarkBuild(b *testing.B) {
	dir, total := makeBenchBoot(b)
	for _, c := range []struct {
		name         string
		workers, buf int
	}{
		{"workers=1/buf=64K", 1, 64 << 10},
		{"workers=1/buf=256K", 1, 256 << 10},
		{"workers=1/buf=1M", 1, 1 << 20},
		{"workers=all/buf=256K", 0, 256 << 10},
		{"workers=all/buf=1M", 0, 1 << 20},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(total)
			cpu0 := cpuTime()
			for b.Loop() {
				if _, err := Build(dir, BuildOptions{Workers: c.workers, BufferSize: c.buf}); err != nil {
					b.Fatal(err)
				}
			}
			reportPerCPU(b, total, cpu0)
		})
	}
}

// cpuTime is this process's user+system CPU time. Throughput per CPU-second
// is what "close to the single-core limit per core" means, and unlike
// wall-clock MB/s it holds on a machine shared with other work.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportPerCPU(b *testing.B, bytesPerOp int64, cpu0 time.Duration) {
	cpu := cpuTime() - cpu0
	if cpu > 0 {
		b.ReportMetric(float64(bytesPerOp)*float64(b.N)/cpu.Seconds()/1e6, "MB/cpu-s")
	}
}

// BenchmarkSHA256 is the single-core limit Build is measured against:
// crypto/sha256 over 1 MiB blocks in memory (SHA-NI or AVX2 where present).
func BenchmarkSHA256(b *testing.B) {
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	h := sha256.New()
	cpu0 := cpuTime()
	for b.Loop() {
		h.Write(buf)
	}
	_ = h.Sum(nil)
	reportPerCPU(b, int64(len(buf)), cpu0)
}
