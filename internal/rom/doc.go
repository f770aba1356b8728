// Package rom reads coreboot firmware images: the flash map (FMAP) and the
// coreboot filesystem (CBFS) inside its regions.
//
// glint needs this to tell the owner what their firmware contains (glint rom
// ls), to extract owner files, and to predict PCR 2: coreboot 4.15 measures
// the FMAP region and the stored bytes of its stages and payload into PCR 2
// (src/security/tpm/tspi/crtm.c), so the value a machine will have after a
// firmware update can be computed from the new image before it is flashed
// (PredictCorebootPCR2).
//
// Formats:
//
//   - FMAP (flashmap, src/commonlib/include/commonlib/... and the flashmap
//     project's fmap.h): "__FMAP__", version 1.x, a list of named areas.
//   - CBFS as written by coreboot 4.15 (src/commonlib/bsd/include/commonlib/
//     bsd/cbfs_serialized.h): a chain of 64-byte-aligned "LARCHIVE" file
//     headers (big-endian), each with a name, a type, attributes (compression,
//     hash, stage header, ...) and data.
//
// Images are untrusted: every offset and length is checked against the image
// and against the caps in errors.go; errors are *ParseError with an offset.
//
// Example:
//
//	img, err := rom.FromFile("coreboot.rom")
//	files, err := img.CBFS("COREBOOT")
//	for _, f := range files { fmt.Println(f.Name, f.Type, len(f.Data)) }
//	pcr2, err := rom.PredictCorebootPCR2(img)
package rom
