package boot

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/glint-boot/glint/internal/otp"
	"github.com/glint-boot/glint/internal/tpm"
	"github.com/glint-boot/glint/internal/tpm/swtpmtest"
)

// A dual-boot machine whose RTC runs on local time (2 h ahead of UTC) shows
// codes two hours off; the owner types the phone's code and glint says why.
func TestPhoneCodeFindsLocalTimeRTC(t *testing.T) {
	tp, err := tpm.Open(swtpmtest.Start(t, tpm.Version20))
	must(t, err)
	defer tp.Close()
	bootDir := t.TempDir()
	f, err := workstationWith(tp, bootDir, "")
	must(t, err)
	uri, err := f.NewTOTPURI(false)
	must(t, err)
	k, err := otp.ParseURI(uri)
	must(t, err)

	rtcNow := time.Now()
	phone, err := otp.TOTP(otp.SHA1, k.Secret, rtcNow.Add(-2*time.Hour), 30*time.Second, 6)
	must(t, err)
	var out bytes.Buffer
	f.Con = NewConsole(strings.NewReader(otp.FormatCode(phone, 6)+"\n"), &out)
	f.Now = func() time.Time { return rtcNow }
	f.checkPhoneCode()
	if !strings.Contains(out.String(), "2 hours ahead") {
		t.Fatalf("local-time RTC not recognised:\n%s", out.String())
	}
}
