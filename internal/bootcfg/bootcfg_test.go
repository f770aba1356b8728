package bootcfg

import (
	"errors"
	"os"
	"strings"
	"testing"
	"testing/fstest"
)

// want describes the parts of an entry a test checks.
type want struct {
	id, title, kernel, cmdline string
	kind                       Kind
	initrds                    []string
	modules                    []Module
	menu                       []string
}

func checkEntry(t *testing.T, i int, got Entry, w want) {
	t.Helper()
	if w.id != "" && got.ID != w.id {
		t.Errorf("entry %d: ID %q, want %q", i, got.ID, w.id)
	}
	if got.Title != w.title {
		t.Errorf("entry %d: title %q, want %q", i, got.Title, w.title)
	}
	if got.Kind != w.kind {
		t.Errorf("entry %d: kind %v, want %v", i, got.Kind, w.kind)
	}
	if got.Kernel != w.kernel {
		t.Errorf("entry %d: kernel %q, want %q", i, got.Kernel, w.kernel)
	}
	if got.Cmdline != w.cmdline {
		t.Errorf("entry %d: cmdline %q, want %q", i, got.Cmdline, w.cmdline)
	}
	if strings.Join(got.Initrds, ",") != strings.Join(w.initrds, ",") {
		t.Errorf("entry %d: initrds %q, want %q", i, got.Initrds, w.initrds)
	}
	if len(got.Modules) != len(w.modules) {
		t.Errorf("entry %d: modules %+v, want %+v", i, got.Modules, w.modules)
	} else {
		for j := range w.modules {
			if got.Modules[j] != w.modules[j] {
				t.Errorf("entry %d module %d: %+v, want %+v", i, j, got.Modules[j], w.modules[j])
			}
		}
	}
	if strings.Join(got.Menu, ">") != strings.Join(w.menu, ">") {
		t.Errorf("entry %d: menu %q, want %q", i, got.Menu, w.menu)
	}
	if len(got.Missing) != 0 {
		t.Errorf("entry %d: missing files %q", i, got.Missing)
	}
}

const debU = "5b7a0d3e-2b7c-4d41-9e3f-0c7d2f1a9b64"

func TestDiscoverDebian12(t *testing.T) {
	d, err := DiscoverFS(os.DirFS("testdata/debian12"))
	if err != nil {
		t.Fatal(err)
	}
	adv := "Advanced options for Debian GNU/Linux"
	root := "root=UUID=" + debU + " ro"
	ws := []want{
		{id: "gnulinux-simple-" + debU, title: "Debian GNU/Linux", kernel: "vmlinuz-6.1.0-13-amd64", initrds: []string{"initrd.img-6.1.0-13-amd64"}, cmdline: root + " quiet"},
		{title: "Debian GNU/Linux, with Linux 6.1.0-13-amd64", kernel: "vmlinuz-6.1.0-13-amd64", initrds: []string{"initrd.img-6.1.0-13-amd64"}, cmdline: root + " quiet", menu: []string{adv}},
		{title: "Debian GNU/Linux, with Linux 6.1.0-13-amd64 (recovery mode)", kernel: "vmlinuz-6.1.0-13-amd64", initrds: []string{"initrd.img-6.1.0-13-amd64"}, cmdline: root + " single", menu: []string{adv}},
		{id: "gnulinux-advanced-" + debU + ">gnulinux-6.1.0-12-amd64-advanced-" + debU, title: "Debian GNU/Linux, with Linux 6.1.0-12-amd64", kernel: "vmlinuz-6.1.0-12-amd64", initrds: []string{"initrd.img-6.1.0-12-amd64"}, cmdline: root + " quiet", menu: []string{adv}},
		{title: "Debian GNU/Linux, with Linux 6.1.0-12-amd64 (recovery mode)", kernel: "vmlinuz-6.1.0-12-amd64", initrds: []string{"initrd.img-6.1.0-12-amd64"}, cmdline: root + " single", menu: []string{adv}},
	}
	if len(d.Entries) != len(ws) {
		t.Fatalf("%d entries, want %d: %+v", len(d.Entries), len(ws), d.Entries)
	}
	for i, w := range ws {
		checkEntry(t, i, d.Entries[i], w)
	}
	// grubenv's next_entry (a one-time boot of the older kernel) wins over default="0".
	if d.Default != 3 {
		t.Errorf("default %d (%q), want 3 (next_entry from grubenv)", d.Default, d.DefaultSetting)
	}
	// "UEFI Firmware Settings" sits behind grub_platform=efi and is fwsetup: not listed.
	if d.Entries[1].Aliases[1] != "1>0" {
		t.Errorf("index alias %q, want 1>0", d.Entries[1].Aliases)
	}
}

