package engine

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/syncd/syncd/internal/state"
)

// Conflict policies.
const (
	PolicyNewest   = "newest"
	PolicyPriority = "priority"
	PolicyManual   = "manual"
)

// side is one live link as the merge sees it.
type side struct {
	cn   *conn
	link state.Link
}

// candidate is one side's competing value of a field.
type candidate struct {
	conn     string
	value    string
	modified time.Time
}

// mergeResult is what merging one entity decides.
type mergeResult struct {
	// fields are the entity's new agreed values.
	fields state.Values
	// conflicts are new conflicts; reopened are open conflicts whose
	// candidates changed.
	conflicts []state.Conflict
	reopened  []state.Conflict
	// updates holds, per connector, the fields whose value on that side
	// differs from the agreed one.
	updates map[string][]string
	// origins says, for each field whose agreed value this merge set,
	// which side's value it took and why.
	origins map[string]state.Origin
}

// setField makes c's value the agreed one of field f, noting how.
func (res *mergeResult) setField(f string, c candidate, how string, runID int64) {
	res.fields[f] = c.value
	if res.origins == nil {
		res.origins = map[string]state.Origin{}
	}
	res.origins[f] = state.Origin{Connector: c.conn, At: c.modified.UTC(), Run: runID, How: how}
}

// newestOf returns the candidate changed last.
func newestOf(cands []candidate) candidate {
	return slices.MaxFunc(cands, func(a, b candidate) int { return a.modified.Compare(b.modified) })
}

