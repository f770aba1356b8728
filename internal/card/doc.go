// Package card is the OpenPGP smart card application (OpenPGP card
// specification 3.4, and 2.x cards) spoken by glint itself, so the owner's
// signing key can live on a security key (Nitrokey 3/Pro, Librem Key,
// YubiKey) in the boot firmware, where there is no gpg, scdaemon or pcscd.
//
// Threat: a signing key on disk or in the firmware image can be copied by
// whoever holds the machine for an hour. A key generated on the card never
// leaves it; signing needs the card and its PIN, and three wrong PINs block
// it.
//
// Layers, each in its own package:
//
//	card            APDUs (ISO 7816-4: short/extended, command chaining,
//	                GET RESPONSE), BER-TLV, the OpenPGP application's
//	                commands, OpenPGP packets built from the card's key
//	card/ccid       USB CCID readers and tokens over Linux usbfs
//	card/pcsc       pcscd's client protocol (workstations)
//	card/readers    picks pcscd or USB from a --reader spec
//	card/cardsim    a simulated card for tests and the emulated laptop
//
// The API the wizard and the boot menu use:
//
//	c, label, err := readers.OpenCard("")          // or card.Open(transport)
//	st, err := c.Status()                          // serial, keys, PIN tries
//	k, ownerASC, err := c.GenerateOwnerKey(card.GenerateOptions{
//		Algorithm: card.RSA3072, UserID: "Jane <jane@example.org>",
//		AdminPIN: admin, Prompt: askPIN})          // key made ON the card
//	s, err := card.NewSigner(c, askPIN)            // a manifest.Signer
//	sig, err := s.Sign(manifestText)               // asks the PIN (tries shown)
//	err = c.ChangePIN(card.PW3, old, new)          // also PW1Sign
//	err = c.FactoryReset(nil)                      // works without the admin PIN
//
// askPIN is a PINPrompt: it gets a PINRequest (which PIN, tries left, the
// card's label, whether the last one was wrong) and returns the PIN or an
// error to give up; FixedPIN answers from a file and never tries twice.
// Wrong PINs are *PINError (tries left), blocked ones *BlockedError, whose
// message says what to do.
//
// The OpenPGP public key is rebuilt from the card's public key and the
// creation time recorded on the card, so a key gpg generated on the card
// gets gpg's fingerprint; self-signatures and detached signatures are made
// by the card over hashes computed here, and every one is verified with
// ProtonMail/go-crypto before it is returned.
package card
