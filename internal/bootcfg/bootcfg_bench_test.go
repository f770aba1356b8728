package bootcfg

import (
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
)

// millionLineGrub builds a 10^6-line grub.cfg shaped like generated ones:
// header logic, functions, conditionals, and menu entries (under the cap).
func millionLineGrub() []byte {
	var b strings.Builder
	b.WriteString("if [ -s $prefix/grubenv ]; then\n  load_env\nfi\n")
	block := []string{
		"# a comment line as update-grub writes them",
		"if [ x$feature_platform_search_hint = xy ]; then",
		"  search --no-floppy --fs-uuid --set=root --hint-bios=hd0,gpt2 5b7a0d3e-2b7c-4d41-9e3f-0c7d2f1a9b64",
		"else",
		"  search --no-floppy --fs-uuid --set=root 5b7a0d3e-2b7c-4d41-9e3f-0c7d2f1a9b64",
		"fi",
		"set linux_gfx_mode=keep",
		"function load_video {",
		"  insmod all_video",
		"}",
	}
	lines, entries, blocks := 3, 0, 0
	for lines < 1_000_000 {
		blocks++
		if entries < 1000 && blocks%50 == 0 {
			fmt.Fprintf(&b, "menuentry 'Debian GNU/Linux %d' --class debian $menuentry_id_option 'gnulinux-%d' {\n\tinsmod gzio\n\tlinux\t/boot/vmlinuz-%d root=UUID=x ro quiet\n\tinitrd\t/boot/initrd.img-%d\n}\n", entries, entries, entries, entries)
			lines += 5
			entries++
			continue
		}
		for _, l := range block {
			if strings.Contains(l, "%d") {
				l = fmt.Sprintf(l, lines)
			}
			b.WriteString(l)
			b.WriteByte('\n')
			lines++
		}
	}
	return []byte(b.String())
}

func BenchmarkGrubMillionLines(b *testing.B) {
	src := millionLineGrub()
	fsys := fstest.MapFS{}
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cfg, err := ParseGrub("grub/grub.cfg", src, GrubOptions{FS: fsys})
		if err != nil {
			b.Fatal(err)
		}
		if len(cfg.Entries) != 1000 {
			b.Fatalf("%d entries", len(cfg.Entries))
		}
	}
}
