// Package iso9660 reads ISO 9660 images (the .iso files distributions
// publish) as an io/fs.FS, with the long names of the Rock Ridge and Joliet
// extensions, so glint can find and read a kernel, an initrd and the boot
// configuration (isolinux/isolinux.cfg, boot/grub/grub.cfg) inside an ISO on a
// USB stick without mounting it: internal/bootcfg.DiscoverFS runs on it as it
// runs on /boot.
//
// Threat: the image comes from a USB stick anyone may have handled. Until its
// signature is verified (internal/isoverify) every byte is hostile, and even
// afterwards a malicious USB device may answer a second read differently from
// the first. So every length and location in the image is checked against
// what the image holds and against a named cap (Max* below) before anything
// is allocated or read, a malformed structure is a *ParseError saying where,
// nothing panics, and Extents tells a caller exactly which bytes a file is
// made of, so it can keep the bytes it verified instead of reading them again.
//
// Specifications:
//
//   - ECMA-119 4th edition (2019), the ISO 9660 file system: volume
//     descriptors (8.4, 8.5), directory records (9.1), multi-extent files
//     (9.1.6 bit 7, 6.5.1).
//   - Joliet (Microsoft, 1995): a supplementary volume descriptor whose
//     escape sequences are %/@, %/C or %/E, and names in UCS-2 big endian.
//   - IEEE P1281 System Use Sharing Protocol 1.12 (SUSP: SP, CE, ST, ER)
//     and IEEE P1282 Rock Ridge Interchange Protocol 1.12 (RRIP: PX, NM, SL,
//     CL, RE).
//
// Which names: like Linux (fs/isofs), Rock Ridge names when the image has
// them, else Joliet names, else the plain ISO 9660 names with their ";1"
// version removed and folded to lower case (Linux's map=normal). Interleaved
// files and the Rock Ridge sparse files and ISO 9660 extended attribute
// contents are not supported; such a file is an error when opened, not when
// listed. Deep directory relocation (CL/RE) is followed.
//
// Why not a library: github.com/kdomanski/iso9660 (v0.4.0, the maintained
// Go reader) has no Joliet in a release and partial Rock Ridge, and trusts
// the lengths it reads; github.com/diskfs/go-diskfs reads neither extension
// and is large for the payload. This reader is about 1,100 lines with its
// comments.
//
// Example:
//
//	f, _ := os.Open("debian-12.iso")
//	st, _ := f.Stat()
//	iso, err := iso9660.Open(f, st.Size())
//	if err != nil { ... }
//	cfg, _ := fs.ReadFile(iso, "isolinux/isolinux.cfg")
//	ext, _ := iso.Extents("install.amd/vmlinuz") // where its bytes are
package iso9660