func TestDiscoverUbuntu2204(t *testing.T) {
	d, err := DiscoverFS(os.DirFS("testdata/ubuntu2204"))
	if err != nil {
		t.Fatal(err)
	}
	u := "0e3c7a51-94f2-4b8e-a0f6-3d2b61c5e7a9"
	adv := []string{"Advanced options for Ubuntu"}
	ws := []want{
		// vt.handoff=7 comes from the gfxmode function the entry calls.
		{title: "Ubuntu", kernel: "vmlinuz-5.15.0-88-generic", initrds: []string{"initrd.img-5.15.0-88-generic"}, cmdline: "root=UUID=" + u + " ro quiet splash vt.handoff=7"},
		{title: "Ubuntu, with Linux 5.15.0-88-generic", kernel: "vmlinuz-5.15.0-88-generic", initrds: []string{"initrd.img-5.15.0-88-generic"}, cmdline: "root=UUID=" + u + " ro quiet splash vt.handoff=7", menu: adv},
		{title: "Ubuntu, with Linux 5.15.0-88-generic (recovery mode)", kernel: "vmlinuz-5.15.0-88-generic", initrds: []string{"initrd.img-5.15.0-88-generic"}, cmdline: "root=UUID=" + u + " ro recovery nomodeset dis_ucode_ldr", menu: adv},
		{title: "Ubuntu, with Linux 5.15.0-87-generic", kernel: "vmlinuz-5.15.0-87-generic", initrds: []string{"initrd.img-5.15.0-87-generic"}, cmdline: "root=UUID=" + u + " ro quiet splash vt.handoff=7", menu: adv},
		{title: "Ubuntu, with Linux 5.15.0-87-generic (recovery mode)", kernel: "vmlinuz-5.15.0-87-generic", initrds: []string{"initrd.img-5.15.0-87-generic"}, cmdline: "root=UUID=" + u + " ro recovery nomodeset dis_ucode_ldr", menu: adv},
		{title: "Memory test (memtest86+.bin, serial console 115200)", kernel: "memtest86+.bin", cmdline: "console=ttyS0,115200n8"},
	}
	if len(d.Entries) != len(ws) {
		t.Fatalf("%d entries, want %d", len(d.Entries), len(ws))
	}
	for i, w := range ws {
		checkEntry(t, i, d.Entries[i], w)
	}
	if d.Default != 3 {
		t.Errorf("default %d (%q), want 3 (saved_entry)", d.Default, d.DefaultSetting)
	}
	// memtest86+.elf (knetbsd) is index 2 at top level, the .bin one is 3.
	if got := d.Entries[5].Aliases; got[len(got)-1] != "3" {
		t.Errorf("memtest aliases %q, want index 3", got)
	}
}

func TestDiscoverFedora39BLS(t *testing.T) {
	d, err := DiscoverFS(os.DirFS("testdata/fedora39"))
	if err != nil {
		t.Fatal(err)
	}
	m := "4f6c8a1e2b3d4c5e9f7a8b6c5d4e3f2a"
	opts := "root=UUID=8a4f0c2e-61b7-4d93-b5e2-7f1c3a9d0e46 ro rootflags=subvol=root rhgb quiet"
	ws := []want{
		{id: m + "-6.5.12-300.fc39.x86_64", title: "Fedora Linux (6.5.12-300.fc39.x86_64) 39 (Workstation Edition)", kernel: "vmlinuz-6.5.12-300.fc39.x86_64", initrds: []string{"initramfs-6.5.12-300.fc39.x86_64.img"}, cmdline: opts},
		{id: m + "-6.5.6-300.fc39.x86_64", title: "Fedora Linux (6.5.6-300.fc39.x86_64) 39 (Workstation Edition)", kernel: "vmlinuz-6.5.6-300.fc39.x86_64", initrds: []string{"initramfs-6.5.6-300.fc39.x86_64.img"}, cmdline: opts},
		// options $kernelopts, expanded from grubenv.
		{id: m + "-0-rescue", title: "Fedora Linux (0-rescue-" + m + ") 39 (Workstation Edition)", kernel: "vmlinuz-0-rescue-" + m, initrds: []string{"initramfs-0-rescue-" + m + ".img"}, cmdline: opts},
	}
	if len(d.Entries) != len(ws) {
		t.Fatalf("%d entries, want %d: %+v", len(d.Entries), len(ws), d.Entries)
	}
	for i, w := range ws {
		checkEntry(t, i, d.Entries[i], w)
	}
	if d.Default != 1 {
		t.Errorf("default %d (%q), want 1 (saved_entry names the 6.5.6 BLS id)", d.Default, d.DefaultSetting)
	}
	if !strings.Contains(strings.Join(d.Notes, "\n"), "configfile") {
		t.Errorf("the EFI stub's configfile is not noted: %q", d.Notes)
	}
}

