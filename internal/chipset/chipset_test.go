package chipset

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/synthetic-*.dump from the builders")

// syntheticStates are the synthetic 7-series dumps other packages (hostcheck) test with;
// TestSyntheticFiles keeps testdata/ in step with them.
func syntheticStates() map[string]synth {
	before := corebootPayloadBeforeLock()
	locked := before
	locked.hsfs |= hsfsFLOCKDN
	nothing := before
	nothing.pr = [5]uint32{}
	nothing.biosCntl = bcBIOSWE
	vendor := synth{biosCntl: bcBLE | bcSMMBWP, rcba: 0xFED1C001, hsfs: hsfsDescriptor | hsfsFLOCKDN,
		frap: frapLocked, freg: x230StockRegions, smramc: 0x1A, meHFS: hfsRunning}
	unlockedIFD := locked
	unlockedIFD.frap = frapUnlocked
	override := locked
	override.hsfs &^= hsfsFDOPSS
	mfg := locked
	mfg.meHFS = hfsNeutered | 1<<4
	return map[string]synth{
		"x230-coreboot-before-lock": before,
		"x230-coreboot-locked":      locked,
		"x230-unprotected":          nothing,
		"x230-vendor-bios":          vendor,
		"x230-descriptor-unlocked":  unlockedIFD,
		"x230-descriptor-override":  override,
		"x230-me-manufacturing":     mfg,
	}
}

func TestSyntheticFiles(t *testing.T) {
	for name, s := range syntheticStates() {
		path := filepath.Join("testdata", "synthetic-"+name+".dump")
		d := s.dump()
		d.Source = "synthetic from the 7-series PCH datasheet, not recorded: " + name
		want := d.Marshal()
		if *update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -run TestSyntheticFiles -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run go test ./internal/chipset -run TestSyntheticFiles -update", path)
		}
	}
}

func decodeSynth(t *testing.T, s synth) *State {
	t.Helper()
	// through the text format, as the CLI and hostcheck read them
	d, err := ParseDump(s.dump().Marshal())
	if err != nil {
		t.Fatal(err)
	}
	st, err := Decode(d)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestDecodeX230States(t *testing.T) {
	states := syntheticStates()
	for _, tc := range []struct {
		name           string
		locked, ranges bool
		biosCntl       bool
		gaps           int
	}{
		{"x230-coreboot-before-lock", false, true, false, 1},
		{"x230-coreboot-locked", true, true, false, 0},
		{"x230-unprotected", false, false, false, 2},
		{"x230-vendor-bios", true, false, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := decodeSynth(t, states[tc.name])
			if st.Chipset == nil || st.Chipset.Family != Family7Series {
				t.Fatalf("chipset %+v, want 7-series", st.Chipset)
			}
			if st.SPI == nil {
				t.Fatalf("no SPI state: %s", st.SPIMissing)
			}
			if st.SPI.Locked != tc.locked || RangesProtectBIOS(st) != tc.ranges || BIOSControlProtects(st) != tc.biosCntl {
				t.Errorf("locked %t ranges %t bios_cntl %t, want %t %t %t", st.SPI.Locked, RangesProtectBIOS(st),
					BIOSControlProtects(st), tc.locked, tc.ranges, tc.biosCntl)
			}
			if gaps := FlashLockGaps(st); len(gaps) != tc.gaps {
				t.Errorf("gaps %q, want %d", gaps, tc.gaps)
			}
		})
	}
}

func TestRegionsAndAccess(t *testing.T) {
	st := decodeSynth(t, syntheticStates()["x230-coreboot-locked"])
	bios, ok := st.SPI.BIOSRegion()
	if !ok || bios.Base != 0x21000 || bios.Limit != 0xBFFFFF {
		t.Fatalf("BIOS region %#x-%#x (%t), want 0x21000-0xbfffff", bios.Base, bios.Limit, ok)
	}
	if pd := st.SPI.Regions[RegionPlatform]; pd.Used {
		t.Errorf("platform data region reads as used: %+v", pd)
	}
	if st.SPI.HostCanWrite(RegionDescriptor) || st.SPI.HostCanWrite(RegionME) || !st.SPI.HostCanWrite(RegionBIOS) {
		t.Errorf("FRAP %#x: descriptor/ME must be read-only to the host, BIOS writable", st.SPI.FRAP)
	}
	if !st.SMRAM.Locked || st.SMRAM.Open {
		t.Errorf("SMRAMC %#x: want D_LCK set, D_OPEN clear", st.SMRAM.Raw)
	}
	un := decodeSynth(t, syntheticStates()["x230-descriptor-unlocked"])
	if !un.SPI.HostCanWrite(RegionDescriptor) || !un.SPI.HostCanWrite(RegionME) {
		t.Errorf("unlocked descriptor FRAP %#x not read as host-writable", un.SPI.FRAP)
	}
	ov := decodeSynth(t, syntheticStates()["x230-descriptor-override"])
	if !ov.SPI.DescriptorOverride {
		t.Error("FDOPSS clear not read as the override strap")
	}
}

