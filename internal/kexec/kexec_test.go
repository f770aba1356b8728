package kexec

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/bootcfg"
)

const bootcfgTestdata = "../bootcfg/testdata"

func TestWriteInitrdPadding(t *testing.T) {
	var buf bytes.Buffer
	n, err := WriteInitrd(&buf, []File{{Data: []byte("12345")}, {Data: []byte("abcd")}, {Data: []byte("xy")}}, []byte("KEY"))
	if err != nil {
		t.Fatal(err)
	}
	want := []byte("12345\x00\x00\x00abcdxy\x00\x00KEY")
	if !bytes.Equal(buf.Bytes(), want) || n != int64(len(want)) {
		t.Fatalf("combined initrd %q (%d), want %q", buf.Bytes(), n, want)
	}
}

func TestInitrdMemfdByteExact(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "ucode.img")
	os.WriteFile(a, []byte("ucode-7"), 0o644)
	img := Image{Kind: bootcfg.Linux, Kernel: File{Data: []byte("k")},
		Initrds: []File{{Path: a}, {Data: []byte("main-initrd-12")}}, ExtraInitrd: []byte("070701-secret")}
	f, err := initrdMemfd(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte("ucode-7\x00main-initrd-12\x00\x00070701-secret")
	if !bytes.Equal(got, want) {
		t.Fatalf("memfd holds %q, want %q", got, want)
	}
	// The memfd is anonymous: its /proc link names no file on a disk.
	link, _ := os.Readlink("/proc/self/fd/" + itoa(int(f.Fd())))
	if !strings.HasPrefix(link, "/memfd:glint-initrd") {
		t.Errorf("initrd fd points at %q, want an anonymous memfd", link)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func sha(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestDryRunLinuxEntry(t *testing.T) {
	dir := filepath.Join(bootcfgTestdata, "debian12")
	entries, def, err := bootcfg.Discover(dir)
	if err != nil {
		t.Fatal(err)
	}
	img, err := FromEntry(entries[def], Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("070701 the disk key cpio")
	img.ExtraInitrd = secret
	d := &DryRun{}
	if err := d.Exec(); !errors.Is(err, ErrNotLoaded) {
		t.Fatalf("Exec before Load: %v", err)
	}
	if err := d.Load(img); err != nil {
		t.Fatal(err)
	}
	r := d.Loaded
	if r.Kernel.Path != "vmlinuz-6.1.0-12-amd64" || r.Kernel.SHA256 != sha(t, filepath.Join(dir, "vmlinuz-6.1.0-12-amd64")) {
		t.Errorf("kernel %+v", r.Kernel)
	}
	if r.Cmdline != "root=UUID=5b7a0d3e-2b7c-4d41-9e3f-0c7d2f1a9b64 ro quiet" {
		t.Errorf("cmdline %q", r.Cmdline)
	}
	initrd, _ := os.ReadFile(filepath.Join(dir, "initrd.img-6.1.0-12-amd64"))
	combined := append(append([]byte{}, initrd...), make([]byte, (4-len(initrd)%4)%4)...)
	combined = append(combined, secret...)
	sum := sha256.Sum256(combined)
	if r.Initrd.SHA256 != hex.EncodeToString(sum[:]) || r.Initrd.Size != int64(len(combined)) {
		t.Errorf("combined initrd %+v, want %d bytes", r.Initrd, len(combined))
	}
	if r.ExtraLength != len(secret) {
		t.Errorf("extra length %d", r.ExtraLength)
	}
	if strings.Contains(r.String(), string(secret)) {
		t.Fatal("the record's text contains the secret")
	}
	if err := d.Exec(); err != nil || !r.Executed {
		t.Fatalf("Exec: %v executed=%v", err, r.Executed)
	}
}

func TestDryRunXenEntry(t *testing.T) {
	dir := filepath.Join(bootcfgTestdata, "qubes42")
	entries, def, err := bootcfg.Discover(dir)
	if err != nil {
		t.Fatal(err)
	}
	img, err := FromEntry(entries[def], Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	d := &DryRun{}
	if err := d.Load(img); err != nil {
		t.Fatal(err)
	}
	r := d.Loaded
	if r.Kind != "multiboot2" || len(r.Modules) != 2 || !r.Modules[1].NoUnzip ||
		!strings.HasPrefix(r.Modules[0].Cmdline, "root=/dev/mapper/qubes_dom0-root ro") ||
		r.Modules[0].SHA256 != sha(t, filepath.Join(dir, "vmlinuz-6.1.62-1.qubes.fc37.x86_64")) {
		t.Errorf("record %+v", r)
	}
	// The Qubes testdata's xen-4.17.2.gz is a placeholder: planning it must
	// fail cleanly, naming the missing header.
	d.Platform = testPlatform()
	if err := d.Load(img); !errors.Is(err, ErrNoHeader) {
		t.Fatalf("planning a fake xen: %v, want ErrNoHeader", err)
	}
	// The disk key rides on the dom0 initrd (the last module); an entry
	// without one has no place for it and is refused, naming the fix.
	d.Platform = nil
	img.ExtraInitrd = []byte("070701-key")
	if err := d.Load(img); err != nil {
		t.Fatalf("Xen entry with a disk key: %v", err)
	}
	if d.Loaded.ExtraLength != len(img.ExtraInitrd) || d.Loaded.Initrd.Size != 0 {
		t.Errorf("record of a Xen entry with a key: %+v", d.Loaded)
	}
	img.Modules = img.Modules[:1]
	if err := d.Load(img); err == nil || !strings.Contains(err.Error(), "module2") {
		t.Fatalf("Multiboot image with a key and no initrd module: %v", err)
	}
	img.ExtraInitrd = nil
	img.Initrds = []File{{Data: []byte("x")}}
	if err := d.Load(img); err == nil {
		t.Fatal("Multiboot image with Initrds accepted")
	}
}

func testPlatform() *Platform {
	return &Platform{MemoryMap: []MemRange{
		{Start: 0, Size: 0x9fc00, Type: MemAvailable},
		{Start: 0x9fc00, Size: 0x400, Type: MemReserved},
		{Start: 0xf0000, Size: 0x10000, Type: MemReserved},
		{Start: 0x100000, Size: 0x7fee0000, Type: MemAvailable},
		{Start: 0x7ffe0000, Size: 0x20000, Type: MemReserved},
	}, RSDPv1: rsdpV1()}
}

func rsdpV1() []byte {
	b := make([]byte, 20)
	copy(b, "RSD PTR ")
	copy(b[9:], "GLINT ")
	b[16] = 0x40
	var s byte
	for _, c := range b {
		s += c
	}
	b[8] = -s
	return b
}

func TestParseRSDP(t *testing.T) {
	v1, v2 := ParseRSDP(rsdpV1())
	if v1 == nil || v2 != nil {
		t.Fatalf("v1 %x v2 %x", v1, v2)
	}
	bad := rsdpV1()
	bad[9]++
	if v1, _ := ParseRSDP(bad); v1 != nil {
		t.Fatal("bad checksum accepted")
	}
}

// realXen returns the inflated Debian Xen hypervisor, or skips.
func realXen(t testing.TB) ([]byte, []byte) {
	t.Helper()
	gz, err := os.ReadFile("../../cache/xen/xen.gz")
	if err != nil {
		t.Skip("no real Xen: run internal/kexec/testdata/fetch-xen.sh (downloads xen-hypervisor-4.17-amd64 into cache/xen)")
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	elf, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return gz, elf
}

func TestRealXenHeaderAndELF(t *testing.T) {
	_, xen := realXen(t)
	h, err := ParseMultiboot2Header(xen)
	if err != nil {
		t.Fatal(err)
	}
	// Xen 4.17 xen/arch/x86/boot/head.S: required request for basic
	// meminfo and mmap, module alignment, relocatable, EFI64 entry.
	if h.Architecture != 0 || !h.InfoRequired || !h.ModuleAlign || h.Relocatable == nil || h.EFI64Entry == 0 || h.HasEntry || h.Address != nil {
		t.Errorf("header %+v", h)
	}
	if !containsAll(h.InfoRequests, 4, 6) {
		t.Errorf("information requests %v, want basic meminfo (4) and mmap (6)", h.InfoRequests)
	}
	segs, entry, err := ParseELF(xen)
	if err != nil {
		t.Fatal(err)
	}
	if entry != 0x200000 || len(segs) != 1 || segs[0].Addr != 0x200000 || segs[0].MemSize < uint64(len(segs[0].Data)) {
		t.Errorf("entry %#x segments %+v", entry, segs)
	}
}

// TestPlanXenAfterKexec checks the two things Xen needs when it is not
// started by a BIOS boot loader: no-real-mode (added once, only for an image
// that knows the option) and, on a machine without a BIOS data area, a
// page 0 whose BDA gives the base memory size.
func TestPlanXenAfterKexec(t *testing.T) {
	gz, xen := realXen(t)
	img := Image{Kind: bootcfg.Multiboot2, Kernel: File{Path: "/boot/xen.gz", Data: gz}, Cmdline: "console=com1",
		Modules: []Module{{File: File{Path: "/boot/vmlinuz", Data: []byte("bzImage")}}}}
	plat := testPlatform()
	mbiCmd := func(p *Plan) string {
		return string(parseMBI(t, p.MBI)[mbiCmdline][0])
	}
	for _, c := range []struct{ name, cmdline, want string }{
		{"added", "console=com1", "xen.gz console=com1 no-real-mode\x00"},
		{"kept once", "no-real-mode console=com1", "xen.gz no-real-mode console=com1\x00"},
		{"empty", "", "xen.gz no-real-mode\x00"},
	} {
		img.Cmdline = c.cmdline
		plan, err := PlanMultiboot2(img, *plat)
		if err != nil {
			t.Fatal(err)
		}
		if got := mbiCmd(plan); got != c.want || plan.Cmdline+"\x00" != got {
			t.Errorf("%s: cmdline tag %q (plan %q), want %q", c.name, got, plan.Cmdline, c.want)
		}
	}
	// A Multiboot2 kernel that does not know the option keeps its line.
	other := bytes.ReplaceAll(xen, []byte("no-real-mode"), []byte("xx-real-mode"))
	img.Kernel.Data, img.Cmdline = other, "console=com1"
	plan, err := PlanMultiboot2(img, *plat)
	if err != nil {
		t.Fatal(err)
	}
	if got := mbiCmd(plan); got != "xen.gz console=com1\x00" {
		t.Errorf("non-Xen cmdline tag %q", got)
	}
	for _, s := range plan.Segments {
		if s.Addr == 0 {
			t.Error("page 0 loaded on a machine with a BDA")
		}
	}
	// No BDA (UEFI): page 0 carries base memory 639 KiB at 0x413, EBDA 0.
	img.Kernel.Data = gz
	noBDA := *plat
	noBDA.NoBDA = true
	if plan, err = PlanMultiboot2(img, noBDA); err != nil {
		t.Fatal(err)
	}
	s0 := plan.Segments[0]
	if s0.Addr != 0 || s0.MemSize != 4096 || len(s0.Data) != 4096 ||
		binary.LittleEndian.Uint16(s0.Data[0x413:]) != 639 || binary.LittleEndian.Uint16(s0.Data[0x40e:]) != 0 {
		t.Errorf("page 0 segment at %#x+%#x, BDA base memory %d", s0.Addr, s0.MemSize, binary.LittleEndian.Uint16(s0.Data[0x413:]))
	}
}

func containsAll(have []uint32, want ...uint32) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}

func TestPlanRealXen(t *testing.T) {
	gz, xen := realXen(t)
	dom0 := bytes.Repeat([]byte("bzImage!"), 5000)
	initrd := []byte("initramfs-bytes")
	img := Image{Kind: bootcfg.Multiboot2, Kernel: File{Path: "/boot/xen-4.17.gz", Data: gz}, Cmdline: "console=com1 dom0_mem=512M",
		Modules: []Module{{File: File{Path: "/boot/vmlinuz-6.1", Data: dom0}, Cmdline: "root=/dev/sda1 console=hvc0"}, {File: File{Path: "/boot/initrd.img", Data: initrd}, NoUnzip: true}}}
	plat := testPlatform()
	plan, err := PlanMultiboot2(img, *plat)
	if err != nil {
		t.Fatal(err)
	}
	if plan.KernelEntry != 0x200000 {
		t.Errorf("kernel entry %#x", plan.KernelEntry)
	}
	// Segments are disjoint, page aligned apart from the kernel, in RAM, below 4 GiB.
	for i, s := range plan.Segments {
		if i > 0 {
			p := plan.Segments[i-1]
			if p.Addr+p.MemSize > s.Addr {
				t.Errorf("segments overlap: %#x+%#x and %#x", p.Addr, p.MemSize, s.Addr)
			}
		}
		if !inRAM(plat.MemoryMap, s.Addr, s.MemSize) || s.Addr+s.MemSize > limit4G {
			t.Errorf("segment %#x+%#x outside RAM below 4 GiB", s.Addr, s.MemSize)
		}
	}
	for _, a := range plan.ModuleAddrs {
		if a%4096 != 0 {
			t.Errorf("module at %#x is not page aligned (Xen asks for module alignment)", a)
		}
	}
	// The trampoline carries the boot information and entry addresses.
	var tr []byte
	for _, s := range plan.Segments {
		if s.Addr == plan.Entry {
			tr = s.Data
		}
	}
	if binary.LittleEndian.Uint32(tr[trampolineMBIOffset:]) != uint32(plan.MBIAddr) || binary.LittleEndian.Uint32(tr[trampolineEntryOffset:]) != 0x200000 {
		t.Errorf("trampoline not patched: %x", tr)
	}
	tags := parseMBI(t, plan.MBI)
	if string(tags[mbiCmdline][0]) != "xen-4.17.gz console=com1 dom0_mem=512M no-real-mode\x00" {
		t.Errorf("cmdline tag %q", tags[mbiCmdline][0])
	}
	if string(tags[mbiLoaderName][0]) != "glint\x00" {
		t.Errorf("loader name %q", tags[mbiLoaderName][0])
	}
	mods := tags[mbiModule]
	if len(mods) != 2 {
		t.Fatalf("%d module tags", len(mods))
	}
	start, end := binary.LittleEndian.Uint32(mods[0]), binary.LittleEndian.Uint32(mods[0][4:])
	if uint64(start) != plan.ModuleAddrs[0] || end-start != uint32(len(dom0)) || string(mods[0][8:]) != "vmlinuz-6.1 root=/dev/sda1 console=hvc0\x00" {
		t.Errorf("dom0 module tag %#x-%#x %q", start, end, mods[0][8:])
	}
	if string(mods[1][8:]) != "initrd.img\x00" {
		t.Errorf("initrd module tag %q", mods[1][8:])
	}
	if bm := tags[mbiBasicMem][0]; binary.LittleEndian.Uint32(bm) != 639 || binary.LittleEndian.Uint32(bm[4:]) != (0x7fee0000>>10) {
		t.Errorf("basic meminfo %x", bm)
	}
	if mm := tags[mbiMmap][0]; binary.LittleEndian.Uint32(mm) != 24 || (len(mm)-8)/24 != len(plat.MemoryMap) {
		t.Errorf("mmap tag %d bytes", len(mm))
	}
	if len(tags[mbiACPIOld]) != 1 || !bytes.Equal(tags[mbiACPIOld][0], plat.RSDPv1) {
		t.Errorf("ACPI old RSDP tag %x", tags[mbiACPIOld])
	}
	// The module data in the segments is exactly the files (not unzipped:
	// the dom0 kernel is not gzip).
	for _, s := range plan.Segments {
		if s.Addr == plan.ModuleAddrs[0] && !bytes.Equal(s.Data, dom0) {
			t.Error("dom0 module segment differs from the file")
		}
	}
	// The disk key is appended to the last module (the dom0 initrd), after
	// padding to 4 bytes as for a Linux initrd; Wipe clears glint's copy.
	keyed := img
	keyed.ExtraInitrd = []byte("070701-disk-key")
	kplan, err := PlanMultiboot2(keyed, *plat)
	if err != nil {
		t.Fatal(err)
	}
	kmods := parseMBI(t, kplan.MBI)[mbiModule]
	want := append([]byte("initramfs-bytes\x00"), keyed.ExtraInitrd...)
	var keySeg []byte
	for _, s := range kplan.Segments {
		if s.Addr == kplan.ModuleAddrs[1] {
			keySeg = s.Data
		}
	}
	if !bytes.Equal(keySeg, want) {
		t.Errorf("initrd module with key = %q, want %q", keySeg, want)
	}
	if st, en := binary.LittleEndian.Uint32(kmods[1]), binary.LittleEndian.Uint32(kmods[1][4:]); en-st != uint32(len(want)) {
		t.Errorf("initrd module tag spans %d bytes, want %d", en-st, len(want))
	}
	if !bytes.Equal(initrd, []byte("initramfs-bytes")) {
		t.Errorf("planning changed the caller's initrd: %q", initrd)
	}
	kplan.Wipe()
	if !bytes.Equal(keySeg, make([]byte, len(want))) {
		t.Error("Wipe left the key-carrying module in memory")
	}
	// The dry run records the same plan.
	d := &DryRun{Platform: plat}
	if err := d.Load(img); err != nil || len(d.Loaded.Segments) != len(plan.Segments) || d.Loaded.Entry != plan.Entry {
		t.Fatalf("dry run: %v %+v", err, d.Loaded)
	}
	_ = xen
}

// parseMBI checks the boot information framing and returns tag bodies by type.
func parseMBI(t *testing.T, b []byte) map[uint32][][]byte {
	t.Helper()
	if int(binary.LittleEndian.Uint32(b)) != len(b) {
		t.Fatalf("total_size %d, have %d", binary.LittleEndian.Uint32(b), len(b))
	}
	out := map[uint32][][]byte{}
	for p := 8; p+8 <= len(b); {
		typ, size := binary.LittleEndian.Uint32(b[p:]), binary.LittleEndian.Uint32(b[p+4:])
		if size < 8 || p+int(size) > len(b) {
			t.Fatalf("tag %d size %d at %d", typ, size, p)
		}
		if typ == mbiEnd {
			if p+8 != len(b) {
				t.Fatalf("end tag at %d of %d", p, len(b))
			}
			return out
		}
		out[typ] = append(out[typ], b[p+8:p+int(size)])
		p += (int(size) + 7) &^ 7
	}
	t.Fatal("no end tag")
	return nil
}

func TestTrampolineMatchesSource(t *testing.T) {
	as, err1 := exec.LookPath("as")
	objcopy, err2 := exec.LookPath("objcopy")
	if err1 != nil || err2 != nil {
		t.Skip("GNU as/objcopy (binutils) not installed: cannot re-assemble testdata/trampoline_amd64.S")
	}
	dir := t.TempDir()
	obj, bin := filepath.Join(dir, "t.o"), filepath.Join(dir, "t.bin")
	if out, err := exec.Command(as, "--64", "-o", obj, "testdata/trampoline_amd64.S").CombinedOutput(); err != nil {
		t.Fatalf("as: %v\n%s", err, out)
	}
	if out, err := exec.Command(objcopy, "-O", "binary", "-j", ".text", obj, bin).CombinedOutput(); err != nil {
		t.Fatalf("objcopy: %v\n%s", err, out)
	}
	got, _ := os.ReadFile(bin)
	if !bytes.Equal(got, trampolineCode[:]) {
		t.Fatalf("trampolineCode differs from the assembled source:\n%x\n%x", got, trampolineCode[:])
	}
	// The patched immediates follow the mov opcodes.
	if trampolineCode[trampolineMBIOffset-1] != 0xbb || trampolineCode[trampolineEntryOffset-1] != 0xb9 {
		t.Fatal("immediate offsets do not follow mov $imm32 opcodes")
	}
}

func TestHostileHeaders(t *testing.T) {
	hdr := func(length uint32, tags ...[]byte) []byte {
		b := make([]byte, 16)
		binary.LittleEndian.PutUint32(b, Multiboot2HeaderMagic)
		binary.LittleEndian.PutUint32(b[8:], length)
		binary.LittleEndian.PutUint32(b[12:], -(Multiboot2HeaderMagic + length))
		for _, tg := range tags {
			b = append(b, tg...)
		}
		return b
	}
	tag := func(typ, flags uint16, size uint32, body ...byte) []byte {
		b := binary.LittleEndian.AppendUint16(nil, typ)
		b = binary.LittleEndian.AppendUint16(b, flags)
		b = binary.LittleEndian.AppendUint32(b, size)
		return append(b, body...)
	}
	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"none", make([]byte, 100), ErrNoHeader},
		{"length beyond data", hdr(1 << 30), ErrTruncated},
		{"tag size beyond header", hdr(32, tag(1, 0, 4096), tag(0, 0, 8)), ErrTruncated},
		{"tag size below 8", hdr(32, tag(1, 0, 4), tag(0, 0, 8)), ErrTruncated},
		{"no end tag", hdr(24, tag(6, 0, 8)), ErrTruncated},
		{"unknown required tag", hdr(32, tag(77, 0, 8), tag(0, 0, 8)), ErrUnsupported},
		{"short address tag", hdr(32, tag(2, 0, 8), tag(0, 0, 8)), ErrTruncated},
	}
	for _, c := range cases {
		_, err := ParseMultiboot2Header(c.data)
		var pe *ParseError
		if !errors.Is(err, c.want) || !errors.As(err, &pe) {
			t.Errorf("%s: err %v, want %v as *ParseError", c.name, err, c.want)
		}
	}
	if h, err := ParseMultiboot2Header(hdr(32, tag(77, 1, 8), tag(0, 0, 8))); err != nil || h == nil {
		t.Errorf("optional unknown tag refused: %v", err)
	}
}

func TestHostileELF(t *testing.T) {
	_, xen := realXenOrSynthetic(t)
	mut := func(f func(b []byte)) []byte { b := append([]byte(nil), xen...); f(b); return b }
	cases := map[string][]byte{
		"truncated":      xen[:40],
		"phnum huge":     mut(func(b []byte) { binary.LittleEndian.PutUint16(b[44:], 0xffff) }),
		"phoff past end": mut(func(b []byte) { binary.LittleEndian.PutUint32(b[28:], 0xfffffff0) }),
		"filesz > memsz": mut(func(b []byte) { binary.LittleEndian.PutUint32(b[52+16:], 0xffffffff) }),
		"below 1 MiB":    mut(func(b []byte) { binary.LittleEndian.PutUint32(b[52+12:], 0x1000) }),
		"entry outside":  mut(func(b []byte) { binary.LittleEndian.PutUint32(b[24:], 0x10) }),
	}
	for name, data := range cases {
		if _, _, err := ParseELF(data); err == nil {
			t.Errorf("%s: accepted", name)
		} else if pe := (*ParseError)(nil); !errors.As(err, &pe) {
			t.Errorf("%s: %v is not a *ParseError", name, err)
		}
	}
}

// realXenOrSynthetic gives an ELF32 to mutate: the real Xen when cached,
// otherwise a minimal one with the same shape.
func realXenOrSynthetic(t testing.TB) ([]byte, []byte) {
	if gz, err := os.ReadFile("../../cache/xen/xen.gz"); err == nil {
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err == nil {
			if x, err := io.ReadAll(zr); err == nil {
				return gz, x
			}
		}
	}
	return nil, syntheticELF32()
}

func syntheticELF32() []byte {
	le := binary.LittleEndian
	b := make([]byte, 0x100)
	copy(b, "\x7fELF\x01\x01\x01")
	le.PutUint16(b[16:], 2)
	le.PutUint16(b[18:], 3)
	le.PutUint32(b[24:], 0x200000)
	le.PutUint32(b[28:], 52)
	le.PutUint16(b[42:], 32)
	le.PutUint16(b[44:], 1)
	ph := b[52:]
	le.PutUint32(ph, 1)
	le.PutUint32(ph[4:], 0x80)
	le.PutUint32(ph[8:], 0x200000)
	le.PutUint32(ph[12:], 0x200000)
	le.PutUint32(ph[16:], 0x80)
	le.PutUint32(ph[20:], 0x1000)
	return b
}

// TestFromEntryEmptyFile: a verified file that is empty stays empty. The
// reader returns nil for it; were that kept as nil Data, the loader would
// open the entry's relative path again, from glint's working directory,
// and load bytes nobody verified.
func TestFromEntryEmptyFile(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.WriteFile("initrd.img", []byte("unverified bytes in the working directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	verified := map[string][]byte{"vmlinuz": []byte("verified kernel"), "initrd.img": nil}
	e := bootcfg.Entry{Kind: bootcfg.Linux, Title: "t", Kernel: "vmlinuz", Initrds: []string{"initrd.img"}}
	img, err := FromEntry(e, func(rel string) ([]byte, error) { return verified[rel], nil })
	if err != nil {
		t.Fatal(err)
	}
	d := &DryRun{}
	if err := d.Load(img); err != nil {
		t.Fatal(err)
	}
	empty := sha256.Sum256(nil)
	if got := d.Loaded.Initrds[0]; got.Size != 0 || got.SHA256 != hex.EncodeToString(empty[:]) {
		t.Fatalf("the empty initrd was loaded as %+v", got)
	}
}