func TestDiscoverQubes42Xen(t *testing.T) {
	d, err := DiscoverFS(os.DirFS("testdata/qubes42"))
	if err != nil {
		t.Fatal(err)
	}
	xen := "console=none dom0_mem=min:1024M dom0_mem=max:4096M ucode=scan smt=off gnttab_max_frames=2048 gnttab_max_maptrack_frames=4096"
	dom0 := func(v, extra string) string {
		return "root=/dev/mapper/qubes_dom0-root ro rd.luks.uuid=luks-a71c3e90-5d2b-4f86-b1e4-9c0f2d7a6b53 rd.lvm.lv=qubes_dom0/root rd.lvm.lv=qubes_dom0/swap plymouth.ignore-serial-consoles " + v + " x86_64 rhgb quiet" + extra
	}
	mods := func(v, extra string) []Module {
		return []Module{{Path: "vmlinuz-" + v, Cmdline: dom0(v, extra)}, {Path: "initramfs-" + v + ".img", NoUnzip: true}}
	}
	menu := []string{"Advanced options for Qubes (with Xen hypervisor)", "Xen hypervisor, version 4.17.2"}
	v1, v2 := "6.1.62-1.qubes.fc37.x86_64", "6.1.57-1.qubes.fc37.x86_64"
	ws := []want{
		{title: "Qubes, with Xen hypervisor", kind: Multiboot2, kernel: "xen-4.17.2.gz", cmdline: xen, modules: mods(v1, "")},
		{title: "Qubes, with Xen 4.17.2 and Linux " + v1, kind: Multiboot2, kernel: "xen-4.17.2.gz", cmdline: xen, modules: mods(v1, ""), menu: menu},
		{title: "Qubes, with Xen 4.17.2 and Linux " + v1 + " (recovery mode)", kind: Multiboot2, kernel: "xen-4.17.2.gz", cmdline: xen, modules: mods(v1, " single"), menu: menu},
		{title: "Qubes, with Xen 4.17.2 and Linux " + v2, kind: Multiboot2, kernel: "xen-4.17.2.gz", cmdline: xen, modules: mods(v2, ""), menu: menu},
	}
	if len(d.Entries) != len(ws) {
		t.Fatalf("%d entries, want %d", len(d.Entries), len(ws))
	}
	for i, w := range ws {
		checkEntry(t, i, d.Entries[i], w)
	}
	if got := d.Entries[3].Aliases[1]; got != "1>0>2" {
		t.Errorf("index path %q, want 1>0>2", got)
	}
	if d.Default != 0 {
		t.Errorf("default %d, want 0 (empty saved_entry)", d.Default)
	}
}

func TestDiscoverExtlinux(t *testing.T) {
	d, err := DiscoverFS(os.DirFS("testdata/alpine"))
	if err != nil {
		t.Fatal(err)
	}
	u := "3d9b6f20-8c41-4e7a-b5d3-1f0e9a2c7b68"
	ws := []want{
		{title: "Linux lts", kernel: "vmlinuz-lts", initrds: []string{"intel-ucode.img", "initramfs-lts"}, cmdline: "root=UUID=" + u + " modules=sd-mod,usb-storage,ext4 quiet rootfstype=ext4"},
		{title: "Xen with Alpine dom0", kind: Multiboot, kernel: "xen.gz", cmdline: "dom0_mem=1024M console=com1",
			modules: []Module{{Path: "vmlinuz-lts", Cmdline: "root=UUID=" + u + " console=hvc0 quiet"}, {Path: "initramfs-lts"}}},
	}
	if len(d.Entries) != len(ws) {
		t.Fatalf("%d entries, want %d: %+v", len(d.Entries), len(ws), d.Entries)
	}
	for i, w := range ws {
		checkEntry(t, i, d.Entries[i], w)
	}
	if d.Default != 1 {
		t.Errorf("default %d, want 1 (MENU DEFAULT in the included file)", d.Default)
	}
}

