package rom

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Synthetic Intel flash images for the descriptor and ME tests. No real
// vendor dump is redistributable, so the tests build their own, each piece
// the way the real thing is laid out:
//
//   - the descriptor: synthDescriptor writes the 4 KiB descriptor from a
//     spec (signature at 0x10, FLMAPs, FLCOMP, FLREGs, FLMSTRs, straps), with
//     the values of an Ivy Bridge ThinkPad (IFD v1, 7-series PCH) or of a
//     Sky Lake machine (IFD v2); ifdtool -d must read it as glint does.
//   - the ME region: synthME writes an FPT with the partitions of a stock
//     ME 8 (FTPR with a $MN2 manifest, NFTP, MDES, FPF, EFFS, an NVRAM
//     entry) or ME 11 (FTPR with a $CPD directory), filled with non-0xff
//     bytes; neuterME then does to it what me_cleaner does (keep FTPR,
//     erase the rest, drop the entries, clear EFFS, fix the checksum).
//   - the full image (synthFlash): fmaptool compiles a coreboot-style .fmd
//     (SI_ALL with SI_DESC/SI_GBE/SI_ME, SI_BIOS with FMAP and COREBOOT),
//     cbfstool creates the CBFS, the descriptor is written at 0, and
//     `ifdtool -i` injects the ME and GbE regions; `ifdtool -t` then checks
//     the flash map against the descriptor.

type synthSpec struct {
	version   IFDVersion
	flashSize int // bytes; 12 MiB = an 8 MiB and a 4 MiB chip
	regions   map[RegionID]RegionSpan
	masters   map[int]uint32 // FLMSTRn
	meDisable bool
}

// x230Spec is an Ivy Bridge ThinkPad-like layout: GbE, a 5 MiB ME, BIOS on
// top, locked as shipped.
func x230Spec(size int) synthSpec {
	return synthSpec{
		version: IFDv1, flashSize: size,
		regions: map[RegionID]RegionSpan{
			RegionDescriptor: {0, 0xfff},
			RegionGbE:        {0x1000, 0x2fff},
			RegionME:         {0x3000, 0x4fffff},
			RegionBIOS:       {0x500000, uint32(size - 1)},
		},
		masters: map[int]uint32{1: 0x0b0a0000, 2: 0x0c0d0000, 3: 0x08080118},
	}
}

// t480Spec is a Sky Lake-like IFD v2 layout (no GbE, ME 11 region).
func t480Spec() synthSpec {
	return synthSpec{
		version: IFDv2, flashSize: 16 << 20,
		regions: map[RegionID]RegionSpan{
			RegionDescriptor: {0, 0xfff},
			RegionME:         {0x3000, 0x6fffff},
			RegionBIOS:       {0x700000, 0xffffff},
		},
		masters: map[int]uint32{1: 0x00a00b00, 2: 0x00c00d00, 3: 0x00000000, 5: 0x00000000},
	}
}

func densityCode(size int) uint32 {
	for c := uint32(0); c <= 7; c++ {
		if 512<<10<<c == size {
			return c
		}
	}
	panic("bad chip size")
}

