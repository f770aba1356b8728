package eventlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The coreboot tables (src/commonlib/include/commonlib/coreboot_tables.h) are
// how a coreboot payload or OS finds what firmware left in memory. coreboot
// writes a small table in low memory (0..4 KiB, or 0xf0000..1 MiB) whose
// LB_TAG_FORWARD record points to the full table in cbmem. Each record is
// {u32 tag; u32 size; ...}. util/cbmem finds the measurement log this way;
// so does ReadCorebootLog.
const (
	lbTagForward     = 0x0011
	lbTagCBMEMEntry  = 0x0031
	lbTagTCPALog     = 0x0036 // coreboot 4.15 LB_TAG_TCPA_LOG; later LB_TAG_TPM_CB_LOG
	lbHeaderSize     = 24
	lbMaxTableBytes  = 1 << 20 // a real table is a few KiB
	lbMaxForwardHops = 4

	// CBMEM ids (src/commonlib/include/commonlib/cbmem_id.h).
	CBMEMIDTCPALog    = 0x54435041 // "TCPA": coreboot's own format (4.15), later CBMEM_ID_TPM_CB_LOG
	CBMEMIDTCPATCGLog = 0x54445041 // "TDPA": TCG SHA-1 format (TPM 1.2)
	CBMEMIDTPM2TCGLog = 0x54504d32 // "TPM2": TCG crypto-agile format
)

// CBMEMEntry is one LB_TAG_CBMEM_ENTRY record: a region of cbmem.
type CBMEMEntry struct {
	ID      uint32
	Address uint64
	Size    uint32
}

// CorebootTables is what glint reads from the coreboot tables.
type CorebootTables struct {
	// Address of the table (after following forward records).
	Address uint64
	Entries []CBMEMEntry
	// TCPALog is LB_TAG_TCPA_LOG's address, 0 if absent.
	TCPALog uint64
}

// FindCorebootTables searches low memory for a valid coreboot table header
// (signature "LBIO", header and table IP checksums right), follows forward
// records, and returns the cbmem entries. mem is the physical address space
// (/dev/mem, or a memory dump where file offset = physical address).
func FindCorebootTables(mem io.ReaderAt) (*CorebootTables, error) {
	// A header that looked right but did not check out says more than a
	// short read of the second search area, so it wins.
	var tableErr, readErr error
	for _, area := range [][2]int64{{0, 0x1000}, {0xf0000, 0x10000}} {
		buf := make([]byte, area[1])
		n, err := mem.ReadAt(buf, area[0])
		if n < lbHeaderSize {
			if err != nil && readErr == nil {
				readErr = err
			}
			continue
		}
		buf = buf[:n]
		for off := 0; off+lbHeaderSize <= len(buf); off += 16 {
			if !bytes.Equal(buf[off:off+4], []byte("LBIO")) {
				continue
			}
			t, err := readTableAt(mem, uint64(area[0])+uint64(off), 0)
			if err != nil {
				if tableErr == nil {
					tableErr = err
				}
				continue
			}
			return t, nil
		}
	}
	if tableErr != nil {
		return nil, fmt.Errorf("%w: a coreboot table header was found but is damaged: %w", ErrNotFound, tableErr)
	}
	if readErr != nil && !errors.Is(readErr, io.EOF) {
		return nil, fmt.Errorf("%w: reading low memory: %w", ErrNotFound, readErr)
	}
	return nil, fmt.Errorf("%w: no coreboot table (\"LBIO\") in low memory; is this a coreboot machine?", ErrNotFound)
}

func readTableAt(mem io.ReaderAt, addr uint64, hops int) (*CorebootTables, error) {
	if hops > lbMaxForwardHops {
		return nil, errorf(int64(addr), "lb_forward", ErrFormat, "more than %d forward records", lbMaxForwardHops)
	}
	hdr := make([]byte, lbHeaderSize)
	if err := readFull(mem, hdr, addr, "lb_header"); err != nil {
		return nil, err
	}
	if !bytes.Equal(hdr[:4], []byte("LBIO")) {
		return nil, errorf(int64(addr), "lb_header.signature", ErrFormat, "want LBIO, got %q", hdr[:4])
	}
	headerBytes := binary.LittleEndian.Uint32(hdr[4:])
	tableBytes := binary.LittleEndian.Uint32(hdr[12:])
	tableSum := binary.LittleEndian.Uint32(hdr[16:])
	// coreboot computes header_checksum over the header with that field
	// zero, so the checksum of the whole header comes out zero.
	if headerBytes < lbHeaderSize || ipChecksum(hdr) != 0 {
		return nil, errorf(int64(addr), "lb_header.header_checksum", ErrFormat, "bad header")
	}
	if tableBytes > lbMaxTableBytes {
		return nil, errorf(int64(addr)+12, "lb_header.table_bytes", ErrTooLarge, "%d bytes, limit %d", tableBytes, lbMaxTableBytes)
	}
	tableAddr := addr + uint64(headerBytes)
	table := make([]byte, tableBytes)
	if err := readFull(mem, table, tableAddr, "lb_table"); err != nil {
		return nil, err
	}
	if uint32(ipChecksum(table)) != tableSum {
		return nil, errorf(int64(tableAddr), "lb_header.table_checksum", ErrFormat, "the table does not match its checksum")
	}
	t := &CorebootTables{Address: addr}
	r := &reader{b: table, base: int64(tableAddr)}
	for r.remaining() >= 8 {
		start := r.off
		tag, _ := r.u32("lb_record.tag")
		size, _ := r.u32("lb_record.size")
		if size < 8 || uint64(size) > uint64(len(table)-start) {
			return nil, errorf(int64(tableAddr)+int64(start), "lb_record.size", ErrFormat, "record of %d bytes with %d left", size, len(table)-start)
		}
		body := table[start+8 : start+int(size)]
		r.off = start + int(size)
		switch tag {
		case lbTagForward:
			if len(body) < 8 {
				return nil, errorf(int64(tableAddr)+int64(start), "lb_forward", ErrTruncated, "")
			}
			// The low table is a stub; the real one is where this points.
			return readTableAt(mem, binary.LittleEndian.Uint64(body), hops+1)
		case lbTagCBMEMEntry:
			if len(body) < 16 {
				return nil, errorf(int64(tableAddr)+int64(start), "lb_cbmem_entry", ErrTruncated, "")
			}
			t.Entries = append(t.Entries, CBMEMEntry{
				Address: binary.LittleEndian.Uint64(body),
				Size:    binary.LittleEndian.Uint32(body[8:]),
				ID:      binary.LittleEndian.Uint32(body[12:]),
			})
		case lbTagTCPALog:
			// struct lb_cbmem_ref; util/cbmem notes old 32-bit firmware wrote
			// a 4-byte address here.
			switch {
			case len(body) >= 8:
				t.TCPALog = binary.LittleEndian.Uint64(body)
			case len(body) >= 4:
				t.TCPALog = uint64(binary.LittleEndian.Uint32(body))
			}
		}
	}
	return t, nil
}