func TestDiscoverNothing(t *testing.T) {
	_, _, err := Discover(t.TempDir())
	if !errors.Is(err, ErrNoConfig) {
		t.Fatalf("err %v, want ErrNoConfig", err)
	}
}

func TestDiscoverPublicSignature(t *testing.T) {
	es, def, err := Discover("testdata/qubes42")
	if err != nil || len(es) != 4 || def != 0 {
		t.Fatalf("Discover: %d entries, default %d, err %v", len(es), def, err)
	}
}

func parseGrubString(t *testing.T, src string, fsys fstest.MapFS) (*Config, error) {
	t.Helper()
	if fsys == nil {
		fsys = fstest.MapFS{}
	}
	return ParseGrub("grub/grub.cfg", []byte(src), GrubOptions{FS: fsys})
}

func TestGrubSyntax(t *testing.T) {
	fsys := fstest.MapFS{
		"vmlinuz":       {Data: []byte("k")},
		"initrd.img":    {Data: []byte("i")},
		"ucode.img":     {Data: []byte("u")},
		"grub/grubenv":  {Data: []byte(grubenvSignature + "saved_entry=b\\\\c\nkernelopts=ro quiet\n####")},
		"boot/other.gz": {Data: []byte("x")},
	}
	cases := []struct {
		name, src string
		want      []want
		def       string
	}{
		{"quotes and escapes", `menuentry "It's \"quoted\" \$x" { linux /vmlinuz a\ b 'c d' "e$undefined" }`,
			[]want{{title: `It's "quoted" $x`, kernel: "vmlinuz", cmdline: "a b c d e"}}, ""},
		{"continuation and semicolons", "set a=1; set b=2\nmenuentry 'x' {\n linux /vmlinuz \\\n one $a ${b}\n initrd /ucode.img /initrd.img\n}",
			[]want{{title: "x", kernel: "vmlinuz", cmdline: "one 1 2", initrds: []string{"ucode.img", "initrd.img"}}}, ""},
		{"device prefix and /boot prefix", "menuentry x { linux (hd0,gpt2)/boot/vmlinuz root=/dev/sda2\n initrd ($root)/initrd.img }",
			[]want{{title: "x", kernel: "vmlinuz", cmdline: "root=/dev/sda2", initrds: []string{"initrd.img"}}}, ""},
		{"unquoted expansion splits", "load_env\nmenuentry x { linux /vmlinuz $kernelopts }",
			[]want{{title: "x", kernel: "vmlinuz", cmdline: "ro quiet"}}, ""},
		{"grubenv escapes and saved default", "load_env\nset default=\"${saved_entry}\"\nmenuentry x { linux /vmlinuz }",
			[]want{{title: "x", kernel: "vmlinuz"}}, `b\c`},
		{"static if elif else", "set v=2\nif [ $v = 1 ]; then\nmenuentry one { linux /vmlinuz 1 }\nelif [ \"$v\" -eq 2 -a -n x ]; then\nmenuentry two { linux /vmlinuz 2 }\nelse\nmenuentry three { linux /vmlinuz 3 }\nfi",
			[]want{{title: "two", kernel: "vmlinuz", cmdline: "2"}}, ""},
		{"unknown condition takes every branch", "if keystatus --shift; then\nmenuentry a { linux /vmlinuz a }\nelse\nmenuentry b { linux /vmlinuz b }\nfi",
			[]want{{title: "a", kernel: "vmlinuz", cmdline: "a"}, {title: "b", kernel: "vmlinuz", cmdline: "b"}}, ""},
		{"file tests", "if [ -s $prefix/grubenv ]; then set d=yes; fi\nif [ ! -e /nothere ]; then set e=yes; fi\nmenuentry x { linux /vmlinuz $d $e }",
			[]want{{title: "x", kernel: "vmlinuz", cmdline: "yes yes"}}, ""},
		{"function called with arguments", "function f { set args=\"$2-$1\" }\nmenuentry x { f a b; linux /vmlinuz $args }",
			[]want{{title: "x", kernel: "vmlinuz", cmdline: "b-a"}}, ""},
		{"loops and chainloader skipped", "for i in 1 2; do menuentry no { linux /vmlinuz }; done\nmenuentry win { chainloader +1 }\nmenuentry x --id=myid { linux /vmlinuz }",
			[]want{{id: "myid", title: "x", kernel: "vmlinuz"}}, ""},
		{"default by index path", "set default='1>1'\nmenuentry a { linux /vmlinuz a }\nsubmenu s { menuentry b { linux /vmlinuz b }\nmenuentry c { linux /vmlinuz c } }",
			[]want{{title: "a", kernel: "vmlinuz", cmdline: "a"}, {title: "b", kernel: "vmlinuz", cmdline: "b", menu: []string{"s"}}, {title: "c", kernel: "vmlinuz", cmdline: "c", menu: []string{"s"}}}, "1>1"},
		{"multiboot with placeholder", "menuentry xen { multiboot2 /boot/other.gz placeholder dom0_mem=1G\n module2 /vmlinuz placeholder root=x\n module2 --nounzip /initrd.img }",
			[]want{{title: "xen", kind: Multiboot2, kernel: "boot/other.gz", cmdline: "dom0_mem=1G", modules: []Module{{Path: "vmlinuz", Cmdline: "root=x"}, {Path: "initrd.img", NoUnzip: true}}}}, ""},
		{"comments", "# menuentry no { linux /no }\nmenuentry x { # a comment\n linux /vmlinuz a#b }",
			[]want{{title: "x", kernel: "vmlinuz", cmdline: "a#b"}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := parseGrubString(t, c.src, fsys)
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.Entries) != len(c.want) {
				t.Fatalf("%d entries, want %d: %+v", len(cfg.Entries), len(c.want), cfg.Entries)
			}
			for i, w := range c.want {
				checkEntry(t, i, cfg.Entries[i], w)
			}
			if cfg.Default != c.def {
				t.Errorf("default %q, want %q", cfg.Default, c.def)
			}
		})
	}
	cfg, _ := parseGrubString(t, "set default='1>1'\nmenuentry a { linux /vmlinuz a }\nsubmenu s { menuentry b { linux /vmlinuz b }\nmenuentry c { linux /vmlinuz c } }", fsys)
	if cfg.DefaultIndex() != 2 {
		t.Errorf("default index %d, want 2", cfg.DefaultIndex())
	}
}

