// Package otp is the pure half of glint's "is this still my machine?"
// check: one-time codes, the enrollment URI and QR code, clock sanity, and
// the HOTP counter file. Sealing the secret to the TPM lives in package
// sealed (on package seal); talking to a USB dongle lives in otp/dongle.
//
// # The threat
//
// An attacker with the laptop for an evening can reflash the firmware or
// change /boot. The owner cannot see that, so glint proves it the other
// way round: a secret is sealed to the TPM under the measurements of the
// genuine firmware and boot mode (PCRs 0-4 and 7), and only an unmodified
// machine can unseal it and show a code derived from it. The owner
// compares that code with one computed independently:
//
//   - TOTP (RFC 6238): the phone computes the code from the time. The owner
//     enrolls the phone once by scanning a QR code of an otpauth:// URI.
//   - HOTP (RFC 4226): a dongle (Nitrokey Pro, Librem Key...) holds the same
//     secret and a counter; glint sends the code for the next counter and
//     the dongle lights green or red.
//
// # Codes
//
//	code, err := otp.TOTP(otp.SHA1, secret, time.Now(), otp.DefaultPeriod, 6)
//	fmt.Println(otp.FormatCode(code, 6))  // always with leading zeros
//
// HOTP and TOTP follow RFC 4226 section 5.3 and RFC 6238 section 4; the
// tests check every vector in RFC 4226 appendix D and RFC 6238 appendix B
// and compare 50 random cases with oathtool.
//
// # Enrollment
//
//	product, serial := otp.ReadDMI(os.DirFS("/sys"))
//	k := otp.Key{Type: otp.TypeTOTP, Issuer: "glint",
//		Account: otp.MachineAccount(hostname, product, serial), Secret: secret}
//	uri, err := k.URI()          // otpauth://totp/glint:ThinkPad%20X230%20PF0ABCDE?secret=...&issuer=glint
//	err = otp.RenderHalfBlocks(os.Stdout, uri)   // console, 2 module rows per line
//	err = otp.RenderASCII(serial, uri)           // dumb terminals: "##" per module
//	err = otp.WritePNG(f, uri, 8)                // for printing or another screen
//
// The terminal renderings draw the light modules as blocks, so on the
// usual black console the phone sees dark modules on a light ground with
// the 4-module quiet zone ISO/IEC 18004 asks for. The tests decode every
// rendering back to the URI with an independent decoder (gozxing).
//
// # Clock
//
// A TOTP code is only as good as the clock. CheckClock catches the clock
// that cannot be right (before the binary's build date: a flat CMOS
// battery). CorrectRTC applies an owner-configured offset for an RTC kept
// in local time (a dual-boot with Windows), and PossibleLocalTimeRTC finds
// that offset from the code the owner's phone shows.
//
// # The HOTP counter file
//
// The dongle keeps its own counter c and accepts codes for c..c+9; glint
// must know which counter to compute next. Heads keeps that number as plain
// decimal in /boot/kexec_hotp_counter, which anyone with the disk can
// rewrite. glint keeps /boot/glint/hotp-counter as the counter plus
// HMAC-SHA256(secret, "glint-hotp-counter v1" || 0x00 || counter), and uses
// it in this order:
//
//	n, err := otp.ReserveCounter(path, secret, floor) // verify, write n+1, return n
//	code, _ := otp.HOTP(otp.SHA1, secret, n, 6)
//	v, err := dongleClient.Verify(code)
//	err = otp.CheckVerifyOffset(v.Offset)             // k > 0: codes the dongle never saw
//
// What each part buys:
//
//   - Authenticity. Only a machine that unsealed the secret (the genuine
//     firmware in its genuine state) can write a file ReadCounter accepts.
//     An edit, such as jumping the counter forward to make the dongle
//     fail, is reported as *CounterForgedError naming the claimed value,
//     instead of showing up as a mysterious red LED.
//   - No reuse. ReserveCounter moves the file past a counter before the
//     code for it leaves the machine, atomically (temp file, fsync,
//     rename, directory fsync), and WriteCounter refuses to lower a valid
//     counter. So every code glint computes has its own counter, and a
//     dongle accepting at offset k > 0 means exactly k codes were computed
//     that it never checked: after booting without the dongle that is
//     expected; otherwise something posing as the dongle may have recorded
//     them (CheckVerifyOffset says so in words).
//   - Rollback. A MAC cannot tell a current file from an older valid copy
//     (restoring an old /boot image restores an old, valid counter file).
//     Two things catch that. The dongle itself: its counter never goes
//     back, so codes for old counters are refused (a red LED, and glint
//     cannot tell that apart from a wrong secret). And the floor argument:
//     a caller with a tamper-proof monotonic counter (a TPM NV counter
//     incremented with each reservation) passes its value, and ReadCounter
//     returns *CounterRollbackError naming both numbers when the file is
//     behind it.
//
// What it cannot do: HOTP on a dongle proves that the machine knew the
// secret when it computed the code, not when the dongle checks it. A thief
// who boots the genuine machine with a fake dongle attached collects the
// next code and can replay it later from tampered firmware to the real
// dongle. The counter file shrinks this (collected codes show up as an
// offset later, and a re-seal voids them) but only TOTP, or a dongle that
// challenges the machine, closes it.
//
// All parsers here (ParseURI, ParseCounterFile, ParseUTCOffset) take
// untrusted input, cap lengths before allocating, return *ParseError, and
// have fuzz targets beside them.
package otp
