package otp_test

import (
	"fmt"
	"time"

	"github.com/glint-boot/glint/internal/otp"
)

func Example() {
	secret := []byte("12345678901234567890")
	k := otp.Key{Type: otp.TypeTOTP, Issuer: "glint",
		Account: otp.MachineAccount("x230", "ThinkPad X230", "PF0ABCDE"), Secret: secret}
	uri, _ := k.URI()
	fmt.Println(uri)

	code, _ := otp.TOTP(otp.SHA1, secret, time.Unix(1111111109, 0), otp.DefaultPeriod, 6)
	fmt.Println(otp.FormatCode(code, 6))
	// Output:
	// otpauth://totp/glint:ThinkPad%20X230%20PF0ABCDE?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=glint
	// 081804
}