func TestGrubMissingFile(t *testing.T) {
	cfg, err := parseGrubString(t, "menuentry x { linux /boot/vmlinuz-gone\n initrd /initrd-gone }", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.Entries[0].Missing, ","); got != "vmlinuz-gone,initrd-gone" {
		t.Errorf("missing %q", got)
	}
}

func TestGrubHostile(t *testing.T) {
	cases := []struct {
		name string
		src  string
		want error
	}{
		{"unclosed quote", "menuentry 'x { linux /v }", ErrSyntax},
		{"unclosed brace", "menuentry x { linux /v", ErrSyntax},
		{"stray fi", "fi", ErrSyntax},
		{"stray brace", "}", ErrSyntax},
		{"if without fi", "if true; then set a=b", ErrSyntax},
		{"deep submenus", strings.Repeat("submenu x {\n", 40) + strings.Repeat("}\n", 40), ErrTooDeep},
		{"deep ifs", strings.Repeat("if true; then\n", 100) + strings.Repeat("fi\n", 100), ErrTooDeep},
		{"recursive function", "function f { f }\nf", ErrTooDeep},
		{"long line", "set a=" + strings.Repeat("x", MaxLineLength+10), ErrLineTooLong},
		{"expansion bomb", "set a=" + strings.Repeat("x", 60000) + "\nset a=$a$a$a$a\nset a=$a$a$a$a\nmenuentry x { linux /v $a }", ErrWordTooLong},
		{"too many entries", strings.Repeat("menuentry x { linux /v }\n", MaxEntries+1), ErrTooManyEntries},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseGrubString(t, c.src, nil)
			if !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.File != "grub/grub.cfg" {
				t.Fatalf("err %v is not a *ParseError naming the file", err)
			}
		})
	}
}

