package reown

import (
	"errors"
	"testing"

	"github.com/glint-boot/glint/internal/tpm"
	"github.com/glint-boot/glint/internal/tpm/swtpmtest"
)

// TestProbeOwnerAuth: the probe takeTPM uses to tell whether the TPM's
// authorisations come from this key passes with the right owner
// authorisation and fails with a wrong one, on swtpm 2.0 and 1.2 (a TPM
// 1.2 refused the TPM 2.0 owner-range index with TPM_BADINDEX, which the
// wizard would have reported as authorisations set from another key), and
// leaves no index behind.
func TestProbeOwnerAuth(t *testing.T) {
	for _, v := range []tpm.Version{tpm.Version20, tpm.Version12} {
		t.Run(v.String(), func(t *testing.T) {
			dev, err := tpm.Open(swtpmtest.StartDir(t, v, t.TempDir()))
			if err != nil {
				t.Fatal(err)
			}
			defer dev.Close()
			mine := tpm.HierarchyAuth{Owner: []byte("the new owner's owner auth!!"), Lockout: []byte("the new owner's lockout auth")}
			if err := dev.SetHierarchyAuth(mine); err != nil {
				t.Fatal(err)
			}
			dev.UseAuth(mine)
			if err := probeOwnerAuth(dev); err != nil {
				t.Fatalf("the right owner authorisation: %v", err)
			}
			if err := probeOwnerAuth(dev); err != nil {
				t.Fatalf("a second probe (nothing left by the first): %v", err)
			}
			dev.UseAuth(tpm.HierarchyAuth{Owner: []byte("someone else's owner auth!!!"), Lockout: []byte("someone else's lockout auth!")})
			if err := probeOwnerAuth(dev); !errors.Is(err, tpm.ErrOwnerAuth) {
				t.Fatalf("a wrong owner authorisation: %v, want refused for it", err)
			}
		})
	}
}
