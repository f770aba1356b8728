package rom

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// ifdtoolDump is what `ifdtool -d` printed, parsed.
type ifdtoolDump struct {
	revision string
	regions  map[int][2]uint32 // Flash Region n: base, limit
	masters  map[int]uint32    // FLMSTRn
	access   map[int]map[string]bool
	strap    string // "HAP bit is set" ...
	density  [2]string
}

var (
	reRegion  = regexp.MustCompile(`Flash Region (\d+) \(([^)]*)\): ([0-9a-f]{8}) - ([0-9a-f]{8})`)
	reMaster  = regexp.MustCompile(`^FLMSTR(\d):\s+0x([0-9a-f]{8})`)
	reAccess  = regexp.MustCompile(`^\s+(.*) (Read|Write) Access:\s+(enabled|disabled)`)
	reStrap   = regexp.MustCompile(`(HAP|AltMeDisable|ICH_MeDisable) bit is (not )?set`)
	reRev     = regexp.MustCompile(`^[IP]CH Revision: (.*)$`)
	reDensity = regexp.MustCompile(`Component (\d) Density:\s+(\S+)`)
)

func ifdtoolDumpOf(t *testing.T, file string, v IFDVersion) ifdtoolDump {
	t.Helper()
	args := []string{"-d", file}
	if v == IFDv2 {
		args = append([]string{"-p", "sklkbl"}, args...)
	}
	out := runTool(t, needTool(t, "ifdtool"), args...)
	d := ifdtoolDump{regions: map[int][2]uint32{}, masters: map[int]uint32{}, access: map[int]map[string]bool{}}
	cur := 0
	for _, line := range strings.Split(out, "\n") {
		if m := reRegion.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			b, _ := strconv.ParseUint(m[3], 16, 32)
			l, _ := strconv.ParseUint(m[4], 16, 32)
			d.regions[n] = [2]uint32{uint32(b), uint32(l)}
		}
		if m := reMaster.FindStringSubmatch(line); m != nil {
			cur, _ = strconv.Atoi(m[1])
			v, _ := strconv.ParseUint(m[2], 16, 32)
			d.masters[cur] = uint32(v)
			d.access[cur] = map[string]bool{}
		}
		if m := reAccess.FindStringSubmatch(line); m != nil && cur != 0 {
			d.access[cur][strings.TrimSpace(m[1])+" "+m[2]] = m[3] == "enabled"
		}
		if m := reStrap.FindString(line); m != "" {
			d.strap = m
		}
		if m := reRev.FindStringSubmatch(line); m != nil {
			d.revision = m[1]
		}
		if m := reDensity.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			d.density[n-1] = m[2]
		}
	}
	return d
}

// accessNames maps ifdtool's access lines to regions.
var accessNames = map[string]RegionID{
	"Flash Descriptor": RegionDescriptor, "Host CPU/BIOS Region": RegionBIOS, "Intel ME Region": RegionME,
	"GbE Region": RegionGbE, "Platform Data Region": RegionPlatformData, "EC Region": RegionEC,
}

func densityString(n int64) string {
	if n == 0 {
		return "UNUSED"
	}
	if n < 1<<20 {
		return fmt.Sprintf("%dKB", n>>10)
	}
	return fmt.Sprintf("%dMB", n>>20)
}

