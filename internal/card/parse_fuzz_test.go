package card

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// Seeds: DO 6E as the simulator sends it (testdata/appdata-*.bin, written
// by cardsim's TestWriteFuzzSeeds) and a minimal one built here.
func seedAppData(f *testing.F) {
	files, _ := filepath.Glob("testdata/appdata-*.bin")
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	sim := buildSampleAppData()
	f.Add(sim)
}

// buildSampleAppData is a minimal valid DO 6E built with AppendTLV.
func buildSampleAppData() []byte {
	var disc []byte
	disc = AppendTLV(disc, 0xC0, make([]byte, 10))
	for _, t := range []uint16{0xC1, 0xC2, 0xC3} {
		disc = AppendTLV(disc, t, RSA2048.Bytes())
	}
	disc = AppendTLV(disc, 0xC4, []byte{0, 127, 127, 127, 3, 0, 3})
	disc = AppendTLV(disc, 0xC5, make([]byte, 60))
	disc = AppendTLV(disc, 0xCD, make([]byte, 12))
	var app []byte
	app = AppendTLV(app, 0x4F, append(append([]byte(nil), openPGPAID...), 3, 4, 0xFF, 0xFF, 0, 0, 0, 0x42, 0, 0))
	app = AppendTLV(app, 0x5F52, []byte{0x00, 0x73, 0x00, 0x00, 0xC0, 0x05, 0x90, 0x00})
	app = AppendTLV(app, 0x73, disc)
	return AppendTLV(nil, 0x6E, app)
}

func checkParseErr(t *testing.T, err error) {
	if err == nil {
		return
	}
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error is not a *ParseError: %T %v", err, err)
	}
}

func FuzzParseApplicationData(f *testing.F) {
	seedAppData(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseApplicationData(b)
		checkParseErr(t, err)
		if err == nil && d == nil {
			t.Fatal("nil data without error")
		}
	})
}

func FuzzParseTLVs(f *testing.F) {
	seedAppData(f)
	f.Add([]byte{0x7F, 0x49, 0x82, 0x01})
	f.Add([]byte{0x5F, 0x48, 0x81, 0x02, 1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		tlvs, err := ParseTLVs(b)
		checkParseErr(t, err)
		if err != nil {
			return
		}
		// Round trip: re-encoding and parsing gives the same objects.
		var enc []byte
		for _, x := range tlvs {
			enc = AppendTLV(enc, x.Tag, x.Value)
		}
		again, err := ParseTLVs(enc)
		if err != nil || len(again) != len(tlvs) {
			t.Fatalf("round trip: %v (%d vs %d objects)", err, len(again), len(tlvs))
		}
		for i := range tlvs {
			if again[i].Tag != tlvs[i].Tag || !bytes.Equal(again[i].Value, tlvs[i].Value) {
				t.Fatalf("object %d differs after round trip", i)
			}
		}
		_, _, err = FindTLV(b, 0xC5)
		checkParseErr(t, err)
	})
}

func FuzzParseCommand(f *testing.F) {
	for _, c := range []Command{
		{INS: insSelect, P1: 4, Data: openPGPAID},
		{INS: insGetData, P2: 0x6E, Ne: 256},
		{INS: insGetData, P2: 0x6E, Ne: 65536},
		{INS: insPSO, P1: 0x9E, P2: 0x9A, Data: make([]byte, 300), Ne: 65536},
		{INS: insTerminateDF},
	} {
		for _, ext := range []bool{false, true} {
			if b, err := c.Bytes(ext); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, ext, err := ParseCommand(b)
		checkParseErr(t, err)
		if err != nil {
			return
		}
		// Round trip in the same encoding.
		enc, err := c.Bytes(ext)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		c2, ext2, err := ParseCommand(enc)
		if err != nil || ext2 != ext || c2.INS != c.INS || c2.Ne != c.Ne || !bytes.Equal(c2.Data, c.Data) {
			t.Fatalf("round trip of % X: %v", b, err)
		}
	})
}

func FuzzParsePublicKey(f *testing.F) {
	rsaDO := AppendTLV(nil, 0x7F49, append(AppendTLV(nil, 0x81, append([]byte{0x80}, make([]byte, 255)...)), AppendTLV(nil, 0x82, []byte{1, 0, 1})...))
	f.Add(rsaDO, byte(0))
	f.Add(AppendTLV(nil, 0x7F49, AppendTLV(nil, 0x86, make([]byte, 32))), byte(2))
	f.Add(AppendTLV(nil, 0x7F49, AppendTLV(nil, 0x86, append([]byte{4}, make([]byte, 64)...))), byte(1))
	algs := []Algorithm{RSA2048, NISTP256, Ed25519, RSA4096}
	f.Fuzz(func(t *testing.T, b []byte, which byte) {
		pk, err := ParsePublicKey(b, algs[int(which)%len(algs)])
		checkParseErr(t, err)
		if err == nil {
			if _, err := pk.Crypto(); err != nil && pk.Algorithm.ID != AlgRSA {
				t.Fatalf("parsed key not usable: %v", err)
			}
		}
	})
}

func FuzzParseAlgorithm(f *testing.F) {
	for _, a := range Algorithms {
		f.Add(a.Bytes())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAlgorithm(b)
		checkParseErr(t, err)
		if err != nil {
			return
		}
		a2, err := ParseAlgorithm(a.Bytes())
		if err != nil || !a2.Equal(a) {
			t.Fatalf("round trip of % X: %v", b, err)
		}
	})
}
