package dongle

import "encoding/binary"

// crcPoly is the CRC-32 polynomial of the STM32 CRC unit (RM0008 section 4).
const crcPoly = 0x04C11DB7

// CRC computes the checksum Nitrokey Pro firmware checks on every report:
// the STM32 hardware CRC unit fed bytes 0..59 as 15 little-endian 32-bit
// words (init 0xFFFFFFFF, polynomial 0x04C11DB7, MSB first, no reflection,
// no final XOR). It equals CRC-32/MPEG-2 over each word byte-reversed.
// data shorter than 60 bytes is treated as zero-padded.
func CRC(data []byte) uint32 {
	var block [crcLen]byte
	copy(block[:], data)
	crc := uint32(0xFFFFFFFF)
	for i := 0; i < crcLen; i += 4 {
		crc ^= binary.LittleEndian.Uint32(block[i:])
		for b := 0; b < 32; b++ {
			if crc&0x80000000 != 0 {
				crc = crc<<1 ^ crcPoly
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
