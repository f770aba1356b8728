//go:build !attestserver && !payload

package main

import (
	"strings"
	"testing"
)

// The small build (the one that runs as /init) has no server, and says how
// to get one.
func TestAttestServeNotInSmallBuild(t *testing.T) {
	if out, code := glintRun("attest", "serve"); code == 0 || !strings.Contains(out, "make server") {
		t.Fatalf("attest serve in the small build: exit %d\n%s", code, out)
	}
}