// A million-line grub.cfg whose every line defines an entry stops at the
// entry cap quickly instead of allocating for all of them.
func TestGrubMillionEntries(t *testing.T) {
	src := strings.Repeat("menuentry x { linux /v }\n", 1_000_000)
	_, err := parseGrubString(t, src, nil)
	if !errors.Is(err, ErrTooManyEntries) {
		t.Fatalf("err %v, want ErrTooManyEntries", err)
	}
}

func TestGrubenv(t *testing.T) {
	data, _ := os.ReadFile("testdata/debian12/grub/grubenv")
	vars, err := ParseGrubenv("grubenv", data)
	if err != nil || !strings.HasPrefix(vars["next_entry"], "gnulinux-advanced-") || len(vars) != 1 {
		t.Fatalf("vars %v err %v", vars, err)
	}
	if _, err := ParseGrubenv("x", []byte("saved_entry=1\n")); !errors.Is(err, ErrSyntax) {
		t.Fatalf("no signature: err %v", err)
	}
}

func TestBLSSortAndVersion(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"6.5.12-300.fc39", "6.5.6-300.fc39", 1},
		{"1.0~rc1", "1.0", -1},
		{"1.0", "1.0.1", -1},
		{"1.0a", "1.0", 1},
		{"010", "10", 0},
		{"1.a", "1.1", -1},
		{"0-rescue-abc", "6.5.6", -1},
	}
	for _, c := range cases {
		if got := VersionCompare(c.a, c.b); got != c.want {
			t.Errorf("VersionCompare(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := VersionCompare(c.b, c.a); got != -c.want {
			t.Errorf("VersionCompare(%q, %q) = %d, want %d", c.b, c.a, got, -c.want)
		}
	}
	fsys := fstest.MapFS{
		"loader/entries/b.conf": {Data: []byte("title B\nsort-key fedora\nmachine-id 1\nversion 5.0\nlinux /v\n")},
		"loader/entries/a.conf": {Data: []byte("title A\nsort-key fedora\nmachine-id 1\nversion 6.0\nlinux /v\noptions x\n")},
		"loader/entries/c.conf": {Data: []byte("title C\nlinux /v\noptions y\n")},
		"loader/entries/d.conf": {Data: []byte("title D\nsort-key arch\nlinux /v\noptions z\n")},
		"loader/entries/e.conf": {Data: []byte("title UKI\nefi /EFI/Linux/uki.efi\n")},
	}
	es, err := ParseBLSDir(fsys, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Title)
	}
	if strings.Join(got, ",") != "D,A,B,C" {
		t.Errorf("order %v, want D,A,B,C", got)
	}
}

func TestSyslinuxDetails(t *testing.T) {
	fsys := fstest.MapFS{
		"syslinux/vmlinuz":  {Data: []byte("k")},
		"syslinux/a.img":    {Data: []byte("a")},
		"b.img":             {Data: []byte("b")},
		"syslinux/loop.cfg": {Data: []byte("INCLUDE loop.cfg\n")},
	}
	src := "default two\nappend global=1\nlabel one\n kernel vmlinuz\nlabel two\n LINUX vmlinuz\n APPEND initrd=a.img,/b.img quiet\nlabel three\n kernel vmlinuz\n append -\n"
	cfg, err := ParseSyslinux("syslinux/syslinux.cfg", []byte(src), SyslinuxOptions{FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	ws := []want{
		{title: "one", kernel: "syslinux/vmlinuz", cmdline: "global=1"},
		{title: "two", kernel: "syslinux/vmlinuz", cmdline: "quiet", initrds: []string{"syslinux/a.img", "b.img"}},
		{title: "three", kernel: "syslinux/vmlinuz"},
	}
	if len(cfg.Entries) != 3 {
		t.Fatalf("%+v", cfg.Entries)
	}
	for i, w := range ws {
		checkEntry(t, i, cfg.Entries[i], w)
	}
	if cfg.DefaultIndex() != 1 {
		t.Errorf("default %d, want 1", cfg.DefaultIndex())
	}
	_, err = ParseSyslinux("syslinux/syslinux.cfg", []byte("INCLUDE loop.cfg\n"), SyslinuxOptions{FS: fsys})
	if !errors.Is(err, ErrTooDeep) {
		t.Fatalf("self-include: err %v, want ErrTooDeep", err)
	}
}
