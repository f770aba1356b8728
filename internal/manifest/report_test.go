package manifest

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestTamperReport(t *testing.T) {
	te := &TamperError{
		BadSignature: errors.New("hash mismatch"),
		Rollback:     &RollbackError{Index: DefaultCounterIndex, Manifest: 3, TPM: 4},
		Changed:      []FileChange{{Path: "vmlinuz", Want: Entry{Path: "vmlinuz", Kind: KindFile, Size: 1}, Got: Entry{Path: "vmlinuz", Kind: KindFile, Size: 2}}},
		Added:        []Entry{{Path: "evil\x1b[2J.mod", Kind: KindFile}},
		Removed:      []Entry{{Path: "initrd.img", Kind: KindFile}},
	}
	note := &ExpectedNote{Updates: []ExpectedUpdate{
		{Time: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), Source: "debian-kernel", What: "6.1.0-18", Files: []string{"vmlinuz"}},
		{Time: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC), Source: "apt\x1b]0;pwned\x07", What: "v2", Files: []string{"initrd.img"}},
	}}
	got := TamperReport(te, note)
	want := []string{
		"manifest signature is BAD: the manifest or its signature was modified (hash mismatch)",
		"rollback counter: rollback:",
		`changed: "vmlinuz": signed sha256 `,
		`added:   "evil\x1b[2J.mod" (not in the signed manifest)`,
		`removed: "initrd.img" (listed in the signed manifest)   [expected by an UNSIGNED note: "apt\x1b]0;pwned\a" v2 on 2026-03-02T10:00:00Z]`,
	}
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("line %d:\n got %s\nwant %s...", i, got[i], want[i])
		}
	}
	if !strings.HasSuffix(got[2], "[expected by an UNSIGNED note: debian-kernel 6.1.0-18 on 2026-03-01T10:00:00Z]") {
		t.Errorf("the note is not beside the changed kernel: %s", got[2])
	}
	for _, l := range got {
		if strings.ContainsAny(l, "\x1b\x07") {
			t.Errorf("raw control character from /boot in %q", l)
		}
	}
	// The error says the same, in the same words (without the note).
	msg := te.Error()
	for _, l := range TamperReport(te, nil) {
		if !strings.Contains(msg, l) {
			t.Errorf("TamperError.Error() lacks the report line %q:\n%s", l, msg)
		}
	}
	if l := TamperReport(&TamperError{UnknownKey: 0xABCDEF0123456789}, nil); len(l) != 1 || !strings.Contains(l[0], "ABCDEF0123456789, which is not an owner key") {
		t.Errorf("unknown key: %q", l)
	}
}
