package flash

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// A power-cut model built from flashrom's own SPI traffic.
//
// flashrom's dummy programmer keeps the emulated chip in memory and writes
// its image file only when flashrom exits cleanly (dummyflasher.c,
// dummy_shutdown), so killing flashrom mid-write leaves the file as it was:
// a kill would test nothing. Instead the real write is recorded: with -VVV
// the dummy programmer prints every SPI command it receives
// ("dummy_spi_send_command: writing N bytes: 0x.. ..."), in the order the
// real flashrom sent them for this chip (W25Q128FV) and this pair of
// images. parseSPITrace keeps the commands that change the chip (sector
// and block erases, page programs); cutAfter replays the first k of them,
// plus part of the next, onto the old image. That is the state a NOR flash
// is in when the power goes at that moment: erasing sets a sector's bits to
// 1, programming can only clear bits, and an interrupted command has done
// part of its work (modelled as a prefix of the sector or page).

// spiOp is one chip-changing SPI command.
type spiOp struct {
	erase bool
	addr  int64
	size  int64  // erase: sector/block size; program: len(data)
	data  []byte // program only
}

func (o spiOp) String() string {
	if o.erase {
		return fmt.Sprintf("erase 0x%06x+0x%x", o.addr, o.size)
	}
	return fmt.Sprintf("program 0x%06x+0x%x", o.addr, o.size)
}

// JEDEC SPI NOR opcodes (W25Q128FV datasheet, 8.1: instruction set table).
const (
	opPageProgram = 0x02
	opSectorErase = 0x20 // 4 KiB
	opBlockErase1 = 0x52 // 32 KiB
	opBlockErase2 = 0xd8 // 64 KiB
	opChipErase1  = 0x60
	opChipErase2  = 0xc7
	pageSize      = 256
)

// Caps for the trace parser: a 16 MiB chip write is some 70,000 commands;
// the longest line is a 64 KiB read printed as " 0xNN" per byte.
const (
	maxTraceOps  = 1 << 20
	maxTraceLine = 1 << 20
)

var errTrace = errors.New("SPI trace")

var sendPrefix = []byte("dummy_spi_send_command: writing ")

// parseSPITrace reads flashrom -VVV output (untrusted text) and returns the
// chip-changing commands, for a chip of chipSize bytes.
func parseSPITrace(r io.Reader, chipSize int64) ([]spiOp, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var ops []spiOp
	var line []byte
	for n := 1; ; n++ {
		line = line[:0]
		for {
			frag, err := br.ReadSlice('\n')
			if len(line)+len(frag) > maxTraceLine {
				return nil, fmt.Errorf("%w: line %d longer than %d bytes", errTrace, n, maxTraceLine)
			}
			line = append(line, frag...)
			if err == nil {
				break
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if errors.Is(err, io.EOF) {
				if len(line) == 0 {
					return ops, nil
				}
				break
			}
			return nil, err
		}
		op, ok, err := parseSendLine(line, chipSize)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", errTrace, n, err)
		}
		if ok {
			if len(ops) >= maxTraceOps {
				return nil, fmt.Errorf("%w: more than %d commands", errTrace, maxTraceOps)
			}
			ops = append(ops, op)
		}
	}
}

// parseSendLine parses one "writing N bytes: 0x.. 0x.. reading M bytes: ..."
// line. Progress characters of other messages may precede it on the line.
func parseSendLine(line []byte, chipSize int64) (spiOp, bool, error) {
	i := bytes.Index(line, sendPrefix)
	if i < 0 {
		return spiOp{}, false, nil
	}
	rest := line[i+len(sendPrefix):]
	sp := bytes.IndexByte(rest, ' ')
	if sp < 0 {
		return spiOp{}, false, errors.New("no byte count")
	}
	n, err := strconv.Atoi(string(rest[:sp]))
	if err != nil || n < 1 || n > 4+pageSize {
		return spiOp{}, false, fmt.Errorf("write count %q", rest[:sp])
	}
	rest = rest[sp:]
	if !bytes.HasPrefix(rest, []byte(" bytes:")) {
		return spiOp{}, false, errors.New(`no "bytes:"`)
	}
	rest = rest[len(" bytes:"):]
	cmd := make([]byte, n)
	for k := 0; k < n; k++ {
		if len(rest) < 5 || rest[0] != ' ' || rest[1] != '0' || rest[2] != 'x' {
			return spiOp{}, false, fmt.Errorf("byte %d of %d missing", k, n)
		}
		v, err := strconv.ParseUint(string(rest[3:5]), 16, 8)
		if err != nil {
			return spiOp{}, false, fmt.Errorf("byte %d: %v", k, err)
		}
		cmd[k] = byte(v)
		rest = rest[5:]
	}
	addr := func() (int64, error) {
		if len(cmd) < 4 {
			return 0, errors.New("address missing")
		}
		a := int64(cmd[1])<<16 | int64(cmd[2])<<8 | int64(cmd[3])
		if a >= chipSize {
			return 0, fmt.Errorf("address 0x%x past the %d-byte chip", a, chipSize)
		}
		return a, nil
	}
	var op spiOp
	switch cmd[0] {
	case opPageProgram:
		a, err := addr()
		if err != nil {
			return spiOp{}, false, err
		}
		op = spiOp{addr: a, data: cmd[4:], size: int64(len(cmd) - 4)}
		if a+op.size > chipSize {
			return spiOp{}, false, errors.New("program past the chip")
		}
	case opSectorErase, opBlockErase1, opBlockErase2:
		a, err := addr()
		if err != nil {
			return spiOp{}, false, err
		}
		size := map[byte]int64{opSectorErase: 4 << 10, opBlockErase1: 32 << 10, opBlockErase2: 64 << 10}[cmd[0]]
		if a%size != 0 || a+size > chipSize {
			return spiOp{}, false, fmt.Errorf("erase at 0x%x not aligned to 0x%x", a, size)
		}
		op = spiOp{erase: true, addr: a, size: size}
	case opChipErase1, opChipErase2:
		op = spiOp{erase: true, addr: 0, size: chipSize}
	default:
		return spiOp{}, false, nil
	}
	return op, true, nil
}

// cutAfter returns the chip after the first k ops completed and the next
// one did fraction (0..1) of its work, starting from old.
func cutAfter(old []byte, ops []spiOp, k int, fraction float64) []byte {
	chip := bytes.Clone(old)
	apply := func(o spiOp, part float64) {
		n := int64(float64(o.size) * part)
		if o.erase {
			for i := o.addr; i < o.addr+n; i++ {
				chip[i] = 0xff
			}
			return
		}
		for i := int64(0); i < n; i++ {
			chip[o.addr+i] &= o.data[i]
		}
	}
	for _, o := range ops[:k] {
		apply(o, 1)
	}
	if k < len(ops) && fraction > 0 {
		apply(ops[k], fraction)
	}
	return chip
}
