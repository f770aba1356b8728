//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/glint-boot/glint/internal/rom"
)

// TestPredict proves `glint rom predict` on the emulated laptop: for each
// image booted, the PCRs the guest reads at glint's menu equal what glint
// predicted from the image file before the boot, for TPM 2.0 and TPM 1.2,
// and a change to the image moves exactly the PCRs the prediction says.
//
// Three boots per machine:
//
//	A  the ROM personalized with the real CLI (owner key and configuration)
//	B  the owner configuration changed, and a CBFS file nobody measures added:
//	   only PCR 7 moves
//	C  one byte of the payload's kernel command line changed: only PCR 2 moves
//
// The owner's key stick is unplugged, so glint's owner set-up stops at "no
// owner key found" and the menu comes up with nothing sealed or unsealed:
// PCR 4 is at its normal-boot value and the menu's "e" shows PCRs 0-7 of
// the bank glint seals to (SHA-256 on TPM 2.0, SHA-1 on 1.2).
func TestPredict(t *testing.T) {
	parallel := os.Getenv("GLINT_E2E_SERIAL") == ""
	for _, fw := range []Firmware{CorebootTPM2, CorebootTPM1} {
		t.Run(string(fw), func(t *testing.T) {
			if parallel {
				t.Parallel()
			}
			needTools(t, fw)
			m := NewMachine(t, fw, "predict-"+string(fw))
			m.Stick = "" // no owner key: set-up fails fast, no secret is sealed
			glint := filepath.Join(m.Top, "out", "glint")
			cfg := filepath.Join(m.Dir, "owner.conf")

			// A: personalized with the CLI, as an owner does it.
			must(t, os.WriteFile(cfg, []byte("countdown = 3\ntotp.account = predict test\n"), 0o644))
			runGlint(t, glint, "rom", "personalize", m.ROM, "--key", m.Owner.PublicFile, "--config", cfg)
			predA := predictImage(t, glint, m.ROM)
			gotA := bootAndReadPCRs(t, m, "predict-A")
			comparePCRs(t, "A", predA, gotA)

			// B: another configuration, and a file nobody measures.
			must(t, os.WriteFile(cfg, []byte("countdown = 4\ntotp.account = predict test\n"), 0o644))
			runGlint(t, glint, "rom", "personalize", m.ROM, "--key", m.Owner.PublicFile, "--config", cfg)
			note := filepath.Join(m.Dir, "note.txt")
			must(t, os.WriteFile(note, []byte("not measured by coreboot or glint\n"), 0o644))
			must(t, run("cbfstool", m.ROM, "add", "-f", note, "-n", "extra/note.txt", "-t", "raw"))
			predB := predictImage(t, glint, m.ROM)
			if got := changed(predA, predB); !reflect.DeepEqual(got, []int{7}) {
				t.Fatalf("B: the prediction moved PCRs %v, want [7]", got)
			}
			gotB := bootAndReadPCRs(t, m, "predict-B")
			comparePCRs(t, "B", predB, gotB)

			// C: the payload's command line changed by one byte.
			changePayloadCmdline(t, m.ROM)
			predC := predictImage(t, glint, m.ROM)
			if got := changed(predB, predC); !reflect.DeepEqual(got, []int{2}) {
				t.Fatalf("C: the prediction moved PCRs %v, want [2]", got)
			}
			gotC := bootAndReadPCRs(t, m, "predict-C")
			comparePCRs(t, "C", predC, gotC)
			if gotA[7] == gotB[7] || gotB[2] == gotC[2] || gotA[2] != gotB[2] || gotB[7] != gotC[7] {
				t.Fatalf("the guest's PCRs did not move as predicted: A %v, B %v, C %v", gotA, gotB, gotC)
			}
		})
	}
}