// compareWithIfdtool checks that glint reads file's descriptor as ifdtool -d does.
func compareWithIfdtool(t *testing.T, file string) *Descriptor {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	d, err := ParseDescriptor(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := ifdtoolDumpOf(t, file, d.Version)
	for n, span := range want.regions {
		r, ok := d.Region(RegionID(n))
		if !ok || r.Base != span[0] || r.Limit != span[1] {
			t.Errorf("region %d: glint %+v, ifdtool %08x-%08x", n, r, span[0], span[1])
		}
	}
	for _, r := range d.Regions {
		if _, ok := want.regions[int(r.ID)]; !ok && (r.Used() || r.ID.String() != "Reserved") {
			t.Errorf("glint reads region %v that ifdtool does not print", r)
		}
	}
	if len(want.masters) != len(d.Masters) {
		t.Errorf("masters: glint %d, ifdtool %d", len(d.Masters), len(want.masters))
	}
	for reg, raw := range want.masters {
		m, ok := d.Master(reg)
		if !ok || m.Raw != raw {
			t.Errorf("FLMSTR%d: glint %+v, ifdtool 0x%08x", reg, m, raw)
			continue
		}
		for line, enabled := range want.access[reg] {
			name, rw, _ := strings.Cut(line, " Read")
			op := "Read"
			if rw == "" && strings.HasSuffix(line, " Write") {
				name, op = strings.TrimSuffix(line, " Write"), "Write"
			}
			id, ok := accessNames[name]
			if !ok {
				t.Fatalf("unknown ifdtool access line %q", line)
			}
			got := m.CanRead(id)
			if op == "Write" {
				got = m.CanWrite(id)
			}
			if got != enabled {
				t.Errorf("FLMSTR%d %s %s: glint %v, ifdtool %v", reg, id, op, got, enabled)
			}
		}
	}
	gotStrap := d.MEDisable.Name + " bit is "
	if !d.MEDisable.Set {
		gotStrap += "not "
	}
	if gotStrap += "set"; gotStrap != want.strap {
		t.Errorf("strap: glint %q, ifdtool %q", gotStrap, want.strap)
	}
	if d.Version == IFDv1 && d.Chipset != want.revision {
		t.Errorf("chipset: glint %q, ifdtool %q", d.Chipset, want.revision)
	}
	for i := 0; i < 2; i++ {
		if got := densityString(d.ComponentSize[i]); got != want.density[i] {
			t.Errorf("component %d: glint %s, ifdtool %s", i+1, got, want.density[i])
		}
	}
	return d
}

func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDescriptorAgainstIfdtool(t *testing.T) {
	unlocked := x230Spec(8 << 20)
	unlocked.regions[RegionBIOS] = RegionSpan{0x500000, 0x7fffff}
	unlocked.masters = map[int]uint32{1: 0xffff0000, 2: 0xffff0000, 3: 0x08080118}
	disabled := t480Spec()
	disabled.meDisable = true
	x230Off := x230Spec(16 << 20)
	x230Off.meDisable = true
	for name, s := range map[string]synthSpec{
		"x230-16MiB-locked": x230Spec(16 << 20), "x230-12MiB-two-chips": x230Spec(12 << 20),
		"8MiB-unlocked": unlocked, "x230-altmedisable": x230Off,
		"t480-v2": t480Spec(), "t480-v2-hap": disabled,
	} {
		t.Run(name, func(t *testing.T) {
			desc := synthDescriptor(s)
			d := compareWithIfdtool(t, writeTemp(t, "fd.bin", desc))
			if d.Version != s.version {
				t.Fatalf("version %d, want %d", d.Version, s.version)
			}
			if d.FlashSize() != int64(s.flashSize) {
				t.Errorf("flash size %d, want %d", d.FlashSize(), s.flashSize)
			}
			if d.MEDisable.Set != s.meDisable {
				t.Errorf("ME disable strap %+v, want set=%v", d.MEDisable, s.meDisable)
			}
			// None of these lets the host write the descriptor except the
			// unlocked one; the stock X230 value 0x0b0a0000 lets the host write
			// the descriptor, BIOS and GbE but not the ME.
			wantLocked := s.version == IFDv2
			if d.Locked() != wantLocked {
				t.Errorf("Locked() = %v, want %v (FLMSTR1 0x%08x)", d.Locked(), wantLocked, s.masters[1])
			}
			wantME := s.masters[1] == 0xffff0000
			if got := d.HostMaster().CanWrite(RegionME); got != wantME {
				t.Errorf("host may write the ME: %v, want %v", got, wantME)
			}
		})
	}
}

// A full image as coreboot's build makes it: glint reads the descriptor
// as ifdtool does, finds the FMAP, and the FMAP agrees with the descriptor.
func TestFullImageAgainstIfdtool(t *testing.T) {
	s := x230Spec(16 << 20)
	me := synthME(int(s.regions[RegionME].Size()), stockME8, false, [4]uint16{8, 1, 30, 1350})
	file := synthFlash(t, s, me)
	d := compareWithIfdtool(t, file)
	raw, _ := os.ReadFile(file)
	img, err := FromBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	if img.Descriptor == nil || img.FMAP == nil {
		t.Fatalf("descriptor %v, fmap %v", img.Descriptor, img.FMAP)
	}
	if probs := CheckFMAPAgainstDescriptor(img.FMAP, d); len(probs) != 0 {
		t.Fatalf("ifdtool -t accepted the layout, glint says %v", probs)
	}
	if got := d.FlashromLayout(); got != ifdtoolLayout(t, file) {
		t.Errorf("layout:\n%s\nifdtool -f:\n%s", got, ifdtoolLayout(t, file))
	}
	if probs := d.Check(int64(len(raw))); len(probs) != 0 {
		t.Errorf("Check: %v", probs)
	}
}

func ifdtoolLayout(t *testing.T, file string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "layout.txt")
	runTool(t, needTool(t, "ifdtool"), "-f", out, file)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Relayout is ifdtool -n: the same layout file gives the same bytes.
func TestRelayoutMatchesIfdtool(t *testing.T) {
	ifd := needTool(t, "ifdtool")
	for _, tc := range []struct {
		name   string
		spec   synthSpec
		layout string
		gen11  bool
	}{
		// me_cleaner -t -D on an X230: ME cut to 0x3000-0x7ffff, BIOS grown down to meet it.
		{"x230-maximized", x230Spec(16 << 20), "00000000:00000fff fd\n00001000:00002fff gbe\n00003000:0007ffff me\n00080000:00ffffff bios\n", false},
		// GbE dropped, BIOS grown over a shrunk ME on IFD v2.
		{"v2-maximized", t480Spec(), "00003000:0007ffff me\n00080000:00ffffff bios\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.spec
			meSize := int(s.regions[RegionME].Size())
			me := synthME(meSize, stockME8[:1], tc.gen11, [4]uint16{8, 1, 30, 1350})
			file := synthFlash(t, s, me)
			raw, _ := os.ReadFile(file)
			layoutFile := writeTemp(t, "layout.txt", []byte(tc.layout))
			out := filepath.Join(t.TempDir(), "new.bin")
			args := []string{"-n", layoutFile, "-O", out, file}
			if s.version == IFDv2 {
				args = append([]string{"-p", "sklkbl"}, args...)
			}
			runTool(t, ifd, args...)
			want, _ := os.ReadFile(out)

			spans, err := ParseFlashromLayout([]byte(tc.layout))
			if err != nil {
				t.Fatal(err)
			}
			got, err := Relayout(raw, spans)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("glint and ifdtool -n differ at 0x%x", firstDiff(got, want))
			}
			if bytes.Equal(got, raw) {
				t.Fatal("nothing changed")
			}
			// and ifdtool reads glint's result as glint does
			compareWithIfdtool(t, writeTemp(t, "glint.bin", got))
			d, _ := ParseDescriptor(got)
			if b := d.Regions[RegionBIOS]; b.Base != spans[RegionBIOS].Base {
				t.Fatalf("BIOS %v", b)
			}
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// Where ifdtool would lose data or change the image size, glint refuses
// and leaves the input as it was.
func TestRelayoutRefuses(t *testing.T) {
	s := x230Spec(12 << 20)
	me := synthME(int(s.regions[RegionME].Size()), stockME8, false, [4]uint16{8, 1, 30, 1350})
	raw := bytes.Repeat([]byte{0xff}, 12<<20)
	copy(raw, synthDescriptor(s))
	copy(raw[0x3000:], me)
	copy(raw[12<<20-16:], "reset vector....")
	orig := bytes.Clone(raw)
	for _, tc := range []struct {
		name    string
		changes map[RegionID]RegionSpan
		want    string
	}{
		{"ME shrinks over its partitions", map[RegionID]RegionSpan{RegionME: {0x3000, 0x1dfff}, RegionBIOS: {0x1e000, 0xbfffff}}, "not erased"},
		{"overlap", map[RegionID]RegionSpan{RegionBIOS: {0x400000, 0xbfffff}}, "overlap"},
		{"misaligned", map[RegionID]RegionSpan{RegionBIOS: {0x500800, 0xbfffff}}, "4 KiB"},
		{"past the image", map[RegionID]RegionSpan{RegionBIOS: {0x500000, 0xffffff}}, "past the"},
		{"descriptor moves", map[RegionID]RegionSpan{RegionDescriptor: {0x1000, 0x1fff}}, "cannot move"},
		{"unknown region", map[RegionID]RegionSpan{RegionID(12): {0x1000, 0x1fff}}, "no region 12"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Relayout(raw, tc.changes)
			if err == nil || !strings.Contains(err.Error(), tc.want) || out != nil {
				t.Fatalf("err %v (want %q), output %d bytes", err, tc.want, len(out))
			}
			if !bytes.Equal(raw, orig) {
				t.Fatal("the input was changed")
			}
		})
	}
	var pe error = ErrDataLoss
	if _, err := Relayout(raw, map[RegionID]RegionSpan{RegionME: {0x3000, 0x1dfff}}); !errors.Is(err, pe) {
		t.Fatalf("data loss is not ErrDataLoss: %v", err)
	}
	// A 12 MiB image stays 12 MiB (ifdtool -n would make it 16 MiB).
	meSmall := synthME(int(s.regions[RegionME].Size()), stockME8[:1], false, [4]uint16{8, 1, 30, 1350})
	copy(raw[0x3000:], meSmall)
	out, err := Relayout(raw, map[RegionID]RegionSpan{RegionME: {0x3000, 0x7ffff}, RegionBIOS: {0x80000, 0xbfffff}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 12<<20 || !bytes.Equal(out[12<<20-16:], []byte("reset vector....")) {
		t.Fatalf("%d bytes, top %q", len(out), out[len(out)-16:])
	}
}

// A standalone 4 KiB descriptor (coreboot's CONFIG_IFD_BIN_PATH blob) can
// be relaid out too, as ifdtool -n does it.
func TestRelayoutDescriptorOnly(t *testing.T) {
	desc := synthDescriptor(x230Spec(16 << 20))
	layout := "00003000:0001dfff me\n0001e000:00ffffff bios\n"
	file := writeTemp(t, "fd.bin", desc)
	out := filepath.Join(t.TempDir(), "new.bin")
	runTool(t, needTool(t, "ifdtool"), "-n", writeTemp(t, "l.txt", []byte(layout)), "-O", out, file)
	want, _ := os.ReadFile(out)
	spans, _ := ParseFlashromLayout([]byte(layout))
	got, err := Relayout(desc, spans)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("differ at 0x%x", firstDiff(got, want))
	}
	if _, err := Relayout(desc, map[RegionID]RegionSpan{RegionBIOS: {0x500000, 0x1ffffff}}); err == nil {
		t.Fatal("a region past the declared 16 MiB flash was accepted")
	}
}

func TestLockUnlockMEDisableMatchIfdtool(t *testing.T) {
	ifd := needTool(t, "ifdtool")
	for _, s := range []synthSpec{x230Spec(16 << 20), t480Spec()} {
		me := synthME(int(s.regions[RegionME].Size()), stockME8[:1], s.version == IFDv2, [4]uint16{11, 8, 50, 3425})
		file := synthFlash(t, s, me)
		raw, _ := os.ReadFile(file)
		for _, op := range []struct {
			flag []string
			fn   func([]byte) ([]byte, error)
		}{
			{[]string{"-u"}, UnlockDescriptor},
			{[]string{"-l"}, LockDescriptor},
			{[]string{"-M", "1"}, func(b []byte) ([]byte, error) { return SetMEDisable(b, true) }},
			{[]string{"-M", "0"}, func(b []byte) ([]byte, error) { return SetMEDisable(b, false) }},
		} {
			t.Run(fmt.Sprintf("v%d%s", s.version, strings.Join(op.flag, "")), func(t *testing.T) {
				// start from the other state so the edit changes something
				in := raw
				if op.flag[0] == "-l" {
					in, _ = UnlockDescriptor(raw)
				}
				if len(op.flag) == 2 && op.flag[1] == "0" {
					in, _ = SetMEDisable(raw, true)
				}
				inFile := writeTemp(t, "in.bin", in)
				out := filepath.Join(t.TempDir(), "out.bin")
				args := append(append([]string{}, op.flag...), "-O", out, inFile)
				if s.version == IFDv2 {
					args = append([]string{"-p", "sklkbl"}, args...)
				}
				runTool(t, ifd, args...)
				want, _ := os.ReadFile(out)
				got, err := op.fn(in)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("glint and ifdtool %v differ at 0x%x", op.flag, firstDiff(got, want))
				}
				if bytes.Equal(got, in) {
					t.Fatal("the edit changed nothing")
				}
				d := compareWithIfdtool(t, writeTemp(t, "glint.bin", got))
				switch op.flag[0] {
				case "-u":
					if d.Locked() || !d.HostMaster().CanWrite(RegionME) {
						t.Error("unlocked descriptor reads as locked")
					}
				case "-l":
					if !d.Locked() || d.HostMaster().CanWrite(RegionME) || !d.HostMaster().CanWrite(RegionBIOS) {
						t.Errorf("locked descriptor: host %+v", d.HostMaster())
					}
				}
			})
		}
	}
}

func TestParseFlashromLayout(t *testing.T) {
	for _, bad := range []string{"00000000:00000fff", "0:fff nonsense", "zz:fff bios", "0:fff bios\n0:fff bios\n"} {
		if _, err := ParseFlashromLayout([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	m, err := ParseFlashromLayout([]byte("# comment\n00500000:00bfffff BIOS\n00003000:004fffff Intel ME\n"))
	if err == nil {
		t.Fatalf("a name with a space parsed: %v", m)
	}
	m, err = ParseFlashromLayout([]byte("# comment\n00500000:00bfffff BIOS\n00003000:004fffff me # the ME\n"))
	if err != nil || m[RegionBIOS] != (RegionSpan{0x500000, 0xbfffff}) || m[RegionME].Size() != 0x4fd000 {
		t.Fatalf("%v %v", m, err)
	}
}

func TestDescriptorMalformed(t *testing.T) {
	good := synthDescriptor(x230Spec(16 << 20))
	for _, tc := range []struct {
		name  string
		patch func(b []byte)
		field string
	}{
		{"no signature", func(b []byte) { b[0x10] = 0 }, "ifd.flvalsig"},
		{"region table past 4 KiB", func(b []byte) { b[0x16] = 0xff }, "ifd.frba"},
		{"straps past 4 KiB", func(b []byte) { b[0x1a] = 0xf0; b[0x1b] = 0xff }, "ifd.fpsba"},
		{"master table past 4 KiB", func(b []byte) { b[0x18] = 0xff }, "ifd.fmba"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(good)
			if tc.field == "ifd.fmba" {
				b = synthDescriptor(t480Spec()) // v2 reads 5 masters: 0xff0+20 > 4 KiB
			}
			tc.patch(b)
			_, err := ParseDescriptor(b)
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Field != tc.field {
				t.Fatalf("want ParseError on %s, got %v", tc.field, err)
			}
		})
	}
	if _, err := ParseDescriptor(good[:100]); err == nil {
		t.Fatal("a truncated descriptor parsed")
	}
}
