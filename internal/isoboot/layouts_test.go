package isoboot

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/bootcfg"
)

// The directory layouts and boot configurations of real distribution
// images (file names and menu text as they ship; kernels and initrds are
// stand-ins), built into ISOs with xorriso. Qubes' entries are copied from
// its R4.2.3 installer's grub.cfg; Debian's from the netinst image
// (isolinux including txt.cfg, grub with set commands); Tails' from its
// live image (isolinux including live64.cfg).
var layouts = map[string]struct {
	files  map[string]string
	kernel string
	kind   bootcfg.Kind
	cmd    string // a word the default entry's command line (or first module's) must carry
}{
	"debian-12-netinst": {
		files: map[string]string{
			"isolinux/isolinux.cfg": "path \ninclude menu.cfg\ndefault vesamenu.c32\nprompt 0\ntimeout 0\n",
			"isolinux/menu.cfg":     "menu hshift 4\nmenu width 70\nmenu title Debian GNU/Linux installer menu (BIOS mode)\ninclude stdmenu.cfg\ninclude txt.cfg\n",
			"isolinux/stdmenu.cfg":  "menu background splash.png\nmenu color title\t* #FFFFFFFF *\n",
			"isolinux/txt.cfg":      "default install\nlabel install\n\tmenu label ^Install\n\tkernel /install.amd/vmlinuz\n\tappend vga=788 initrd=/install.amd/initrd.gz --- quiet \n",
			"boot/grub/grub.cfg": "if [ x$feature_default_font_path = xy ] ; then\n   font=unicode\nelse\n   font=$prefix/font.pf2\nfi\n" +
				"menuentry --hotkey=g 'Graphical install' {\n    set background_color=black\n    linux    /install.amd/vmlinuz vga=788 --- quiet \n    initrd   /install.amd/gtk/initrd.gz\n}\n" +
				"menuentry --hotkey=i 'Install' {\n    set background_color=black\n    linux    /install.amd/vmlinuz vga=788 --- quiet \n    initrd   /install.amd/initrd.gz\n}\n",
			"install.amd/vmlinuz":       "kernel",
			"install.amd/initrd.gz":     "initrd",
			"install.amd/gtk/initrd.gz": "initrd-gtk",
			"md5sum.txt":                "x",
		},
		kernel: "install.amd/vmlinuz", kind: bootcfg.Linux, cmd: "vga=788",
	},
	"tails-6": {
		files: map[string]string{
			"isolinux/isolinux.cfg": "include live.cfg\ndefault vesamenu.c32\nprompt 0\ntimeout 40\n",
			"isolinux/live.cfg":     "include live64.cfg\n",
			"isolinux/live64.cfg": "label live-amd64\n\tmenu label Tails\n\tmenu default\n\tlinux /live/vmlinuz\n\tinitrd /live/initrd.img\n" +
				"\tappend boot=live config live-media=removable nopersistence noprompt timezone=Etc/UTC splash noautologin module=Tails slab_nomerge slub_debug=FZ mce=0 vsyscall=none init_on_free=1 mds=full,nosmt page_alloc.shuffle=1 randomize_kstack_offset=on quiet\n",
			"EFI/debian/grub.cfg":      "set timeout=4\nmenuentry 'Tails' {\n  linux /live/vmlinuz boot=live config live-media=removable nopersistence noprompt timezone=Etc/UTC splash noautologin module=Tails slab_nomerge slub_debug=FZ mce=0 vsyscall=none init_on_free=1 mds=full,nosmt page_alloc.shuffle=1 randomize_kstack_offset=on quiet\n  initrd /live/initrd.img\n}\n",
			"live/vmlinuz":             "kernel",
			"live/initrd.img":          "initrd",
			"live/filesystem.squashfs": "squashfs",
		},
		kernel: "live/vmlinuz", kind: bootcfg.Linux, cmd: "module=Tails",
	},
	"qubes-r4.2.3": {
		files: map[string]string{
			"boot/grub2/grub.cfg": "set default=\"1\"\nset timeout=60\nsearch --no-floppy --set=root -l 'QUBES-R4-2-3-X86-64'\n" +
				"menuentry 'Install Qubes OS R4.2.3' --class qubes --class gnu-linux --class gnu --class os {\n    multiboot2 /images/pxeboot/xen.gz console=none\n    module2 /images/pxeboot/vmlinuz inst.repo=hd:LABEL=QUBES-R4-2-3-X86-64 plymouth.ignore-serial-consoles quiet\n    module2 /images/pxeboot/initrd.img\n}\n" +
				"menuentry 'Test media and install Qubes OS R4.2.3' --class qubes --class gnu-linux --class gnu --class os {\n    multiboot2 /images/pxeboot/xen.gz console=none\n    module2 /images/pxeboot/vmlinuz inst.repo=hd:LABEL=QUBES-R4-2-3-X86-64 plymouth.ignore-serial-consoles rd.live.check quiet\n    module2 /images/pxeboot/initrd.img\n}\n",
			"images/pxeboot/xen.gz":     "xen",
			"images/pxeboot/vmlinuz":    "kernel",
			"images/pxeboot/initrd.img": "initrd",
			"images/install.img":        "stage2",
			"EFI/BOOT/BOOTX64.cfg":      "x",
			"Packages/q/qubes-core.rpm": "rpm",
			"repodata/repomd.xml":       "<repomd/>",
		},
		kernel: "images/pxeboot/xen.gz", kind: bootcfg.Multiboot2, cmd: "inst.repo=hd:LABEL=QUBES-R4-2-3-X86-64",
	},
}

