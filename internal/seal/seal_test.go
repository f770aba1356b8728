package seal

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glint-boot/glint/internal/eventlog"
	"github.com/glint-boot/glint/internal/pcr"
	"github.com/glint-boot/glint/internal/tpm"
	"github.com/glint-boot/glint/internal/tpm/swtpmtest"
)

// event is a coreboot-style measurement of the named stage's contents.
func event(desc, contents string) eventlog.EventRecord {
	return eventlog.EventRecord{PCR: 2, Type: eventlog.EvAction, Description: "FMAP: COREBOOT CBFS: " + desc, Alg: tpm.SHA256, Digest: pcr.Measure(tpm.SHA256, []byte(contents))}
}

func TestSealUnsealExplainsWithEvents(t *testing.T) {
	for _, v := range []tpm.Version{tpm.Version20, tpm.Version12} {
		t.Run(v.String(), func(t *testing.T) {
			tp, err := tpm.Open(swtpmtest.Start(t, v))
			if err != nil {
				t.Fatal(err)
			}
			defer tp.Close()
			bank := tpm.SHA256
			if v == tpm.Version12 {
				bank = tpm.SHA1
			}
			vals, err := tp.ReadPCRs(bank, []int{0, 2, 4, 7})
			if err != nil {
				t.Fatal(err)
			}
			then := []eventlog.EventRecord{event("fallback/ramstage", "ramstage"), event("fallback/payload", "payload v1")}
			rec, err := Seal(tp, []byte("totp secret"), Request{Purpose: "totp", Profile: pcr.Coreboot, Bank: bank, Values: vals, Events: then, Now: time.Now()})
			if err != nil {
				t.Fatal(err)
			}
			// The record survives storage on /boot.
			boot := t.TempDir()
			if err := Save(boot, rec); err != nil {
				t.Fatal(err)
			}
			rec, err = Load(boot, "totp")
			if err != nil {
				t.Fatal(err)
			}
			got, err := Unseal(tp, rec, nil, pcr.Coreboot, nil)
			if err != nil || string(got) != "totp secret" {
				t.Fatalf("unseal: %q, %v", got, err)
			}

			// A new payload is measured: PCR 2 moves, and the event that
			// changed is named.
			if err := tp.Extend(2, []byte("payload v2")); err != nil {
				t.Fatal(err)
			}
			now := []eventlog.EventRecord{then[0], event("fallback/payload", "payload v2")}
			_, err = Unseal(tp, rec, nil, pcr.Coreboot, now)
			var me *MismatchError
			if !errors.As(err, &me) {
				t.Fatalf("want *MismatchError, got %v", err)
			}
			if len(me.Changed) != 1 || me.Changed[0].Index != 2 {
				t.Fatalf("changed PCRs %v, want [2]", me.PCRs())
			}
			msg := err.Error()
			for _, want := range []string{"PCR 2 changed", "coreboot", "fallback/payload changed"} {
				if !strings.Contains(msg, want) {
					t.Errorf("message lacks %q:\n%s", want, msg)
				}
			}
			if strings.Contains(msg, "ramstage changed") {
				t.Errorf("unchanged event reported:\n%s", msg)
			}
		})
	}
}

func TestLoadMissingAndBroken(t *testing.T) {
	boot := t.TempDir()
	if _, err := Load(boot, "totp"); !errors.Is(err, ErrNotSealed) {
		t.Fatalf("missing record: %v, want ErrNotSealed", err)
	}
	if err := os.MkdirAll(filepath.Join(boot, Dir), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(Path(boot, "totp"), []byte(`{"version":1,"purpose":"totp","bank":11,"pcrs":{"2":"00"},"blob":"AA=="}`), 0o644)
	var pe *ParseError
	if _, err := Load(boot, "totp"); !errors.As(err, &pe) || pe.Field != "pcrs" {
		t.Fatalf("short PCR value: %v, want a ParseError on pcrs", err)
	}
}