func TestWriteProtectsCoverage(t *testing.T) {
	s := &SPI{}
	set := func(i int, base, limit uint32) {
		s.Protected[i] = ProtectedRange{Base: base, Limit: limit, WriteProtect: true}
	}
	set(0, 0x500000, 0x7FFFFF)
	if s.WriteProtects(0x500000, 0xBFFFFF) {
		t.Error("half the BIOS region counted as covered")
	}
	set(1, 0x800000, 0xBFFFFF) // adjacent: together they cover it
	if !s.WriteProtects(0x500000, 0xBFFFFF) {
		t.Error("two adjacent ranges not counted as covering")
	}
	s.Protected[1].WriteProtect = false
	s.Protected[1].ReadProtect = true
	if s.WriteProtects(0x500000, 0xBFFFFF) {
		t.Error("a read-only protection counted as write protection")
	}
	set(2, 0x801000, 0xBFFFFF) // one page gap at 0x800000
	if s.WriteProtects(0x500000, 0xBFFFFF) {
		t.Error("a one-page gap went unnoticed")
	}
}

func TestMEVerdicts(t *testing.T) {
	for _, tc := range []struct {
		hfs  uint32
		want MEVerdict
	}{
		{hfsRunning, MERunning},
		{hfsNeutered, MEHalted},
		{hfsNeutered | 1<<4, MEManufacturingMode},
		{hfsRunning&^(0xF<<16) | 3<<16, MEDisabled},
		{hfsRunning&^(0xF<<16) | 4<<16, MESecurityOverride},
		{hfsRunning&^(0xF<<16) | 2<<16, MEDebug},
		{0xFFFFFFFF, MEUnknown},
	} {
		m := decodeME(tc.hfs, 0)
		if got := m.Verdict(); got != tc.want {
			t.Errorf("HFS %#08x: %v, want %v (%s)", tc.hfs, got, tc.want, m)
		}
	}
}

func TestDecodeMissingParts(t *testing.T) {
	s := corebootPayloadBeforeLock()
	s.rcba = 0xFED1C000 // enable bit clear
	s.noSPI = true
	s.meHFS = 0
	st := decodeSynth(t, s)
	if st.SPI != nil || !strings.Contains(st.SPIMissing, "RCBA") {
		t.Errorf("SPI %+v, missing %q", st.SPI, st.SPIMissing)
	}
	if st.ME != nil || !strings.Contains(st.MEMissing, "hid") {
		t.Errorf("ME %+v, missing %q", st.ME, st.MEMissing)
	}
	d := corebootPayloadBeforeLock().dump()
	binary.LittleEndian.PutUint16(d.PCI[LPC][2:], 0xA143) // Sunrise Point: SPI is its own function
	st, err := Decode(d)
	if err != nil {
		t.Fatal(err)
	}
	if st.Chipset != nil || st.BIOS != nil || !strings.Contains(st.BIOSMissing, "8086:a143") {
		t.Errorf("unknown chipset decoded: %+v", st)
	}
	d = corebootPayloadBeforeLock().dump()
	for i := range d.SPI {
		d.SPI[i] = 0
	}
	st, _ = Decode(d)
	if st.SPI != nil || !strings.Contains(st.SPIMissing, "all zeros") {
		t.Errorf("an all-zero window decoded: %q", st.SPIMissing)
	}
}

func TestParseDumpErrors(t *testing.T) {
	good := string(corebootPayloadBeforeLock().dump().Marshal())
	for name, in := range map[string]string{
		"no magic":      "pci 00:1f.0 00\n",
		"short hex":     dumpMagic + "\npci 00:1f.0 0011\n",
		"bad hex":       dumpMagic + "\npci 00:1f.0 " + strings.Repeat("zz", ConfigSize) + "\n",
		"bad address":   dumpMagic + "\npci 00:3f.0 " + strings.Repeat("00", ConfigSize) + "\n",
		"duplicate":     good + "pci 00:1f.0 " + strings.Repeat("00", ConfigSize) + "\n",
		"keyword":       dumpMagic + "\nmsr 1a0 00\n",
		"spi address":   dumpMagic + "\nspi fed1 " + strings.Repeat("00", SPIWindow) + "\n",
		"control char":  dumpMagic + "\nsource a\x1bb\n",
		"too large":     dumpMagic + "\n" + strings.Repeat("#", MaxDumpSize),
		"too many":      dumpMagic + "\n" + strings.Repeat("source x\n", 2),
		"many lines":    dumpMagic + "\n" + strings.Repeat("\n", MaxDumpLines+1),
		"empty":         "",
		"only comments": "# nothing\n",
	} {
		_, err := ParseDump([]byte(in))
		var de *DumpError
		if !errors.As(err, &de) {
			t.Errorf("%s: error %v is not a *DumpError", name, err)
		}
	}
	d, err := ParseDump([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d.Marshal(), []byte(good)) {
		t.Error("Marshal(ParseDump(x)) != x")
	}
}