// ipChecksum is the 16-bit one's-complement sum coreboot uses for its tables
// (RFC 1071; coreboot commonlib compute_ip_checksum).
func ipChecksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.LittleEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1])
	}
	for sum > 0xffff {
		sum = (sum >> 16) + (sum & 0xffff)
	}
	return ^uint16(sum)
}

func readFull(mem io.ReaderAt, buf []byte, addr uint64, field string) error {
	if addr > 1<<52 {
		return errorf(int64(addr>>1), field, ErrFormat, "address 0x%x is beyond physical memory", addr)
	}
	n, err := mem.ReadAt(buf, int64(addr))
	if n == len(buf) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = ErrTruncated
	}
	return errorf(int64(addr), field, err, "read %d of %d bytes at 0x%x", n, len(buf), addr)
}

// ReadCorebootLog finds and parses coreboot's measurement log through the
// coreboot tables in mem, preferring a TCG-format log (CBMEM_ID_TPM2_TCG_LOG,
// CBMEM_ID_TCPA_TCG_LOG; newer coreboot) that holds events, then coreboot's
// own TCPA log (LB_TAG_TCPA_LOG or CBMEM_ID_TCPA_LOG; coreboot 4.15).
// coreboot 4.15 also leaves an all-zero TCG log area for the ACPI TPM2 table,
// which is skipped as empty.
func ReadCorebootLog(mem io.ReaderAt) (*Log, error) {
	t, err := FindCorebootTables(mem)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, id := range []uint32{CBMEMIDTPM2TCGLog, CBMEMIDTCPATCGLog} {
		for _, e := range t.Entries {
			if e.ID != id {
				continue
			}
			raw, err := readEntry(mem, e.Address, uint64(e.Size))
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if isAllZero(raw) {
				continue
			}
			l, err := ParseTCG(raw)
			if err != nil {
				errs = append(errs, fmt.Errorf("cbmem %s log at 0x%x: %w", idName(id), e.Address, err))
				continue
			}
			l.Source = fmt.Sprintf("cbmem %s log at 0x%x", idName(id), e.Address)
			return l, nil
		}
	}
	addr := t.TCPALog
	if addr == 0 {
		for _, e := range t.Entries {
			if e.ID == CBMEMIDTCPALog {
				addr = e.Address
			}
		}
	}
	if addr != 0 {
		hdr := make([]byte, tcpaHeaderSize)
		if err := readFull(mem, hdr, addr, "tcpa_table"); err != nil {
			return nil, err
		}
		max := uint64(binary.LittleEndian.Uint16(hdr))
		raw, err := readEntry(mem, addr, tcpaHeaderSize+max*tcpaEntrySize)
		if err != nil {
			return nil, err
		}
		l, err := ParseTCPA(raw)
		if err != nil {
			return nil, fmt.Errorf("cbmem TCPA log at 0x%x: %w", addr, err)
		}
		l.Source = fmt.Sprintf("cbmem TCPA log at 0x%x", addr)
		return l, nil
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return nil, fmt.Errorf("%w: the coreboot tables at 0x%x list no TPM log; was coreboot built with CONFIG_TPM_MEASURED_BOOT?", ErrNotFound, t.Address)
}

func readEntry(mem io.ReaderAt, addr, size uint64) ([]byte, error) {
	if size > MaxLogSize {
		return nil, errorf(int64(addr), "cbmem entry size", ErrTooLarge, "%d bytes, limit %d", size, MaxLogSize)
	}
	buf := make([]byte, size)
	if err := readFull(mem, buf, addr, "cbmem entry"); err != nil {
		return nil, err
	}
	return buf, nil
}

func isAllZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func idName(id uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], id)
	return string(b[:])
}