func synthDescriptor(s synthSpec) []byte {
	d := bytes.Repeat([]byte{0xff}, descriptorSize)
	put := func(off int, v uint32) { binary.LittleEndian.PutUint32(d[off:], v) }
	put(0x10, ifdSignature)
	chips := []int{s.flashSize}
	if s.flashSize == 12<<20 {
		chips = []int{8 << 20, 4 << 20}
	}
	nc := uint32(len(chips) - 1)
	var flcomp uint32
	nregions, isl := ifdV1Regions, uint32(0x12)
	if s.version == IFDv2 {
		nregions, isl = ifdV2Regions, 0x40
		flcomp = 6<<17 | 6<<21 | 6<<24 | 6<<27 // 17 MHz everywhere: what marks v2
		for i, c := range chips {
			flcomp |= densityCode(c) << (4 * i)
		}
		if len(chips) == 1 {
			flcomp |= 0xf << 4
		}
	} else {
		flcomp = 1 << 20 // fast read supported, 20 MHz clocks
		for i, c := range chips {
			flcomp |= densityCode(c) << (3 * i)
		}
	}
	// FLMAP0: FCBA 0x30, NC, FRBA 0x40, NR; FLMAP1: FMBA 0x80, NM 2, FPSBA 0x100, ISL;
	// FLMAP2: FMSBA 0x200, MSL 1, ICCRIBA 0x21 (what 6/7-series descriptors hold).
	put(0x14, 0x04<<24|0x04<<16|nc<<8|0x03)
	put(0x18, isl<<24|0x10<<16|2<<8|0x08)
	put(0x1c, 0x21<<16|0x01<<8|0x20)
	put(0x30, flcomp)
	put(0x34, 0)
	put(0x38, 0)
	for i := 0; i < nregions; i++ {
		span, ok := s.regions[RegionID(i)]
		if !ok {
			span = RegionSpan{0x7fff000, 0xfff} // unused: base above limit
		}
		put(0x40+4*i, encodeRegion(span))
	}
	for n := 1; n <= 5; n++ {
		put(0x80+4*(n-1), s.masters[n])
	}
	for i := 0; i < int(isl); i++ {
		put(0x100+4*i, 0x00000000+uint32(i)) // recognisable straps
	}
	if s.meDisable {
		if s.version == IFDv2 {
			put(0x100, binary.LittleEndian.Uint32(d[0x100:])|1<<16)
		} else {
			put(0x100+40, binary.LittleEndian.Uint32(d[0x100+40:])|1<<7)
		}
	}
	for i := 0; i < procStrapDwords; i++ {
		put(0x200+4*i, 0)
	}
	put(0xefc, 0) // FLUMAP1: no VSCC table
	return d
}

type mePart struct {
	name  string
	size  uint32
	flags uint32
}

// stockME8 are the partitions of an ME 8 1.5 MB firmware in flash order.
var stockME8 = []mePart{
	{"FTPR", 0x76000, 0x00000000}, {"MFS", 0x40000, 0x00000001}, {"NFTP", 0x6e000, 0x00000000},
	{"MDES", 0x1000, 0x00000001}, {"FPF", 0x1000, 0x00000001}, {"SCA1", 0, 0x00000002},
}

// synthME builds an ME region of size bytes with an FPT and the given
// partitions filled with a non-0xff pattern; gen11 puts a $CPD directory in
// FTPR.
func synthME(size int, parts []mePart, gen11 bool, version [4]uint16) []byte {
	r := bytes.Repeat([]byte{0xff}, size)
	for i := 0; i < 16; i++ {
		r[i] = 0
	}
	copy(r[0x10:], fptSignature)
	binary.LittleEndian.PutUint32(r[0x14:], uint32(len(parts)))
	r[0x18], r[0x19], r[0x1a] = 0x20, 0x10, 0x20
	for i := 0x1c; i < 0x30; i++ {
		r[i] = 0
	}
	binary.LittleEndian.PutUint32(r[fptFlagsAt:], fptEFFSPresent)
	off := uint32(0x1000)
	for i, p := range parts {
		e := r[0x30+0x20*i:]
		for j := range e[:0x20] {
			e[j] = 0
		}
		copy(e, p.name)
		copy(e[4:], "\xff\xff\xff\xff")
		if p.size != 0 {
			binary.LittleEndian.PutUint32(e[8:], off)
			binary.LittleEndian.PutUint32(e[12:], p.size)
			for k := off; k < off+p.size; k++ {
				r[k] = byte(k*7+uint32(i)) | 1 // never 0xff runs
			}
			if p.name == "FTPR" {
				writeManifest(r[off:off+p.size], gen11, version)
			}
			off += p.size
		}
		binary.LittleEndian.PutUint32(e[28:], p.flags)
	}
	fixFPTChecksum(r, gen11)
	return r
}