func TestDistributionLayouts(t *testing.T) {
	if _, err := exec.LookPath("xorriso"); err != nil {
		t.Skip("xorriso not installed (scripts/install-deps.sh installs it)")
	}
	for name, l := range layouts {
		t.Run(name, func(t *testing.T) {
			src := t.TempDir()
			for p, data := range l.files {
				os.MkdirAll(filepath.Join(src, filepath.Dir(p)), 0o755)
				os.WriteFile(filepath.Join(src, p), []byte(data), 0o644)
			}
			iso := filepath.Join(t.TempDir(), name+".iso")
			if b, err := exec.Command("xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-V", strings.ToUpper(name), "-o", iso, src).CombinedOutput(); err != nil {
				t.Fatalf("xorriso: %v\n%s", err, b)
			}
			f, size, err := OpenImage(iso)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			menu, err := Prepare(f, size)
			if err != nil {
				t.Fatal(err)
			}
			def := menu.Entries[menu.Default]
			cmd := def.Cmdline
			if def.Kind != bootcfg.Linux && len(def.Modules) > 0 {
				cmd = def.Modules[0].Cmdline
			}
			if def.Kernel != l.kernel || def.Kind != l.kind || !strings.Contains(cmd, l.cmd) || len(def.Missing) > 0 {
				t.Fatalf("default entry %q: %s %s %q (missing %v); all: %+v", def.Title, def.Kind, def.Kernel, cmd, def.Missing, menu.Entries)
			}
			// The whole path: keep, read back, load from the kept bytes.
			keep, err := menu.Keep(menu.Default)
			if err != nil {
				t.Fatal(err)
			}
			kept, err := ReadRanges(f, keep)
			if err != nil {
				t.Fatal(err)
			}
			b, err := menu.Load(menu.Default, keep, kept, nil, []string{"quiet"})
			if err != nil {
				t.Fatal(err)
			}
			img := b.Image()
			if string(img.Kernel.Data) != l.files[l.kernel] || strings.Contains(b.Cmdline, "quiet") || img.Cmdline != b.Cmdline {
				t.Fatalf("loaded %q, cmdline %q", img.Kernel.Data, b.Cmdline)
			}
		})
	}
}
