// Package isoverify decides whether an ISO image on a USB stick is what a
// distribution (or the machine's owner) published, before glint boots a
// kernel from it.
//
// Threat: an ISO downloaded over a network or copied by anyone who had the
// stick may have been changed: a backdoored installer is the easiest way to
// own the system about to be installed. Distributions sign their images;
// glint checks those signatures with keys it keeps in the firmware image (a
// built-in set, keys/README.md, or the owner's own set), never with keys
// found next to the image.
//
// What is understood (the files distributions publish beside their images):
//
//	<iso>.sig / .asc / .gpg       detached signature over the image: Tails,
//	                              Arch Linux (binary), Qubes OS (.asc)
//	SHA256SUMS + .sign/.gpg/.asc  checksum file with a detached signature:
//	SHA512SUMS + ...              Debian (.sign), Ubuntu (.gpg), Linux Mint
//	*-CHECKSUM                    clearsigned BSD-style checksums: Fedora
//	<iso>.DIGESTS                 clearsigned MD5/SHA-1/SHA-256/SHA-512: Qubes
//
// Checksum files are parsed with caps (ParseChecksums, fuzzed); MD5 and
// SHA-1 lines are read but never accepted as evidence. The image is read
// once, whatever the number of signatures and algorithms, and the ranges the
// caller will boot (kernel, initrd) are kept as they are hashed, so what
// boots is what was verified even if the device answers a second read
// differently. Any trusted statement that contradicts the image makes it
// tampered (ErrTampered), naming the image and the statement.
//
// Signatures are judged at their creation time (a flat RTC battery must not
// lock the owner out, and a release key that expired after signing still
// vouches for its old images); a key revoked as compromised never counts.
//
// Example:
//
//	kr := isoverify.NewKeyring(ownerKeys, distroKeys)
//	res, err := isoverify.Verify(isoverify.Image{Name: "tails.iso", R: f, Size: n},
//		os.DirFS("/media/usb"), kr, isoverify.Options{Keep: ranges})
//	if errors.Is(err, isoverify.ErrTampered) { ... refuse, show err ... }
//	fmt.Println("signed by", res.Signer())
package isoverify
