package secret

import "testing"

func TestWipe(t *testing.T) {
	b := []byte("123456")
	Wipe(b[:4])
	if string(b) != "\x00\x00\x00\x0056" {
		t.Fatalf("after Wipe: %q", b)
	}
	Wipe(nil) // no secret: nothing to do, no panic
}
