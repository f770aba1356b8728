package eventlog

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/glint-boot/glint/internal/tpm"
)

// ChangeKind says how an event differs between two logs.
type ChangeKind int

const (
	Changed ChangeKind = iota + 1 // same PCR, type and description; other digest
	Added                         // only in the new log
	Removed                       // only in the old log
)

func (k ChangeKind) String() string {
	return [...]string{"", "changed", "added", "removed"}[k]
}

// Change is one difference between two logs.
type Change struct {
	PCR  int
	Kind ChangeKind
	Old  *Event // nil for Added
	New  *Event // nil for Removed
	// Alg is the bank whose digests differ (Changed only).
	Alg tpm.Alg
}

func (c Change) String() string {
	e := c.New
	if e == nil {
		e = c.Old
	}
	what := e.Description
	if what == "" {
		what = e.Type.String()
	}
	s := fmt.Sprintf("PCR %d: %s %s", c.PCR, what, c.Kind)
	if c.Kind == Changed && c.Alg == 0 {
		s += " (the two logs share no PCR bank, so the digests cannot be compared)"
	} else if c.Kind == Changed {
		s += fmt.Sprintf(" (%s %s -> %s)", c.Alg, shortHex(c.Old.Digests[c.Alg]), shortHex(c.New.Digests[c.Alg]))
	}
	return s
}

// Diff lists, per PCR in ascending order, the extended events that differ
// between old and new. Events are matched by PCR, type and description (the
// n-th occurrence of a key in old with the n-th in new), so a rebuilt payload
// shows as "fallback/payload changed" rather than one removal and one
// addition. Digests are compared in every bank both events carry.
func Diff(old, new *Log) []Change {
	type key struct {
		pcr  int
		typ  EventType
		desc string
	}
	index := func(l *Log) (map[key][]*Event, []*Event) {
		m := map[key][]*Event{}
		var order []*Event
		for i := range l.Events {
			e := &l.Events[i]
			if !e.Extended() {
				continue
			}
			k := key{e.PCR, e.Type, e.Description}
			m[k] = append(m[k], e)
			order = append(order, e)
		}
		return m, order
	}
	oldBy, oldOrder := index(old)
	_, newOrder := index(new)
	var out []Change
	used := map[*Event]bool{}
	for _, e := range newOrder {
		k := key{e.PCR, e.Type, e.Description}
		if len(oldBy[k]) == 0 {
			out = append(out, Change{PCR: e.PCR, Kind: Added, New: e})
			continue
		}
		o := oldBy[k][0]
		oldBy[k] = oldBy[k][1:]
		used[o] = true
		if alg, differ := digestsDiffer(o, e); differ {
			out = append(out, Change{PCR: e.PCR, Kind: Changed, Old: o, New: e, Alg: alg})
		}
	}
	for _, o := range oldOrder {
		if !used[o] {
			out = append(out, Change{PCR: o.PCR, Kind: Removed, Old: o})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].PCR != out[j].PCR {
			return out[i].PCR < out[j].PCR
		}
		return eventIndex(out[i]) < eventIndex(out[j])
	})
	return out
}

func eventIndex(c Change) int {
	if c.New != nil {
		return c.New.Index
	}
	return c.Old.Index
}

// digestsDiffer compares the banks both events have, in a fixed order.
func digestsDiffer(a, b *Event) (tpm.Alg, bool) {
	var algs []tpm.Alg
	for alg := range a.Digests {
		if _, ok := b.Digests[alg]; ok {
			algs = append(algs, alg)
		}
	}
	if len(algs) == 0 {
		// Nothing to compare (e.g. SHA-1 records against a SHA-256-only
		// log): saying "unchanged" would be a guess.
		return 0, true
	}
	sort.Slice(algs, func(i, j int) bool { return algs[i] < algs[j] })
	for _, alg := range algs {
		if !bytes.Equal(a.Digests[alg], b.Digests[alg]) {
			return alg, true
		}
	}
	return 0, false
}

// Explain renders changes as lines for people, or "" when there are none.
func Explain(changes []Change) string {
	var lines []string
	for _, c := range changes {
		lines = append(lines, c.String())
	}
	return strings.Join(lines, "\n")
}
