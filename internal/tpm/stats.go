package tpm

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// Stats counts the commands sent to a TPM and the time spent waiting for
// it. TPM commands are slow on real hardware (20-80 ms each on a TIS TPM
// under emulation), so the boot flow reports both: what glint costs itself
// and what it costs in the TPM.
type Stats struct {
	mu       sync.Mutex
	commands int
	wait     time.Duration
}

// Snapshot returns the number of commands and the total TPM time so far.
func (s *Stats) Snapshot() (commands int, wait time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commands, s.wait
}

type countingTransport struct {
	Transport
	stats *Stats
}

func (c *countingTransport) Send(cmd []byte) ([]byte, error) {
	start := time.Now()
	rsp, err := c.Transport.Send(cmd)
	c.stats.mu.Lock()
	c.stats.commands++
	c.stats.wait += time.Since(start)
	c.stats.mu.Unlock()
	return rsp, err
}

// OpenWithStats is Open with every command counted and timed.
func OpenWithStats(spec string) (TPM, *Stats, error) {
	t, err := openTransport(spec)
	if err != nil {
		return nil, nil, err
	}
	st := &Stats{}
	dev, err := OpenTransport(&retryTransport{Transport: &countingTransport{Transport: t, stats: st}})
	if err != nil {
		t.Close()
		if errors.Is(err, ErrNoTPM) {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("open TPM %s: %w", spec, err)
	}
	return dev, st, nil
}
