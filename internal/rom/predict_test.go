package rom

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/u-root/u-root/pkg/cpio"
	"github.com/ulikunitz/xz"

	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/tpm"
)

func realROM(t *testing.T, name string) *Image {
	t.Helper()
	p := filepath.Join("../../out", name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s not built yet (make rom)", p)
	}
	img, err := FromFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// The prediction changes exactly when something glint or coreboot
// measures changes: an owner file (PCR 7), the payload (PCR 2); a CBFS
// file nobody measures changes nothing.
func TestPredictChangesExactly(t *testing.T) {
	g := newGPG(t)
	keys := g.export(g.genKey("Owner <owner@example.org>", "ed25519", "sign", "never"))
	for _, tc := range []struct {
		rom   string
		tpm   int
		banks []tpm.Alg
	}{{"coreboot-tpm2.rom", 20, []tpm.Alg{tpm.SHA1, tpm.SHA256}}, {"coreboot-tpm1.rom", 12, []tpm.Alg{tpm.SHA1}}} {
		t.Run(tc.rom, func(t *testing.T) {
			stock := realROM(t, tc.rom)
			base, _, err := Personalize(stock, Personalization{Keys: keys, Config: []byte("countdown = 3\n")})
			if err != nil {
				t.Fatal(err)
			}
			p0, err := Predict(base, PredictOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if p0.TPM != tc.tpm || !reflect.DeepEqual(p0.Banks, tc.banks) {
				t.Fatalf("TPM %d banks %v", p0.TPM, p0.Banks)
			}
			// PCR 2 is coreboot's replay in its bank; on TPM 2.0 the SHA-1 bank stays zero.
			cb, _ := PredictCorebootPCR2(base)
			v2, _ := p0.PCR(2)
			if tc.tpm == 20 {
				if !bytes.Equal(v2.Values[tpm.SHA256], cb.PCR2[tpm.SHA256]) || !bytes.Equal(v2.Values[tpm.SHA1], pcr.Zero(tpm.SHA1)) {
					t.Fatalf("PCR 2 %x", v2.Values)
				}
			} else if !bytes.Equal(v2.Values[tpm.SHA1], cb.PCR2[tpm.SHA1]) {
				t.Fatalf("PCR 2 %x", v2.Values)
			}
			// PCR 7: name then content of config and owner.asc, in that order.
			files := map[string][]byte{"config": []byte("countdown = 3\n"), "owner.asc": keys}
			for _, b := range tc.banks {
				want := pcr.Replay(b, pcr.Measure(b, []byte("config")), pcr.Measure(b, files["config"]),
					pcr.Measure(b, []byte("owner.asc")), pcr.Measure(b, keys))
				if v, _ := p0.PCR(7); !bytes.Equal(v.Values[b], want) {
					t.Fatalf("PCR 7 %s: %x, want %x", b, v.Values[b], want)
				}
			}
			// glint's kernel has its drivers built in: the payload loads no module, PCR 5 stays zero
			// (the module measurements themselves: TestReadInitramfs)
			if v5, _ := p0.PCR(5); !strings.Contains(v5.Source, "0 kernel modules") {
				t.Fatalf("PCR 5: %s", v5.Source)
			}
			for _, i := range []int{0, 1, 3, 4, 5, 6} {
				if v, _ := p0.PCR(i); !bytes.Equal(v.Values[tpm.SHA1], pcr.Zero(tpm.SHA1)) {
					t.Fatalf("PCR %d not zero", i)
				}
			}

			unmeasured, err := base.AddFile("COREBOOT", "extra/readme", []byte("not measured by anyone"), AddOptions{})
			if err != nil {
				t.Fatal(err)
			}
			config2, _, err := Personalize(base, Personalization{Keys: keys, Config: []byte("countdown = 4\n")})
			if err != nil {
				t.Fatal(err)
			}
			payload2 := withPayloadByteChanged(t, base)
			for _, v := range []struct {
				name string
				img  *Image
				want []int
			}{{"unmeasured file added", unmeasured, nil}, {"owner config changed", config2, []int{7}}, {"payload changed", payload2, []int{2}}} {
				p, err := Predict(v.img, PredictOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if got := p0.Changed(p); !reflect.DeepEqual(got, v.want) {
					t.Errorf("%s: PCRs %v changed, want %v", v.name, got, v.want)
				}
			}
		})
	}
}

// withPayloadByteChanged re-adds fallback/payload with one byte of its
// kernel command line changed ("quiet" -> "quieT"), as an attacker editing
// the payload would.
func withPayloadByteChanged(t *testing.T, img *Image) *Image {
	t.Helper()
	f, err := img.File("COREBOOT", "fallback/payload")
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Clone(f.Data)
	segs, err := ParseSELF(f.Data)
	if err != nil {
		t.Fatal(err)
	}
	i := -1
	for _, s := range segs {
		if j := bytes.Index(s.Data, []byte("quiet panic")); s.Type == SegmentData && j >= 0 {
			i = int(s.Offset) + j
		}
	}
	if i < 0 {
		t.Fatal("no command line segment in the payload")
	}
	data[i+4] = 'T'
	out, err := img.RemoveFile("COREBOOT", "fallback/payload")
	if err != nil {
		t.Fatal(err)
	}
	out, err = out.AddFile("COREBOOT", "fallback/payload", data, AddOptions{Type: TypeSELF})
	if err != nil {
		t.Fatal(err)
	}
	p, err := out.Payload()
	if err != nil || !strings.Contains(p.Cmdline, "quieT") {
		t.Fatalf("payload %v %v", p, err)
	}
	return out
}

func TestPredictTPMFamily(t *testing.T) {
	img := realROM(t, "coreboot-tpm2.rom")
	p, err := Predict(img, PredictOptions{TPM: 12})
	if err != nil || p.TPM != 12 || len(p.Banks) != 1 {
		t.Fatalf("%+v %v", p, err)
	}
	fx := buildImage(t)
	syn, _ := FromFile(fx.rom)
	if _, err := Predict(syn, PredictOptions{}); err == nil || !strings.Contains(err.Error(), "--tpm-version") {
		t.Fatalf("an image without a TPM config: %v", err)
	}
}

func TestRealPayload(t *testing.T) {
	img := realROM(t, "coreboot-tpm2.rom")
	b, err := Identify(img)
	if err != nil {
		t.Fatal(err)
	}
	p, files, err := img.PayloadFiles()
	if err != nil {
		t.Fatal(err)
	}
	// what scripts/build-coreboot.sh configured, read back three ways
	if p.Cmdline != b.Cmdline || p.Cmdline == "" {
		t.Fatalf("payload command line %q, config %q", p.Cmdline, b.Cmdline)
	}
	if _, ok := files["init"]; !ok {
		t.Fatal("no /init in the payload")
	}
	// glint's kernel has its drivers built in (cmd/mkpayload adds modules only with -modules)
	ms, missing := moduleMeasurements(files)
	if len(ms) != 0 || len(missing) != 0 {
		t.Fatalf("%d modules, missing %v", len(ms), missing)
	}
	if b.Board.String() != "Emulation QEMU x86 q35/ich9" || b.TPM != 20 || !b.MeasuredBoot || b.ROMSize != 16<<20 || b.Payload != "Linux" || b.Board.Kconfig != "BOARD_EMULATION_QEMU_X86_Q35" {
		t.Fatalf("%+v", b)
	}
}

// newcArchive writes an xz-compressed newc archive with u-root's cpio
// writer (what cmd/mkpayload uses), an implementation independent of
// ReadInitramfs.
func newcArchive(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var raw bytes.Buffer
	w := cpio.Newc.Writer(&raw)
	ino := uint64(1)
	for _, d := range []string{"etc", "etc/glint", "lib", "lib/modules"} {
		w.WriteRecord(cpio.Record{Info: cpio.Info{Ino: ino, Name: d, Mode: cpio.S_IFDIR | 0o755, NLink: 2}})
		ino++
	}
	for name, data := range files {
		if err := w.WriteRecord(cpio.StaticRecord([]byte(data), cpio.Info{Ino: ino, Name: name, Mode: cpio.S_IFREG | 0o644, NLink: 1})); err != nil {
			t.Fatal(err)
		}
		ino++
	}
	w.WriteRecord(cpio.Record{Info: cpio.Info{Ino: ino, Name: "dev/console", Mode: cpio.S_IFCHR | 0o600, Rmajor: 5, Rminor: 1}})
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	xw, err := xz.WriterConfig{CheckSum: xz.CRC32}.NewWriter(&out)
	if err != nil {
		t.Fatal(err)
	}
	xw.Write(raw.Bytes())
	xw.Close()
	return out.Bytes()
}

func TestReadInitramfs(t *testing.T) {
	in := map[string]string{
		"init": "glint", "etc/glint/owner.asc": "KEY", "etc/glint/config": "countdown = 1\n",
		"etc/glint/sub/ignored": "x", "lib/modules/load-order": "a/one.ko\n# comment\n\n../evil.ko\nb/two.ko\nc/missing.ko\n",
		"lib/modules/a/one.ko": "ONE", "lib/modules/b/two.ko": "TWO!",
	}
	files, err := ReadInitramfs(newcArchive(t, in))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range in {
		if string(files[name]) != data {
			t.Fatalf("%s: %q", name, files[name])
		}
	}
	if _, ok := files["dev/console"]; ok {
		t.Fatal("a device node read as a file")
	}
	ms, missing := moduleMeasurements(files)
	if len(ms) != 2 || string(ms[0].Data) != "ONE" || ms[1].Description != "kernel module two.ko" || !reflect.DeepEqual(missing, []string{"c/missing.ko"}) {
		t.Fatalf("%+v %v", ms, missing)
	}
	owner := payloadOwnerFiles(files)
	if len(owner) != 2 || string(owner["owner.asc"]) != "KEY" {
		t.Fatalf("%q", owner)
	}
	// truncations and corruptions are errors, never panics
	raw, _ := decompressInitramfs(newcArchive(t, in))
	trailer := bytes.Index(raw, []byte(newcTrailer)) - newcHeaderSize
	for _, bad := range [][]byte{raw[:50], raw[:trailer], raw[:trailer+30], append([]byte("070701zzzzzzzz"), raw[14:]...)} {
		if _, err := ReadInitramfs(bad); err == nil {
			t.Errorf("a broken archive of %d bytes was read", len(bad))
		}
	}
}

func TestParseSELFMalformed(t *testing.T) {
	img := realROM(t, "coreboot-tpm2.rom")
	f, _ := img.File("COREBOOT", "fallback/payload")
	segs, err := ParseSELF(f.Data)
	if err != nil || len(segs) != 6 || segs[5].Type != SegmentEntry {
		t.Fatalf("%d segments: %v", len(segs), err)
	}
	for _, tc := range []struct {
		name  string
		patch func(b []byte)
	}{
		{"segment past the payload", func(b []byte) { binary.BigEndian.PutUint32(b[20:], 0x7fffffff) }},
		{"unknown type", func(b []byte) { binary.BigEndian.PutUint32(b[0:], 0x12345678) }},
		{"no entry", func(b []byte) {
			for i := 0; i < 6; i++ {
				binary.BigEndian.PutUint32(b[i*28:], SegmentBSS)
			}
		}},
	} {
		b := bytes.Clone(f.Data[:4096])
		tc.patch(b)
		if _, err := ParseSELF(b); err == nil {
			t.Errorf("%s: parsed", tc.name)
		}
	}
}

// The model check: a live log equal to the prediction shows no change; a
// board that also measures its microcode, or a stage with other bytes, is
// named.
func TestCheckFirmwareLog(t *testing.T) {
	img := realROM(t, "coreboot-tpm2.rom")
	p, err := Predict(img, PredictOptions{})
	if err != nil {
		t.Fatal(err)
	}
	live := &eventlog.Log{Format: p.Log.Format, Algs: []tpm.Alg{tpm.SHA256}}
	live.Events = append(live.Events, p.Log.Events...)
	if ch := p.CheckFirmwareLog(live); len(ch) != 0 {
		t.Fatalf("the prediction's own log differs: %v", ch)
	}
	live.Events = append(live.Events[:2:2], append([]eventlog.Event{{PCR: 2, Type: eventlog.EvCorebootMeasurement,
		Description: "FMAP: COREBOOT CBFS: cpu_microcode_blob.bin", Digests: map[tpm.Alg][]byte{tpm.SHA256: make([]byte, 32)}}}, live.Events[2:]...)...)
	live.Events[3].Digests = map[tpm.Alg][]byte{tpm.SHA256: make([]byte, 32)}
	ch := p.CheckFirmwareLog(live)
	var got []string
	for _, c := range ch {
		got = append(got, c.String())
	}
	if len(ch) != 2 || !strings.Contains(strings.Join(got, "\n"), "cpu_microcode_blob.bin added") || !strings.Contains(strings.Join(got, "\n"), "fallback/romstage changed") {
		t.Fatalf("%v", got)
	}
}
