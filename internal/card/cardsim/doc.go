// Package cardsim is an OpenPGP card written from the OpenPGP smart card
// application specification 3.4 (and 2.1 in Spec2 mode), for tests and for
// the emulated laptop: it answers command APDUs as a card would, keeps its
// state in memory or in a file, and is reached
//
//   - in-process, as a card.Transport (Transport);
//   - by pcscd through vsmartcard's vpcd driver (ServeVPCD): gpg, scdaemon
//     and glint's PC/SC client then talk to it like to a USB token;
//   - by QEMU's usb-ccid reader with ccid-card-passthru (ServeVSCard): the
//     guest sees a real USB CCID reader holding this card.
//
// It is checked against gpg's own card commands (gpg --card-status,
// --card-edit factory-reset / key-attr / generate / passwd, signing) in
// cardsim's tests, so it cannot drift into agreeing only with glint.
//
// What it is not: a secure element. Keys are ordinary Go keys in memory and
// in the state file; PINs are compared in constant time but stored in clear.
// It has no touch button, no LED, and no real card's timing (RSA-4096
// generation takes about a second here, 20 s to minutes on tokens).
//
//	c := cardsim.New(cardsim.Options{})
//	cd, err := card.Open(c.Transport())
package cardsim
