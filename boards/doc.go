// Package boards holds the checks `make boards` runs on the ThinkPad X230 and T430 ROMs it
// builds (scripts/build-board.sh): what can be proved without the hardware, since these boards
// cannot boot in QEMU. The tests (build tag boards) read out/boards/*.rom:
//
//   - CBFS layout: the files coreboot 4.15 should have put there and nothing else (no VGA
//     option ROM, no MRC, no ME), the microcode blob byte for byte from Debian's
//     intel-microcode, the payload being glint's kernel and initramfs, the COREBOOT area ending
//     at the top of the 12 MiB flash and filling the layout's BIOS region, 0xff outside it;
//
//   - the PCR 2 value coreboot will measure (internal/rom's predictor, the one the emulated
//     laptop's real boots confirm), written to out/boards/<rom>.pcr2;
//
//   - the flash path with flashrom's dummy programmer: internal flashing of the BIOS region with
//     the layout file over an owner's 12 MiB flash (everything else untouched), and external
//     flashing of the X230's two chips (8 MiB + 4 MiB) giving the same 12 MiB.
//
//     make boards        # builds the four ROMs, runs these checks, prints the hashes
package boards
