package eventlog

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestXDumpDescriptions(t *testing.T) {
	var out strings.Builder
	files, _ := filepath.Glob("testdata/*.bin")
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		l, err := Parse(raw)
		if err != nil {
			t.Fatal(f, err)
		}
		for _, e := range l.Events {
			fmt.Fprintf(&out, "%s %d %q\n", f, e.Index, e.Description)
		}
	}
	raw := syntheticLog(300)
	l, _ := ParseTCG(raw)
	for _, e := range l.Events {
		fmt.Fprintf(&out, "synthetic %d %q\n", e.Index, e.Description)
	}
	wl, _ := windowsStyleLog(t)
	l2, _ := ParseTCG(wl)
	for _, e := range l2.Events {
		fmt.Fprintf(&out, "windows %d %q\n", e.Index, e.Description)
	}
	os.WriteFile(os.Getenv("DESC_OUT"), []byte(out.String()), 0o644)
}
