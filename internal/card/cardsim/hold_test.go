package cardsim_test

import (
	"os"
	"testing"
	"time"

	"github.com/glint-boot/glint/internal/card/cardsim"
	"github.com/glint-boot/glint/internal/card/cardsim/pcscdtest"
)

// TestHold keeps a simulated card behind pcscd for manual experiments:
// GLINT_CARDSIM_HOLD=SECONDS go test -run TestHold -v ./internal/card/cardsim
func TestHold(t *testing.T) {
	secs := os.Getenv("GLINT_CARDSIM_HOLD")
	if secs == "" {
		t.Skip("set GLINT_CARDSIM_HOLD=SECONDS")
	}
	d, _ := time.ParseDuration(secs + "s")
	sim, err := cardsim.New(cardsim.Options{Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	p := pcscdtest.Start(t, sim)
	os.WriteFile("/tmp/cardexp/socket", []byte(p.Socket), 0o644)
	t.Logf("PCSCLITE_CSOCK_NAME=%s reader %q", p.Socket, p.Reader)
	time.Sleep(d)
}
