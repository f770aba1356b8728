package server

import (
	"context"
	"sync"
	"time"

	"github.com/glint-boot/glint/internal/attest"
	"github.com/glint-boot/glint/internal/attest/store"
)

// goldenCache keeps each model's golden sets for a few seconds: every
// report needs them, they change only when an administrator acts, and a
// replica that missed the change catches up within the TTL.
type goldenCache struct {
	mu      sync.Mutex
	ttl     time.Duration
	byModel map[string]goldenEntry
}

type goldenEntry struct {
	at      time.Time
	goldens []attest.Golden
}

func (c *goldenCache) get(ctx context.Context, s *store.Store, model string) ([]attest.Golden, error) {
	c.mu.Lock()
	e, ok := c.byModel[model]
	c.mu.Unlock()
	if ok && time.Since(e.at) < c.ttl {
		return e.goldens, nil
	}
	gs, err := s.Goldens(ctx, model)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.byModel == nil || len(c.byModel) > 10_000 {
		c.byModel = map[string]goldenEntry{}
	}
	c.byModel[model] = goldenEntry{at: time.Now(), goldens: gs}
	c.mu.Unlock()
	return gs, nil
}

// invalidate drops the cache after an administrator changed golden sets.
func (c *goldenCache) invalidate() {
	c.mu.Lock()
	c.byModel = nil
	c.mu.Unlock()
}
