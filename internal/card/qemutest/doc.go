// Package qemutest proves glint's OpenPGP card path inside a guest against
// a real USB smart card reader: QEMU's usb-ccid (a CCID 1.1 reader on an
// xHCI controller) with ccid-card-passthru, whose card is glint's simulator
// (internal/card/cardsim) on the host, reached over QEMU's VSCard protocol
// on a unix socket.
//
// Why usb-ccid + passthru and not usbredir: QEMU's reader is a CCID
// implementation glint did not write, so the guest's CCID client (usbfs
// bulk transfers, IccPowerOn, XfrBlock, T=0 TPDUs, GET RESPONSE) is checked
// against someone else's reader, and the simulator only has to speak a
// dozen-line APDU protocol. usbredir would carry a whole USB device
// (descriptors, control requests) that glint would have to emulate itself,
// which tests glint against glint.
//
// The guest boots Debian's kernel with a small initramfs: /init (guest/)
// loads usb-common, usbcore, xhci-hcd and xhci-pci from the kernel cache
// (scripts/fetch-kernel.sh), waits for the reader, then runs the real glint
// binary: card list, card status, card generate (RSA-2048: the public key
// comes back over several GET RESPONSE rounds through the T=0 reader), a
// signature with a wrong PIN (refused, one try spent, status shows 2 left),
// manifest hash of a small /boot and card sign of that manifest. The host
// then imports the owner.asc the guest wrote into a fresh gpg and runs gpg
// --verify on the manifest signature.
//
// What QEMU's reader cannot show: time extensions (it NAKs until the card
// answers; the client's time-extension handling is tested in
// internal/card/ccid with a software reader), extended APDUs (it is a T=0
// TPDU reader), a token's touch button and LED, real cards' timing.
//
// Run (about a minute on 2 cores; skips when QEMU or the kernel cache is
// missing):
//
//	go test -tags qemu -count=1 -v ./internal/card/qemutest/
//
// GLINT_QEMU_KEEP=DIR keeps the serial log and the initramfs there.
package qemutest
