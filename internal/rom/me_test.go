package rom

import (
	"bytes"
	"encoding/binary"
	"os"
	"reflect"
	"strings"
	"testing"
)

func meOf(t *testing.T, raw []byte) *MEReport {
	t.Helper()
	img, err := FromBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	if img.Descriptor == nil {
		t.Fatal("no descriptor")
	}
	return AnalyzeME(raw, img.Descriptor)
}

func TestMEStates(t *testing.T) {
	s := x230Spec(16 << 20)
	meSize := int(s.regions[RegionME].Size())
	stock := synthME(meSize, stockME8, false, [4]uint16{8, 1, 30, 1350})
	raw, err := os.ReadFile(synthFlash(t, s, stock))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("stock", func(t *testing.T) {
		r := meOf(t, raw)
		if r.State != MEPresent || r.Firmware.Version != "8.1.30.1350" || !r.Firmware.EFFS || !r.Firmware.ChecksumOK || r.Firmware.Gen11 {
			t.Fatalf("%+v %+v", r, r.Firmware)
		}
		if want := []string{"FTPR", "MFS", "NFTP", "MDES", "FPF"}; !reflect.DeepEqual(r.Kept, want) {
			t.Fatalf("kept %v, want %v", r.Kept, want)
		}
		if r.Disable.Name != "AltMeDisable" || !r.Disable.Present || r.Disable.Set {
			t.Fatalf("strap %+v", r.Disable)
		}
		if !strings.Contains(r.Summary(), "present: 5 partitions") {
			t.Fatalf("summary %q", r.Summary())
		}
	})

	// me_cleaner without -t: FTPR left, everything else erased and dropped
	// from the FPT, the region as large as before.
	neutered := bytes.Clone(raw)
	region := neutered[0x3000 : 0x3000+meSize]
	ftprEnd := neuterME(region, false)
	t.Run("neutered", func(t *testing.T) {
		r := meOf(t, neutered)
		if r.State != MENeutered || r.Shrunk || len(r.Emptied) != 0 || r.Firmware.EFFS || !r.Firmware.ChecksumOK {
			t.Fatalf("%+v %+v", r, r.Firmware)
		}
		if r.FreeTail != int64(meSize)-int64(ftprEnd) || r.Firmware.Version != "8.1.30.1350" {
			t.Fatalf("free %d, version %s", r.FreeTail, r.Firmware.Version)
		}
	})

	// me_cleaner -S: the AltMeDisable strap as well.
	t.Run("soft-disabled", func(t *testing.T) {
		off, err := SetMEDisable(neutered, true)
		if err != nil {
			t.Fatal(err)
		}
		r := meOf(t, off)
		if r.State != MENeutered || !r.Disable.Set || !strings.Contains(r.Summary(), "AltMeDisable bit set") {
			t.Fatalf("%+v: %s", r.Disable, r.Summary())
		}
	})

	// me_cleaner -t -D: the ME region cut to what FTPR needs plus four spare
	// blocks, the BIOS region grown down to meet it.
	t.Run("shrunk", func(t *testing.T) {
		meEnd := (ftprEnd/0x1000+1)*0x1000 + 4*0x1000
		shrunk, err := Relayout(neutered, map[RegionID]RegionSpan{
			RegionME:   {0x3000, 0x3000 + meEnd - 1},
			RegionBIOS: {0x3000 + meEnd, 16<<20 - 1},
		})
		if err != nil {
			t.Fatal(err)
		}
		r := meOf(t, shrunk)
		if r.State != MENeutered || !r.Shrunk || r.Region.Size() != int64(meEnd) {
			t.Fatalf("%+v", r)
		}
		compareWithIfdtool(t, writeTemp(t, "shrunk.bin", shrunk))
		// The flash map still describes the old layout: ifdtool -t and
		// glint both say so.
		img, _ := FromBytes(shrunk)
		if probs := CheckFMAPAgainstDescriptor(img.FMAP, img.Descriptor); len(probs) != 2 {
			t.Fatalf("FMAP vs descriptor: %v", probs)
		}
		if out, err := runToolErr(needTool(t, "ifdtool"), "-t", writeTemp(t, "s.bin", shrunk)); err == nil || !strings.Contains(out, "Region mismatch") {
			t.Fatalf("ifdtool -t: %v %s", err, out)
		}
	})

	// Partitions erased but still listed (a half-done clean-up).
	t.Run("emptied-entries", func(t *testing.T) {
		b := bytes.Clone(raw)
		me := b[0x3000 : 0x3000+meSize]
		p, _ := mustME(t, me).Partition("NFTP")
		for i := p.Offset; i < p.Offset+p.Length; i++ {
			me[i] = 0xff
		}
		r := meOf(t, b)
		if r.State != MEPresent || !reflect.DeepEqual(r.Emptied, []string{"NFTP"}) {
			t.Fatalf("%+v", r)
		}
	})

	t.Run("erased-region", func(t *testing.T) {
		b := bytes.Clone(raw)
		copy(b[0x3000:0x3000+meSize], bytes.Repeat([]byte{0xff}, meSize))
		if r := meOf(t, b); r.State != MEAbsent || !strings.Contains(r.Summary(), "erased") {
			t.Fatalf("%+v", r)
		}
	})

	t.Run("no-ftpr", func(t *testing.T) {
		b := bytes.Clone(raw)
		copy(b[0x3000+0x30:], "XXXX")
		fixFPTChecksum(b[0x3000:], false)
		if r := meOf(t, b); r.State != MEUnknown || !strings.Contains(strings.Join(r.Notes, " "), "FTPR") {
			t.Fatalf("%+v", r)
		}
	})

	t.Run("bad-checksum", func(t *testing.T) {
		b := bytes.Clone(raw)
		b[0x3000+0x1c]++
		if r := meOf(t, b); r.Firmware.ChecksumOK || !strings.Contains(strings.Join(r.Notes, " "), "checksum") {
			t.Fatalf("%+v", r)
		}
	})
}