// merge merges one entity's links three ways, field by field. For each
// field, a side changed it when its value differs from its link's synced
// value. One change, or several to the same value, wins everywhere;
// several different changes are a conflict settled by the policy. A
// newly linked record's values compete with the agreed ones (a real
// disagreement between CRMs that shared a person before syncd met them);
// a field a link never synced before (the mapping was extended) only fills
// an empty agreed value. When every competing value is such a first
// value, the sides never agreed on anything to disagree with: differing
// values are an initial fill, settled by the policy's choice (newest or
// priority) without a conflict; under policy manual they are parked as a
// conflict like any other. Fields under an open conflict keep their value
// and are not written until the conflict is resolved.
func (e *Engine) merge(entity int64, agreed state.Values, sides []side, open map[string]state.Conflict, runID int64) mergeResult {
	res := mergeResult{fields: maps.Clone(agreed), updates: map[string][]string{}}
	if res.fields == nil {
		res.fields = state.Values{}
	}
	fieldSet := map[string]bool{}
	for f := range agreed {
		fieldSet[f] = true
	}
	for _, s := range sides {
		if s.cn.readable {
			for _, f := range s.cn.compared {
				fieldSet[f] = true
			}
		}
	}
	fields := slices.Sorted(maps.Keys(fieldSet))
	parked := map[string]bool{}
	for _, f := range fields {
		old := agreed[f]
		var changed, fresh, fills []candidate
		for _, s := range sides {
			if !s.cn.readable || !s.cn.mapper.Compared(f) {
				continue
			}
			v := s.link.Fields[f]
			c := candidate{conn: s.cn.name, value: v, modified: s.link.Modified}
			if c.modified.IsZero() {
				c.modified = s.link.Pulled
			}
			switch base, known := s.link.Synced[f]; {
			case s.link.Synced == nil:
				if v != "" && v != old {
					fresh = append(fresh, c)
				}
			case !known:
				if v != "" {
					fills = append(fills, c)
				}
			case v != base:
				changed = append(changed, c)
			}
		}
		cands := changed
		if len(fresh) > 0 {
			cands = append(cands, fresh...)
			if old != "" {
				// The agreed value competes too, held by the sides that
				// still have it.
				for _, s := range sides {
					if s.cn.readable && s.cn.mapper.Compared(f) && s.link.Fields[f] == old && !hasConn(cands, s.cn.name) {
						c := candidate{conn: s.cn.name, value: old, modified: s.link.Modified}
						if c.modified.IsZero() {
							c.modified = s.link.Pulled
						}
						cands = append(cands, c)
					}
				}
			}
		}
		// A first value competes only with an empty agreed one; it is an
		// initial fill when nothing else competes.
		initialFill := false
		if old == "" && len(fills) > 0 {
			initialFill = len(cands) == 0
			cands = append(cands, fills...)
		}
		if oc, isOpen := open[f]; isOpen {
			parked[f] = true
			if len(cands) > 0 {
				// Later changes join the open conflict's candidates.
				nc := maps.Clone(oc.Candidates)
				for _, c := range cands {
					nc[c.conn] = c.value
				}
				if !maps.Equal(nc, oc.Candidates) {
					oc.Candidates = nc
					res.reopened = append(res.reopened, oc)
				}
			}
			continue
		}
		if len(cands) == 0 {
			continue
		}
		if distinct(cands) == 1 {
			how := "changed"
			switch {
			case len(changed) == 0 && len(fresh) == 0:
				how = "first value"
			case len(changed) == 0:
				how = "linked"
			}
			res.setField(f, newestOf(cands), how, runID)
			continue
		}
		if initialFill && e.cfg.Conflicts.Policy != PolicyManual {
			win, _ := e.decide(cands)
			res.setField(f, *win, "fill ("+e.cfg.Conflicts.Policy+")", runID)
			continue
		}
		cf := state.Conflict{EntityID: entity, Field: f, Base: old, Candidates: map[string]string{}, Policy: e.cfg.Conflicts.Policy, RunID: runID}
		for _, c := range cands {
			cf.Candidates[c.conn] = c.value
		}
		win, reason := e.decide(cands)
		cf.Reason = reason
		if win == nil {
			cf.Status = state.ConflictOpen
			parked[f] = true
		} else {
			cf.Status = state.ConflictSettled
			cf.Decision, cf.Winner = win.value, win.conn
			res.setField(f, *win, "conflict ("+e.cfg.Conflicts.Policy+")", runID)
		}
		res.conflicts = append(res.conflicts, cf)
	}
	for _, s := range sides {
		if !s.cn.writable {
			continue
		}
		for _, f := range s.cn.compared {
			if parked[f] {
				continue
			}
			if want, ok := res.fields[f]; ok && s.link.Fields[f] != want {
				res.updates[s.cn.name] = append(res.updates[s.cn.name], f)
			}
		}
	}
	return res
}

func hasConn(cands []candidate, name string) bool {
	for _, c := range cands {
		if c.conn == name {
			return true
		}
	}
	return false
}

func distinct(cands []candidate) int {
	var seen []string
	for _, c := range cands {
		if !slices.Contains(seen, c.value) {
			seen = append(seen, c.value)
		}
	}
	return len(seen)
}

// decide applies the conflict policy; nil means the field is parked for
// an operator (policy manual).
func (e *Engine) decide(cands []candidate) (*candidate, string) {
	byRank := func(a, b candidate) int { return e.rank[a.conn] - e.rank[b.conn] }
	switch e.cfg.Conflicts.Policy {
	case PolicyManual:
		return nil, "policy manual: parked for an operator to resolve"
	case PolicyPriority:
		best := slices.MinFunc(cands, byRank)
		return &best, fmt.Sprintf("policy priority: %s ranks highest among %s", best.conn, connNames(cands))
	}
	best := slices.MinFunc(cands, func(a, b candidate) int {
		if c := b.modified.Compare(a.modified); c != 0 {
			return c
		}
		return byRank(a, b)
	})
	return &best, fmt.Sprintf("policy newest: %s changed last (%s)", best.conn, best.modified.UTC().Format(time.RFC3339))
}

func connNames(cands []candidate) string {
	var names []string
	for _, c := range cands {
		names = append(names, c.conn)
	}
	return fmt.Sprint(names)
}
