package bootcfg

import (
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
)

func addSeeds(f *testing.F, pattern string) {
	f.Helper()
	files, _ := filepath.Glob(pattern)
	if len(files) == 0 {
		f.Fatalf("no seeds match %s", pattern)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// fuzzFS gives file tests, load_env and INCLUDE something to find.
var fuzzFS = fstest.MapFS{
	"grub/grubenv":  {Data: []byte(grubenvSignature + "saved_entry=0\nkernelopts=ro\n")},
	"vmlinuz":       {Data: []byte("k")},
	"syslinux.cfg":  {Data: []byte("INCLUDE syslinux.cfg\nLABEL a\nKERNEL vmlinuz\n")},
	"extlinux.conf": {Data: []byte("LABEL b\nLINUX vmlinuz\n")},
}

func checkEntries(t *testing.T, cfg *Config) {
	if len(cfg.Entries) > MaxEntries {
		t.Fatalf("%d entries beyond the cap", len(cfg.Entries))
	}
	for _, e := range cfg.Entries {
		if e.Kernel == "" {
			t.Fatalf("entry without a kernel: %+v", e)
		}
		if len(e.Cmdline) > MaxArgs*(MaxWordLength+1) {
			t.Fatalf("command line beyond the caps")
		}
	}
	if i := cfg.DefaultIndex(); i < 0 || i > len(cfg.Entries) {
		t.Fatalf("default index %d out of range", i)
	}
}

func FuzzGrub(f *testing.F) {
	addSeeds(f, "testdata/*/grub*/grub.cfg")
	addSeeds(f, "testdata/*/efi/EFI/*/grub.cfg")
	f.Add([]byte("function f { f }\nf"))
	f.Add([]byte("if [ -s $prefix/grubenv ]; then load_env; fi\nsubmenu 'a' { menuentry \"b\" --id x { linux /vmlinuz $kernelopts; initrd /a /b } }"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseGrub("grub/grub.cfg", data, GrubOptions{FS: fuzzFS, BLS: func(vars map[string]string) ([]Entry, error) {
			return ParseBLSDir(fuzzFS, vars)
		}})
		if err != nil {
			return
		}
		checkEntries(t, cfg)
	})
}

func FuzzBLS(f *testing.F) {
	addSeeds(f, "testdata/*/loader/entries/*.conf")
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseBLS(fuzzFS, "loader/entries/x.conf", data, map[string]string{"kernelopts": "root=/dev/sda1 ro"})
		if err != nil || e == nil {
			return
		}
		if e.Kernel == "" || e.ID != "x" {
			t.Fatalf("entry %+v", e)
		}
	})
}

func FuzzSyslinux(f *testing.F) {
	addSeeds(f, "testdata/*/extlinux.conf")
	addSeeds(f, "testdata/*/extlinux/*.conf")
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseSyslinux("extlinux.conf", data, SyslinuxOptions{FS: fuzzFS})
		if err != nil {
			return
		}
		checkEntries(t, cfg)
	})
}

func FuzzGrubenv(f *testing.F) {
	addSeeds(f, "testdata/*/grub*/grubenv")
	f.Fuzz(func(t *testing.T, data []byte) {
		vars, err := ParseGrubenv("grubenv", data)
		if err == nil && len(vars) > MaxVariables {
			t.Fatalf("%d variables beyond the cap", len(vars))
		}
	})
}
