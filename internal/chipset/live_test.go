package chipset

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// fakeMachine lays out a sysfs tree and a sparse file standing in for /dev/mem (at the SPIBAR
// offset), from a dump.
func fakeMachine(t *testing.T, d *Dump, configLen int) Live {
	t.Helper()
	root := t.TempDir()
	for fn, cfg := range d.PCI {
		dir := filepath.Join(root, "sys/bus/pci/devices", "0000:"+fn)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "config"), cfg[:configLen], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mem := filepath.Join(root, "mem")
	f, err := os.Create(mem)
	if err != nil {
		t.Fatal(err)
	}
	if d.SPI != nil {
		if _, err := f.WriteAt(d.SPI, int64(d.SPIBase)); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	return Live{Root: root, Mem: mem}
}

func TestReadLive(t *testing.T) {
	want := corebootPayloadBeforeLock().dump()
	l := fakeMachine(t, want, ConfigSize)
	got, err := l.ReadLive()
	if err != nil {
		t.Fatal(err)
	}
	got.Source = want.Source
	if !bytes.Equal(got.Marshal(), want.Marshal()) {
		t.Errorf("live read differs:\n%s\nwant\n%s", got.Marshal(), want.Marshal())
	}
	if _, ok := l.ReadKernelSPI(); ok {
		t.Error("found intel_spi attributes that do not exist")
	}
	dir := filepath.Join(l.Root, "sys/bus/platform/devices/intel-spi")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "intel_spi_locked"), []byte("1\n"), 0o444)
	if k, ok := l.ReadKernelSPI(); !ok || !k.Locked {
		t.Errorf("intel_spi_locked=1 read as %+v %t", k, ok)
	}
}

func TestReadLiveNotRoot(t *testing.T) {
	l := fakeMachine(t, corebootPayloadBeforeLock().dump(), 64)
	if _, err := l.ReadLive(); !errors.Is(err, ErrNotRoot) {
		t.Errorf("64-byte config space: %v, want ErrNotRoot", err)
	}
}

func TestReadLiveUnknownChipsetLeavesMMIOAlone(t *testing.T) {
	d := corebootPayloadBeforeLock().dump()
	d.PCI[LPC][2], d.PCI[LPC][3] = 0x43, 0xA1
	l := fakeMachine(t, d, ConfigSize)
	l.Mem = filepath.Join(l.Root, "no-such-mem") // would fail if touched
	got, err := l.ReadLive()
	if err != nil || got.SPI != nil {
		t.Errorf("unknown chipset: %v, SPI read %t", err, got.SPI != nil)
	}
}
