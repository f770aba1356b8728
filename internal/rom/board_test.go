package rom

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

// synthX230 is the synthetic X230-like full image with build_info and
// config naming the board (as TestWriteSynthImages writes it).
func synthX230(t *testing.T, s synthSpec) *Image {
	t.Helper()
	me := synthME(int(s.regions[RegionME].Size()), stockME8[:1], false, [4]uint16{8, 1, 30, 1350})
	raw, err := os.ReadFile(synthFlash(t, s, me))
	if err != nil {
		t.Fatal(err)
	}
	img, err := FromBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{
		"build_info": "COREBOOT_VERSION: 4.15\nMAINBOARD_VENDOR: LENOVO\nMAINBOARD_PART_NUMBER: ThinkPad X230\n",
		"config":     "CONFIG_BOARD_LENOVO_X230=y\nCONFIG_TPM1=y\nCONFIG_TPM_MEASURED_BOOT=y\n",
	} {
		if img, err = img.AddFile("COREBOOT", name, []byte(data), AddOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

func withBoardInfo(t *testing.T, img *Image, info string) *Image {
	t.Helper()
	out, err := img.RemoveFile("COREBOOT", "build_info")
	if err != nil {
		t.Fatal(err)
	}
	out, err = out.AddFile("COREBOOT", "build_info", []byte(info), AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCheckUpdate(t *testing.T) {
	tpm2 := realROM(t, "coreboot-tpm2.rom")
	tpm1 := realROM(t, "coreboot-tpm1.rom")
	personalized, err := tpm2.AddFile("COREBOOT", "glint/config", []byte("countdown = 1\n"), AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckUpdate(tpm2, personalized); err != nil {
		t.Fatalf("same board: %v", err)
	}
	other := withBoardInfo(t, tpm2, "COREBOOT_VERSION: 4.15\nMAINBOARD_VENDOR: LENOVO\nMAINBOARD_PART_NUMBER: ThinkPad X230\n")
	for _, tc := range []struct {
		name        string
		cur, next   *Image
		field, want string
	}{
		{"other board", tpm2, other, "board", "LENOVO ThinkPad X230"},
		{"other TPM family", tpm2, tpm1, "TPM family the build measures for", "TPM 1.2"},
	} {
		var me *MismatchError
		if err := CheckUpdate(tc.cur, tc.next); !errors.As(err, &me) || me.Field != tc.field || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	// A chip holding vendor firmware (no board identity) cannot be compared.
	fx := buildImage(t)
	syn, _ := FromFile(fx.rom)
	if err := CheckUpdate(syn, syn); !errors.Is(err, ErrNoBoard) {
		t.Fatalf("%v", err)
	}
}

func TestCheckUpdateDescriptor(t *testing.T) {
	stock := synthX230(t, x230Spec(12<<20))
	if err := CheckUpdate(stock, stock); err != nil {
		t.Fatal(err)
	}
	max, err := Relayout(stock.Data, map[RegionID]RegionSpan{RegionME: {0x3000, 0x7ffff}, RegionBIOS: {0x80000, 12<<20 - 1}})
	if err != nil {
		t.Fatal(err)
	}
	maxImg, _ := FromBytes(max)
	var me *MismatchError
	if err := CheckUpdate(stock, maxImg); !errors.As(err, &me) || !strings.Contains(me.Field, "region") {
		t.Fatalf("%v", err)
	}
	if off, size := stock.BIOSRegion(); off != 0x500000 || size != 7<<20 {
		t.Fatalf("BIOS region 0x%x+0x%x", off, size)
	}
}

func TestAssemble(t *testing.T) {
	full := synthX230(t, x230Spec(12<<20))
	// coreboot built for the same layout, 0xff outside the BIOS region
	// (as scripts/build-board.sh leaves it), with a file of its own
	build, err := full.AddFile("COREBOOT", "fallback/new", []byte("new build"), AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b := bytes.Clone(build.Data)
	copy(b[:0x500000], bytes.Repeat([]byte{0xff}, 0x500000))
	built, err := FromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Assemble(full, built)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Data[:0x500000], full.Data[:0x500000]) || !bytes.Equal(out.Data[0x500000:], built.Data[0x500000:]) {
		t.Fatal("the regions were not taken from the right images")
	}
	if f, err := out.File("COREBOOT", "fallback/new"); err != nil || string(f.Data) != "new build" {
		t.Fatal(err)
	}
	if r := AnalyzeME(out.Data, out.Descriptor); r.State != MENeutered {
		t.Fatalf("ME %s", r.State)
	}
	compareWithIfdtool(t, writeTemp(t, "assembled.bin", out.Data))

	// a build for the maximized layout does not fit the stock descriptor
	maxSpec := x230Spec(12 << 20)
	maxSpec.regions[RegionME] = RegionSpan{0x3000, 0x7ffff}
	maxSpec.regions[RegionBIOS] = RegionSpan{0x80000, 12<<20 - 1}
	maxBuild := synthX230(t, maxSpec)
	mb := bytes.Clone(maxBuild.Data)
	copy(mb[:0x80000], bytes.Repeat([]byte{0xff}, 0x80000))
	maxImg, _ := FromBytes(mb)
	var me *MismatchError
	if _, err := Assemble(full, maxImg); !errors.As(err, &me) || me.Field != "BIOS region" {
		t.Fatalf("%v", err)
	}
	// a build that carries another descriptor is refused
	other := bytes.Clone(built.Data)
	copy(other, synthDescriptor(maxSpec))
	otherImg, _ := FromBytes(other)
	if _, err := Assemble(full, otherImg); err == nil || !strings.Contains(err.Error(), "outside the descriptor's BIOS region") {
		t.Fatalf("%v", err)
	}
	if _, err := Assemble(built, built); err == nil {
		t.Fatal("a full image without a descriptor was accepted")
	}
}