func runGlint(t *testing.T, glint string, args ...string) string {
	t.Helper()
	out, err := exec.Command(glint, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("glint %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// prediction is what `glint rom predict --json` printed, by PCR and bank.
type prediction struct {
	TPM  string
	PCRs map[int]map[string]string // index -> bank -> hex
}

func predictImage(t *testing.T, glint, image string) prediction {
	t.Helper()
	var j struct {
		TPM  string `json:"tpm"`
		PCRs []struct {
			Index  int    `json:"index"`
			SHA1   string `json:"sha1"`
			SHA256 string `json:"sha256"`
		} `json:"pcrs"`
	}
	if err := json.Unmarshal([]byte(runGlint(t, glint, "rom", "predict", "--json", image)), &j); err != nil {
		t.Fatal(err)
	}
	p := prediction{TPM: j.TPM, PCRs: map[int]map[string]string{}}
	for _, v := range j.PCRs {
		p.PCRs[v.Index] = map[string]string{"sha1": v.SHA1, "sha256": v.SHA256}
	}
	return p
}

func changed(a, b prediction) []int {
	var out []int
	for i, va := range a.PCRs {
		if !reflect.DeepEqual(va, b.PCRs[i]) {
			out = append(out, i)
		}
	}
	sort.Ints(out)
	return out
}

// guestPCRs are the values glint's menu shows: index -> "bank hex".
type guestPCRs map[int]string

var pcrLine = regexp.MustCompile(`PCR\[\s*(\d+)\]\s+(sha1|sha256)\s+([0-9a-f]+)`)

// bootAndReadPCRs powers the machine on, waits for glint's menu, asks for
// the event log and PCRs ("e") and powers off.
func bootAndReadPCRs(t *testing.T, m *Machine, scenario string) guestPCRs {
	t.Helper()
	r := m.Boot(t, scenario)
	expect(t, r, `glint: boot flow starting`, toGlint)
	expect(t, r, `glint> `, 2*toStep)
	mark := r.Mark()
	must(t, r.Send("e"))
	expect(t, r, `PCR\[\s*7\][^\n]*\n`, toStep)
	out := r.Since(mark)
	got := guestPCRs{}
	for _, mm := range pcrLine.FindAllStringSubmatch(out, -1) {
		i, _ := strconv.Atoi(mm[1])
		got[i] = mm[2] + " " + mm[3]
	}
	if len(got) != 8 {
		t.Fatalf("%s: the menu showed %d PCRs:\n%s", scenario, len(got), out)
	}
	expect(t, r, `glint> `, toStep)
	must(t, r.Send("p"))
	r.Wait(t, toStopped)
	return got
}

// comparePCRs checks every PCR glint seals to against the prediction in the
// bank the guest showed.
func comparePCRs(t *testing.T, name string, want prediction, got guestPCRs) {
	t.Helper()
	var diffs []string
	for i := 0; i <= 7; i++ {
		bank, val, _ := strings.Cut(got[i], " ")
		if w := want.PCRs[i][bank]; w != val {
			diffs = append(diffs, fmt.Sprintf("PCR %d %s: guest %s, predicted %s", i, bank, val, w))
		}
	}
	if len(diffs) > 0 {
		t.Fatalf("%s: the guest's PCRs differ from `glint rom predict`:\n  %s", name, strings.Join(diffs, "\n  "))
	}
	t.Logf("%s: PCRs 0-7 in the guest equal the prediction (%s)", name, strings.Fields(got[2])[0])
}

// changePayloadCmdline rewrites fallback/payload with its kernel command
// line reordered ("quiet panic=-1" -> "panic=-1 quiet": same length, same
// meaning, other bytes), as someone editing the firmware would. (A word the
// kernel does not know would reach /init as an argument.)
func changePayloadCmdline(t *testing.T, path string) {
	t.Helper()
	img, err := rom.FromFile(path)
	must(t, err)
	f, err := img.File("COREBOOT", "fallback/payload")
	must(t, err)
	segs, err := rom.ParseSELF(f.Data)
	must(t, err)
	data := append([]byte(nil), f.Data...)
	at := -1
	for _, s := range segs {
		if i := strings.Index(string(s.Data), "quiet panic=-1"); s.Type == rom.SegmentData && i >= 0 {
			at = int(s.Offset) + i
		}
	}
	if at < 0 {
		t.Fatal("no command line segment with \"quiet panic=-1\" in the payload")
	}
	copy(data[at:], "panic=-1 quiet")
	img, err = img.RemoveFile("COREBOOT", "fallback/payload")
	must(t, err)
	img, err = img.AddFile("COREBOOT", "fallback/payload", data, rom.AddOptions{Type: rom.TypeSELF})
	must(t, err)
	must(t, os.WriteFile(path, img.Data, 0o644))
}
