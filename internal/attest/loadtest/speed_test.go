package loadtest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/glint-boot/glint/internal/attest/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Run(m)) }

func TestVirtualDeviceSpeed(t *testing.T) {
	f := NewFleet(t, 2, 20)
	start := time.Now()
	fps, err := f.Fingerprints()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("20 EKs in %s (%s each)", time.Since(start), time.Since(start)/20)
	if fps[0] == fps[1] {
		t.Fatal("two virtual devices share an EK")
	}
	_ = context.Background()
}
