package boot

import (
	"bytes"
	"strings"
	"testing"
)

func TestZeroJournalIsUsable(t *testing.T) {
	var j Journal // early boot logs before NewJournal: must not panic
	j.Debugf("mount %s: %v", "efivarfs", "no such device")
	if l := j.Lines(); len(l) != 1 || !strings.Contains(l[0], "efivarfs") {
		t.Fatalf("lines %q", l)
	}
}

func TestJournalRingKeepsNewest(t *testing.T) {
	var out bytes.Buffer
	j := NewJournal(&out, nil)
	for i := 0; i < journalLines+5; i++ {
		j.Debugf("line %d", i)
	}
	j.Logf("shown")
	l := j.Lines()
	if len(l) != journalLines || !strings.HasSuffix(l[len(l)-1], "shown") || !strings.Contains(l[0], "line 6") {
		t.Fatalf("ring: %d lines, first %q, last %q", len(l), l[0], l[len(l)-1])
	}
	if out.String() != "glint: shown\n" {
		t.Fatalf("console got %q, want only the Logf line", out.String())
	}
}

func TestPromptSecretTurnsEchoOff(t *testing.T) {
	var out bytes.Buffer
	c := NewConsole(strings.NewReader("secret\n"), &out)
	var states []bool
	c.Echo = func(on bool) { states = append(states, on) }
	got, err := c.PromptSecret("PIN: ")
	if err != nil || string(got) != "secret" {
		t.Fatalf("got %q, %v", got, err)
	}
	if len(states) != 2 || states[0] || !states[1] {
		t.Fatalf("echo switched %v, want [false true]", states)
	}
	if strings.Contains(out.String(), "secret") {
		t.Fatal("secret written to the console")
	}
}
