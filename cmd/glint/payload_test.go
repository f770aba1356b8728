//go:build payload

package main

import (
	"bytes"
	"strings"
	"testing"
)

// The payload build (make payload: go build -tags payload) has the recovery shell's verbs and
// none of the workstation-only ones; `make unit` runs this with the tag.
func TestPayloadBuildVerbs(t *testing.T) {
	for _, gone := range []string{"attest enroll", "attest report", "card status", "card sign", "disk seal", "disk unseal", "own", "otp show", "otp seal"} {
		if _, ok := commands[gone]; ok {
			t.Errorf("the payload build has %q", gone)
		}
	}
	for _, kept := range []string{"verify", "sign", "eventlog show", "eventlog replay", "pcrs", "boot list", "rom ls", "rom inspect",
		"host check", "host dump", "host lock", "flash", "flash backup", "iso verify", "manifest hash", "policy show", "rootfs check", "tpm extend"} {
		if _, ok := commands[kept]; !ok {
			t.Errorf("the payload build lacks %q, which the recovery shell offers", kept)
		}
	}
	var out bytes.Buffer
	err := run([]string{"own"}, strings.NewReader(""), &out, &out)
	if err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Errorf("glint own in the payload build: %v", err)
	}
	err = run([]string{"sign", "--yes", "--card", t.TempDir()}, strings.NewReader(""), &out, &out)
	if err == nil || !strings.Contains(err.Error(), "workstation") {
		t.Errorf("glint sign --card in the payload build: %v, want the pointer to a workstation", err)
	}
}
