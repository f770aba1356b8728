package rom

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"
	"time"
)

// FuzzSELF: a fuzzed payload segment list; parsing and decompressing stay
// within the caps and the input.
func FuzzSELF(f *testing.F) {
	if raw, err := os.ReadFile("../../out/coreboot-tpm2.rom"); err == nil {
		if img, err := FromBytes(raw); err == nil {
			if p, err := img.File("COREBOOT", "fallback/payload"); err == nil {
				f.Add(bytes.Clone(p.Data[:8192]))
			}
		}
	}
	// a minimal Linux payload: params, cmdline, entry
	seed := make([]byte, 3*selfSegmentSize)
	put := func(i int, typ uint32, off uint32, load uint64, n uint32) {
		h := seed[i*selfSegmentSize:]
		binary.BigEndian.PutUint32(h, typ)
		binary.BigEndian.PutUint32(h[8:], off)
		binary.BigEndian.PutUint64(h[12:], load)
		binary.BigEndian.PutUint32(h[20:], n)
		binary.BigEndian.PutUint32(h[24:], n)
	}
	put(0, SegmentData, uint32(len(seed)), linuxParamLoc, 0x300)
	put(1, SegmentData, uint32(len(seed))+0x300, 0x91000, 6)
	put(2, SegmentEntry, 0, 0x40000, 0)
	params := make([]byte, 0x300)
	binary.LittleEndian.PutUint32(params[linuxCmdlinePtr:], 0x91000)
	seed = append(append(seed, params...), "quiet\x00"...)
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		segs, err := ParseSELF(b)
		if err != nil {
			return
		}
		for _, s := range segs {
			if s.Data != nil && uint64(s.Offset)+uint64(len(s.Data)) > uint64(len(b)) {
				t.Fatal("segment data outside the payload")
			}
			if s.MemLen < 1<<20 {
				if out, err := s.Contents(); err == nil && uint64(len(out)) > uint64(s.MemLen) {
					t.Fatalf("%d bytes from a %d-byte segment", len(out), s.MemLen)
				}
			}
		}
		p, err := ParseLinuxPayload(segs)
		if err == nil && len(p.Cmdline) > maxCmdline {
			t.Fatal("command line over the cap")
		}
	})
}

// FuzzInitramfs: fuzzed newc archives (uncompressed; the decompressors are
// the libraries'): no panic, every file within the archive.
func FuzzInitramfs(f *testing.F) {
	raw, err := decompressInitramfs(newcArchive(f, map[string]string{"init": "x", "lib/modules/load-order": "a.ko\n", "lib/modules/a.ko": "A"}))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Fuzz(func(t *testing.T, b []byte) {
		files, err := ReadInitramfs(b)
		if err != nil {
			return
		}
		total := 0
		for _, d := range files {
			total += len(d)
		}
		if total > len(b) {
			t.Fatalf("%d bytes of files from a %d-byte archive", total, len(b))
		}
		moduleMeasurements(files)
		payloadOwnerFiles(files)
	})
}

// FuzzBuildInfo: the config and build_info parsers never panic and keep
// values printable.
func FuzzBuildInfo(f *testing.F) {
	f.Add([]byte("CONFIG_TPM2=y\nCONFIG_LINUX_COMMAND_LINE=\"console=ttyS0 \\\"x\\\"\"\n# CONFIG_X is not set\n"), []byte("MAINBOARD_VENDOR: Emulation\nMAINBOARD_PART_NUMBER: QEMU x86 q35/ich9\n"))
	f.Fuzz(func(t *testing.T, config, info []byte) {
		for _, m := range []map[string]string{parseKconfig(config), parseKeyValues(info)} {
			for k, v := range m {
				for _, c := range []byte(v) {
					if c < 0x20 || c > 0x7e {
						t.Fatalf("%s=%q holds unprintable bytes", k, v)
					}
				}
			}
		}
	})
}

// FuzzOwnerKeys: a fuzzed owner key file never panics the key checks and
// never comes back both usable and without a signing key.
func FuzzOwnerKeys(f *testing.F) {
	seed, err := os.ReadFile("testdata/owner-ed25519.asc")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := CheckOwnerKeys(b, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
		if err != nil {
			return
		}
		for _, k := range keys {
			if k.SigningKey == "" || k.Problem != "" {
				t.Fatalf("a key without a signing key passed: %+v", k)
			}
		}
	})
}