func writeManifest(p []byte, gen11 bool, v [4]uint16) {
	mn := 0
	if gen11 {
		copy(p, cpdSignature)
		binary.LittleEndian.PutUint32(p[4:], 2)
		e := p[0x10:]
		copy(e, "FTPR.man\x00\x00\x00\x00")
		binary.LittleEndian.PutUint32(e[12:], 0x100)
		copy(e[cpdEntrySize:], "rbe.met\x00\x00\x00\x00\x00")
		mn = 0x100
	}
	copy(p[mn+mn2TagAt:], mn2Tag)
	for i, x := range v {
		binary.LittleEndian.PutUint16(p[mn+mnVersionAt+2*i:], x)
	}
}

func fixFPTChecksum(r []byte, gen11 bool) {
	r[fptChecksumAt] = 0
	from := 0
	if gen11 {
		from = 0x10
	}
	var sum byte
	for _, c := range r[from:0x30] {
		sum += c
	}
	r[fptChecksumAt] = -sum
}

// neuterME does what me_cleaner does without -t: every partition but FTPR
// is erased and its entry dropped, the EFFS flag cleared, the checksum fixed.
// It returns where FTPR ends.
func neuterME(r []byte, gen11 bool) uint32 {
	n := binary.LittleEndian.Uint32(r[0x14:])
	var keep []byte
	var ftprEnd uint32
	for i := uint32(0); i < n; i++ {
		e := bytes.Clone(r[0x30+0x20*i : 0x30+0x20*(i+1)])
		off, l := binary.LittleEndian.Uint32(e[8:]), binary.LittleEndian.Uint32(e[12:])
		if string(e[:4]) == "FTPR" {
			keep = append(keep, e...)
			ftprEnd = off + l
			continue
		}
		if off != 0 && l != 0 {
			for k := off; k < off+l; k++ {
				r[k] = 0xff
			}
		}
	}
	copy(r[0x30:], keep)
	for k := 0x30 + uint32(len(keep)); k < 0x30+0x20*n; k++ {
		r[k] = 0xff
	}
	binary.LittleEndian.PutUint32(r[0x14:], uint32(len(keep)/0x20))
	binary.LittleEndian.PutUint32(r[fptFlagsAt:], binary.LittleEndian.Uint32(r[fptFlagsAt:])&^fptEFFSPresent)
	fixFPTChecksum(r, gen11)
	return ftprEnd
}

func synthGbE(size int) []byte {
	g := bytes.Repeat([]byte{0xff}, size)
	copy(g, []byte{0x00, 0x21, 0xcc, 0x12, 0x34, 0x56}) // a Lenovo MAC
	return g
}

func needTool(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/" + name); err == nil {
		return "/usr/sbin/" + name
	}
	t.Skipf("%s not installed (apt-get install coreboot-utils; scripts/install-deps.sh does)", name)
	return ""
}

