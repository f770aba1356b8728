package rom

import (
	"bytes"
	"strings"
	"testing"
)

// The owner files of an image made by real cbfstool: every glint/* file,
// decompressed, named without the prefix; nothing else from CBFS.
func TestOwnerFiles(t *testing.T) {
	fx := buildImage(t)
	img, err := FromFile(fx.rom)
	if err != nil {
		t.Fatal(err)
	}
	got, err := OwnerFiles(img)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(fx.files) {
		t.Errorf("%d owner files, the image has %d glint/ files", len(got), len(fx.files))
	}
	for name, want := range fx.files {
		short := strings.TrimPrefix(name, OwnerFilePrefix)
		if !bytes.Equal(got[short], want) {
			t.Errorf("%s: %d bytes, want %d", short, len(got[short]), len(want))
		}
	}
}
