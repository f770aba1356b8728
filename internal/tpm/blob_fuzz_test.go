package tpm

import (
	"bytes"
	"testing"
)

// realBlob20 is the shape of a TPM 2.0 sealed blob as Seal produces it (the
// public and private parts are swtpm output sizes; their bytes are opaque
// to the parser). testdata/fuzz/FuzzParseSealedBlob holds blobs sealed by
// swtpm (TPM 2.0 with PIN, TPM 1.2).
func realBlob20() []byte {
	b := &sealedBlob{Family: Version20, Bank: SHA256, PCRs: []int{0, 1, 2, 3, 4, 7},
		Parts: [][]byte{bytes.Repeat([]byte{0x23}, 78), bytes.Repeat([]byte{0x5a}, 158)}}
	out, _ := b.marshal()
	return out
}

func realBlob12() []byte {
	b := &sealedBlob{Family: Version12, Bank: SHA1, PIN: true, PCRs: []int{0, 1, 2, 3, 4, 7},
		Parts: [][]byte{bytes.Repeat([]byte{0x01}, 322)}}
	out, _ := b.marshal()
	return out
}

// FuzzParseSealedBlob: no panic, bounded allocation, and parse(marshal(parse(x))) == parse(x).
func FuzzParseSealedBlob(f *testing.F) {
	f.Add(realBlob20())
	f.Add(realBlob12())
	f.Add([]byte("GLSB"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, untrusted []byte) {
		b, err := parseSealedBlob(untrusted)
		if err != nil {
			return
		}
		for _, p := range b.Parts {
			if len(p) > maxBlobPart {
				t.Fatalf("part of %d bytes accepted", len(p))
			}
		}
		again, err := b.marshal()
		if err != nil {
			t.Fatalf("marshal of a parsed blob: %v", err)
		}
		if !bytes.Equal(again, untrusted) {
			t.Fatalf("round trip differs:\n%x\n%x", untrusted, again)
		}
	})
}

// FuzzReadResponse: the socket reader takes the size from the peer's header
// and must never allocate past maxResponseSize or return a short response.
func FuzzReadResponse(f *testing.F) {
	f.Add([]byte{0x80, 0x01, 0, 0, 0, 10, 0, 0, 0, 0})
	f.Add([]byte{0x00, 0xC4, 0, 0, 0, 14, 0, 0, 0, 0, 1, 2, 3, 4})
	f.Add([]byte{0x80, 0x01, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, untrusted []byte) {
		rsp, err := readResponse(bytes.NewReader(untrusted))
		if err != nil {
			return
		}
		if len(rsp) < headerSize || len(rsp) > maxResponseSize {
			t.Fatalf("accepted a %d-byte response", len(rsp))
		}
		if _, err := checkResponse(rsp); err != nil {
			t.Fatalf("readResponse returned what checkResponse refuses: %v", err)
		}
	})
}

// FuzzStoredDataLen: TPM_STORED_DATA12 sizes inside a sealed blob are untrusted.
func FuzzStoredDataLen(f *testing.F) {
	f.Add(bytes.Repeat([]byte{0}, 8))
	f.Add([]byte{0, 0x16, 0, 0, 0, 0, 0, 2, 0, 0, 0, 1, 9, 0})
	f.Fuzz(func(t *testing.T, untrusted []byte) {
		n, err := storedDataLen(untrusted)
		if err == nil && (n < 0 || n > len(untrusted)) {
			t.Fatalf("length %d outside the %d bytes given", n, len(untrusted))
		}
	})
}
