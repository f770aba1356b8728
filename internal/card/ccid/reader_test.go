package ccid

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/glint-boot/glint/internal/card"
	"github.com/glint-boot/glint/internal/card/cardsim"
)

// fakeReader is a CCID reader in software in front of the simulator. It
// exists to produce what QEMU's usb-ccid never sends: time extensions, a
// stale answer to an earlier sequence number, responses chained over several
// messages. The end-to-end path through a real (QEMU) reader is
// internal/card/qemutest.
type fakeReader struct {
	sim        *cardsim.Card
	level      Level
	timeExt    int // time extensions before each data block
	stale      bool
	chainLimit int // split responses longer than this (extended level)
	queue      [][]byte
	outs       [][]byte
	pending    []byte // rest of a chained response
}

func (f *fakeReader) Out(msg []byte) error {
	f.outs = append(f.outs, append([]byte(nil), msg...))
	seq := msg[6]
	reply := func(status byte, chain byte, data []byte) []byte {
		b := make([]byte, 10+len(data))
		b[0] = msgDataBlock
		binary.LittleEndian.PutUint32(b[1:], uint32(len(data)))
		b[6], b[7], b[9] = seq, status, chain
		copy(b[10:], data)
		return b
	}
	switch msg[0] {
	case msgIccPowerOn:
		f.queue = append(f.queue, reply(0, 0, f.sim.ATR()))
	case msgIccPowerOff:
		f.queue = append(f.queue, reply(0, 0, nil))
	case msgXfrBlock:
		if f.stale {
			f.queue = append(f.queue, reply(0, 0, []byte{0x6F, 0}), nil)
			f.queue[len(f.queue)-2][6] = seq - 1
			f.queue = f.queue[:len(f.queue)-1]
		}
		for i := 0; i < f.timeExt; i++ {
			f.queue = append(f.queue, reply(cmdStatusTimeExt<<6, 0, nil))
		}
		var resp []byte
		if msg[8] == 0x10 && len(msg) == 10 { // "give me the rest"
			resp, f.pending = f.pending, nil
		} else {
			resp = f.sim.Process(msg[10:])
		}
		if f.chainLimit > 0 && len(resp) > f.chainLimit {
			first := f.pending == nil && msg[8] != 0x10
			f.pending = resp[f.chainLimit:]
			chain := byte(0x03)
			if first {
				chain = 0x01
			}
			f.queue = append(f.queue, reply(0, chain, resp[:f.chainLimit]))
		} else {
			chain := byte(0)
			if msg[8] == 0x10 {
				chain = 0x02
			}
			f.queue = append(f.queue, reply(0, chain, resp))
		}
	}
	return nil
}

func (f *fakeReader) In(p []byte, timeout time.Duration) (int, error) {
	if len(f.queue) == 0 {
		return 0, ErrTimeout
	}
	m := f.queue[0]
	n := copy(p, m)
	if n < len(m) {
		f.queue[0] = m[n:]
	} else {
		f.queue = f.queue[1:]
	}
	return n, nil
}

func (f *fakeReader) MaxPacket() int { return 64 }
func (f *fakeReader) Close() error   { return nil }

func openFake(t *testing.T, f *fakeReader) *card.Card {
	t.Helper()
	d := Descriptor{Protocols: 3, MaxMessage: 65546, Level: f.level}
	if f.level == LevelTPDU {
		d.Protocols = 1
		d.MaxMessage = 271
	}
	r, err := NewReader(f, d)
	if err != nil {
		t.Fatal(err)
	}
	c, err := card.Open(r)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestReaderLevels(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    *fakeReader
	}{
		{"extended", &fakeReader{level: LevelExtendedAPDU}},
		{"extended-time-extension", &fakeReader{level: LevelExtendedAPDU, timeExt: 3}},
		{"extended-stale-answer", &fakeReader{level: LevelExtendedAPDU, stale: true}},
		{"extended-chained-response", &fakeReader{level: LevelExtendedAPDU, chainLimit: 100}},
		{"short", &fakeReader{level: LevelShortAPDU}},
		{"tpdu-t0", &fakeReader{level: LevelTPDU}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim, err := cardsim.New(cardsim.Options{NoExtendedLength: tc.f.level != LevelExtendedAPDU, ATR: cardsim.ATRT0()})
			if err != nil {
				t.Fatal(err)
			}
			tc.f.sim = sim
			c := openFake(t, tc.f)
			_, pub, err := c.GenerateOwnerKey(card.GenerateOptions{Algorithm: card.RSA3072, UserID: "a <a@b.c>", AdminPIN: card.DefaultPW3, Prompt: card.FixedPIN(card.DefaultPW1)})
			if err != nil {
				t.Fatal(err)
			}
			if len(pub) == 0 {
				t.Fatal("no key")
			}
			for _, m := range tc.f.outs {
				if tc.f.level != LevelExtendedAPDU && len(m) > 10+5+255+1 {
					t.Fatalf("a %d-byte message on a %s reader", len(m), tc.f.level)
				}
				// T=0: a case-4 TPDU never carries Le.
				if tc.f.level == LevelTPDU && m[0] == msgXfrBlock && len(m) > 15 && len(m) == 10+6+int(m[14]) {
					t.Fatalf("T=0 TPDU with Le: % X", m[10:])
				}
			}
		})
	}
}

func TestT1TPDUReaderRefused(t *testing.T) {
	_, err := NewReader(&fakeReader{}, Descriptor{Protocols: 2, MaxMessage: 271, Level: LevelTPDU})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("T=1")) {
		t.Fatalf("T=1 TPDU reader: %v", err)
	}
}

func TestReaderFailure(t *testing.T) {
	sim, _ := cardsim.New(cardsim.Options{})
	f := &fakeReader{level: LevelExtendedAPDU, sim: sim}
	r, err := NewReader(f, Descriptor{Protocols: 3, MaxMessage: 65546, Level: LevelExtendedAPDU})
	if err != nil {
		t.Fatal(err)
	}
	// The card is pulled: the reader answers "failed, ICC mute, no card".
	f.queue = append(f.queue, []byte{msgDataBlock, 0, 0, 0, 0, 0, r.seq + 1, 0x42, 0xFE, 0})
	f.sim = nil
	_, err = r.call("transfer", msgGetSlotStatus, [3]byte{}, nil)
	var re *ReaderError
	if !errors.As(err, &re) || !re.NoICC {
		t.Fatalf("removed card: %v", err)
	}
	r.Timeout = 10 * time.Millisecond
	r.poll = time.Millisecond
	if _, err := r.call("transfer", msgGetSlotStatus, [3]byte{}, nil); err == nil {
		t.Fatal("no answer was not an error")
	}
}