func TestMEAbsentRegion(t *testing.T) {
	s := x230Spec(8 << 20)
	delete(s.regions, RegionME)
	s.regions[RegionBIOS] = RegionSpan{0x3000, 8<<20 - 1}
	raw := bytes.Repeat([]byte{0xff}, 8<<20)
	copy(raw, synthDescriptor(s))
	d, err := ParseDescriptor(raw)
	if err != nil {
		t.Fatal(err)
	}
	if r := AnalyzeME(raw, d); r.State != MEAbsent || !strings.Contains(r.Summary(), "no ME region") {
		t.Fatalf("%+v %s", r, r.Summary())
	}
}

func TestME11(t *testing.T) {
	s := t480Spec()
	s.meDisable = true
	me := synthME(int(s.regions[RegionME].Size()), stockME8, true, [4]uint16{11, 8, 50, 3425})
	neuterME(me, true)
	raw, _ := os.ReadFile(synthFlash(t, s, me))
	r := meOf(t, raw)
	if r.State != MENeutered || !r.Firmware.Gen11 || r.Firmware.Version != "11.8.50.3425" || !r.Firmware.ChecksumOK {
		t.Fatalf("%+v %+v", r, r.Firmware)
	}
	if r.Disable.Name != "HAP" || !r.Disable.Set {
		t.Fatalf("%+v", r.Disable)
	}
}

func mustME(t *testing.T, region []byte) *MEFirmware {
	t.Helper()
	m, err := ParseMERegion(region, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMEMalformed(t *testing.T) {
	me := synthME(2<<20, stockME8, false, [4]uint16{8, 1, 30, 1350})
	b := bytes.Clone(me)
	binary.LittleEndian.PutUint32(b[0x14:], 0xffffffff)
	if _, err := ParseMERegion(b, 0); err == nil || !strings.Contains(err.Error(), "fpt.entries") {
		t.Fatalf("%v", err)
	}
	b = bytes.Clone(me[:0x40])
	if _, err := ParseMERegion(b, 0); err == nil {
		t.Fatal("a truncated entry table parsed")
	}
	// A partition pointing past the region: no data, no panic.
	b = bytes.Clone(me)
	binary.LittleEndian.PutUint32(b[0x30+8:], 0xfffff000)
	m, err := ParseMERegion(b, 0)
	if err != nil || m.Partitions[0].HasData {
		t.Fatalf("%v %+v", err, m)
	}
}