func runTool(t testing.TB, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// synthFlash builds a full-chip image as coreboot's build does for a board
// with a descriptor: FMAP + CBFS in the BIOS region (fmaptool, cbfstool), the
// descriptor at 0, ME and GbE injected by ifdtool. It returns the file.
func synthFlash(t testing.TB, s synthSpec, me []byte) string {
	t.Helper()
	fmaptool := needTool(t, "fmaptool")
	cbfs := needTool(t, "cbfstool")
	ifd := needTool(t, "ifdtool")
	dir := t.TempDir()
	bios := s.regions[RegionBIOS]
	meSpan := s.regions[RegionME]
	var fmd strings.Builder
	// As coreboot's default .fmd for IFD boards (util/cbfstool/default-x86.fmd
	// plus the SI_* areas of src/southbridge/intel/.../fmap).
	fmt.Fprintf(&fmd, "FLASH@0x%x 0x%x {\n", uint64(1<<32)-uint64(s.flashSize), s.flashSize)
	fmt.Fprintf(&fmd, "\tSI_ALL@0x0 0x%x {\n\t\tSI_DESC@0x0 0x1000\n", bios.Base)
	if g, ok := s.regions[RegionGbE]; ok {
		fmt.Fprintf(&fmd, "\t\tSI_GBE@0x%x 0x%x\n", g.Base, g.Size())
	}
	fmt.Fprintf(&fmd, "\t\tSI_ME@0x%x 0x%x\n\t}\n", meSpan.Base, meSpan.Size())
	fmt.Fprintf(&fmd, "\tSI_BIOS@0x%x 0x%x {\n\t\tFMAP@0x0 0x200\n\t\tCOREBOOT(CBFS)@0x200 0x%x\n\t}\n}\n", bios.Base, bios.Size(), bios.Size()-0x200)
	fmdFile := filepath.Join(dir, "layout.fmd")
	fmapFile := filepath.Join(dir, "fmap.bin")
	rom := filepath.Join(dir, "flash.bin")
	os.WriteFile(fmdFile, []byte(fmd.String()), 0o644)
	runTool(t, fmaptool, fmdFile, fmapFile)
	runTool(t, cbfs, rom, "create", "-M", fmapFile, "-r", "COREBOOT")
	raw, err := os.ReadFile(rom)
	if err != nil {
		t.Fatal(err)
	}
	copy(raw, synthDescriptor(s))
	if err := os.WriteFile(rom, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	mePath := filepath.Join(dir, "me.bin")
	os.WriteFile(mePath, me, 0o644)
	runTool(t, ifd, "-i", "ME:"+mePath, "-O", rom, rom)
	if g, ok := s.regions[RegionGbE]; ok {
		gbe := filepath.Join(dir, "gbe.bin")
		os.WriteFile(gbe, synthGbE(int(g.Size())), 0o644)
		runTool(t, ifd, "-i", "GbE:"+gbe, "-O", rom, rom)
	}
	runTool(t, ifd, "-t", rom)
	return rom
}

func runToolErr(bin string, args ...string) (string, error) {
	out, err := exec.Command(bin, args...).CombinedOutput()
	return string(out), err
}

var synthOut = flag.String("synth-out", "", "write the synthetic ThinkPad-like flash images to this directory (docs/firmware-image.md)")

// TestWriteSynthImages writes the synthetic full-chip images the docs
// show: go test ./internal/rom -run TestWriteSynthImages -synth-out DIR.
// x230-stock.rom: IFD v1 as an Ivy Bridge ThinkPad ships (GbE, 5 MiB ME 8
// with all partitions, BIOS region on top, descriptor permissions as
// shipped); x230-maximized.rom: the same after me_cleaner -S -t -D and a
// grown BIOS region (glint's Relayout). The BIOS regions hold an empty
// coreboot CBFS with build_info and config naming the board; they are no
// firmware that boots.
func TestWriteSynthImages(t *testing.T) {
	if *synthOut == "" {
		t.Skip("pass -synth-out DIR to write the images")
	}
	s := x230Spec(12 << 20)
	meSize := int(s.regions[RegionME].Size())
	stock := synthME(meSize, stockME8, false, [4]uint16{8, 1, 30, 1350})
	raw, err := os.ReadFile(synthFlash(t, s, stock))
	if err != nil {
		t.Fatal(err)
	}
	img, err := FromBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{
		"build_info": "COREBOOT_VERSION: 4.15\nMAINBOARD_VENDOR: LENOVO\nMAINBOARD_PART_NUMBER: ThinkPad X230\n",
		"config":     "CONFIG_VENDOR_LENOVO=y\nCONFIG_BOARD_LENOVO_X230=y\nCONFIG_COREBOOT_ROMSIZE_KB_12288=y\nCONFIG_TPM1=y\nCONFIG_TPM_MEASURED_BOOT=y\n",
	} {
		if img, err = img.AddFile("COREBOOT", name, []byte(data), AddOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(*synthOut, "x230-stock.rom"), img.Data, 0o644); err != nil {
		t.Fatal(err)
	}
	b := bytes.Clone(img.Data)
	ftprEnd := neuterME(b[0x3000:0x3000+meSize], false)
	meEnd := (ftprEnd/0x1000+1)*0x1000 + 4*0x1000
	b, err = SetMEDisable(b, true)
	if err != nil {
		t.Fatal(err)
	}
	b, err = Relayout(b, map[RegionID]RegionSpan{RegionME: {0x3000, 0x3000 + meEnd - 1}, RegionBIOS: {0x3000 + meEnd, 12<<20 - 1}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(*synthOut, "x230-maximized.rom"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}
