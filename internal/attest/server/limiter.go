package server

import (
	"sync"
	"time"
)

// limiter is a set of token buckets, one per key (a client address, a
// device ID). Memory is bounded: past maxKeys, buckets that have refilled
// (which behave exactly like new ones) are dropped, then arbitrary ones.
type limiter struct {
	mu      sync.Mutex
	rate    Rate
	now     func() time.Time
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

const maxKeys = 100_000

func newLimiter(r Rate, now func() time.Time) *limiter {
	return &limiter{rate: r, now: now, buckets: map[string]*bucket{}}
}

// allow takes one token from key's bucket and reports whether there was one.
func (l *limiter) allow(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= maxKeys {
			l.evict(now)
		}
		b = &bucket{tokens: float64(l.rate.Burst), at: now}
		l.buckets[key] = b
	}
	b.refill(l.rate, now)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (b *bucket) refill(r Rate, now time.Time) {
	if d := now.Sub(b.at); d > 0 {
		b.tokens += float64(d) / float64(r.Every)
		if b.tokens > float64(r.Burst) {
			b.tokens = float64(r.Burst)
		}
		b.at = now
	}
}

func (l *limiter) evict(now time.Time) {
	for k, b := range l.buckets {
		b.refill(l.rate, now)
		if b.tokens >= float64(l.rate.Burst) {
			delete(l.buckets, k)
		}
	}
	for k := range l.buckets {
		if len(l.buckets) < maxKeys*3/4 {
			break
		}
		delete(l.buckets, k)
	}
}
