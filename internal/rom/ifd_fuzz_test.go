package rom

import (
	"bytes"
	"testing"
)

func descriptorSeeds() [][]byte {
	v1 := x230Spec(16 << 20)
	v1off := x230Spec(12 << 20)
	v1off.meDisable = true
	v2 := t480Spec()
	v2.meDisable = true
	return [][]byte{synthDescriptor(v1), synthDescriptor(v1off), synthDescriptor(v2)}
}

// FuzzDescriptor: any 4 KiB+ input; parsing never panics or reads outside
// the descriptor, and every edit either refuses or returns an image of the
// same size, never touching its input.
func FuzzDescriptor(f *testing.F) {
	for _, s := range descriptorSeeds() {
		f.Add(s, uint32(0x00080000), uint32(0x00ffffff))
	}
	f.Fuzz(func(t *testing.T, b []byte, base, limit uint32) {
		for _, v := range []IFDVersion{0, IFDv1, IFDv2} {
			d, err := ParseDescriptorVersion(b, v)
			if err != nil {
				continue
			}
			for _, off := range []int64{d.FCBA, d.FRBA, d.FMBA, d.FPSBA} {
				if off < 0 || off >= descriptorSize {
					t.Fatalf("section at 0x%x", off)
				}
			}
			_ = d.FlashromLayout()
			_ = d.Check(int64(len(b)))
			_ = AnalyzeME(b, d)
		}
		orig := bytes.Clone(b)
		edits := []func([]byte) ([]byte, error){
			LockDescriptor, UnlockDescriptor,
			func(x []byte) ([]byte, error) { return SetMEDisable(x, true) },
			func(x []byte) ([]byte, error) {
				return Relayout(x, map[RegionID]RegionSpan{RegionBIOS: {base, limit}})
			},
		}
		for i, edit := range edits {
			out, err := edit(b)
			if !bytes.Equal(b, orig) {
				t.Fatalf("edit %d changed its input", i)
			}
			if err != nil {
				if out != nil {
					t.Fatalf("edit %d returned bytes with an error", i)
				}
				continue
			}
			if len(out) != len(b) {
				t.Fatalf("edit %d: %d bytes from %d", i, len(out), len(b))
			}
			if _, err := ParseDescriptor(out); err != nil {
				t.Fatalf("edit %d produced a descriptor that does not parse: %v", i, err)
			}
		}
	})
}

// FuzzMERegion: an ME region with a fuzzed FPT; partitions are only read
// within the region.
func FuzzMERegion(f *testing.F) {
	stock := synthME(2<<20, stockME8, false, [4]uint16{8, 1, 30, 1350})
	f.Add(stock[:0x1000+0x200])
	me11 := synthME(2<<20, stockME8[:1], true, [4]uint16{11, 8, 50, 3425})
	f.Add(me11[:0x1000+0x400])
	f.Fuzz(func(t *testing.T, region []byte) {
		m, err := ParseMERegion(region, 0)
		if err != nil {
			return
		}
		if int64(m.DataEnd) > int64(len(region)) {
			t.Fatalf("data end 0x%x past the %d-byte region", m.DataEnd, len(region))
		}
		for _, p := range m.Partitions {
			if p.HasData && uint64(p.Offset)+uint64(p.Length) > uint64(len(region)) {
				t.Fatalf("partition %q outside the region has data", p.Name)
			}
		}
	})
}

// FuzzFlashromLayout: layout files never panic the parser, and what parses
// names known regions with spans as written.
func FuzzFlashromLayout(f *testing.F) {
	f.Add([]byte("00000000:00000fff fd\n00001000:00002fff gbe\n00003000:0007ffff me # shrunk\n00080000:00bfffff bios\n"))
	f.Add([]byte(synthDescriptorLayout()))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseFlashromLayout(b)
		if err != nil {
			return
		}
		for id := range m {
			if id < 0 || int(id) >= len(regionNames) {
				t.Fatalf("region %d", id)
			}
		}
	})
}

func synthDescriptorLayout() string {
	d, err := ParseDescriptor(synthDescriptor(x230Spec(16 << 20)))
	if err != nil {
		panic(err)
	}
	return d.FlashromLayout()
}
