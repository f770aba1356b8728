// Package dongle verifies HOTP codes on a USB security dongle, the way
// Heads' hotp_verification does, but from Go over Linux hidraw.
//
// The dongle holds the HOTP secret glint seals to the TPM and a counter.
// At boot glint unseals the secret, computes the code for the next counter
// (see otp.ReserveCounter) and asks the dongle to check it; the dongle
// lights green or red. A machine whose firmware or boot state changed
// cannot unseal the secret, so it cannot make the dongle light green.
//
// # Devices
//
// Nitrokey Pro (20a0:4108), Nitrokey Storage (20a0:4109) and Librem Key
// (316d:4c4b) speak the Nitrokey Pro report protocol: 64-byte HID Feature
// reports, report ID 0, SET_REPORT for requests and GET_REPORT polled for
// answers, each report closed by the STM32 CRC (see CRC). Sources:
// Nitrokey nitrokey-pro-firmware src/keyboard/report_protocol.c and
// src/hotp/hotp.c; the reference client nitrokey-hotp-verification
// src/device.c, src/structs.h, src/operations.c. The Nitrokey 3
// (20a0:42b2) needs CTAPHID vendor command 0x70 and is detected but not
// spoken yet.
//
// # Use
//
//	dev, found, err := dongle.Open(os.DirFS("/sys"), "/dev")
//	defer dev.Close()
//	c := &dongle.Client{Dev: dev}
//	tries, err := c.AdminTries()   // ErrPINLocked: say "no PIN tries left" before asking
//	s, err := c.Login(adminPIN)    // the PIN is checked, nothing written yet
//	err = s.Program(secret, nextCounter)  // then commit the new secret elsewhere
//	v, err := c.Verify(code)       // at boot; v.String() says how many codes were skipped
//
// Program authenticates with the admin PIN, which on these dongles is the
// OpenPGP card's admin PIN (PW3): every wrong try costs one of the card's
// three tries, so Program reads the counter first and refuses at zero. It
// sends a random temporary password (the reference tool sends zeros),
// writes the secret and the name "HEADS Validation" into slot 0x13 (HOTP
// slot 3, the one VERIFY_OTP_CODE checks), so a dongle set up by Heads or
// glint works with either, and commits with WRITE_TO_SLOT.
//
// Verify reports the look-ahead offset (0..9) at which the dongle found the
// code: codes glint computed that the dongle never saw (someone else used
// the secret, or boots without the dongle). Verification.String says so
// instead of a plain "VALID"; pass the offset to otp.CheckVerifyOffset for
// the explanation. OffsetKnown is false for a protocol that tells only pass
// or fail, as the Nitrokey 3's Secrets App will once glint speaks it (not
// yet, see Devices): there skipped codes cannot be counted.
//
// Errors say what to do: *WrongPINError ("wrong admin PIN: 2 tries left on
// the card"), ErrPINLocked, ErrNotProgrammed ("run glint otp seal --hotp"),
// ErrNoAnswer ("unplug it, plug it in again"), *StatusError for the rest.
//
// # Tests
//
// No dongle can be attached where the tests run. Package dongletest is a
// simulator written from the protocol notes; the client tests run against
// it through the same Device interface the hidraw device implements.
package dongle
