// Package engine is syncd's sync engine: it pulls every connector's
// records page by page into the state store, links them to entities by
// identity, merges each field three ways against the link's synced
// values, plans writes into the outbox in the same transaction, and
// drains the outbox through the connectors. It speaks canonical fields
// only (see internal/mapping) and holds no state of its own between runs:
// the store does.
//
// The package is named engine because sync is taken by the standard
// library; its import path is internal/sync.
package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"slices"
	"time"

	"github.com/syncd/syncd/internal/config"
	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/mapping"
	"github.com/syncd/syncd/internal/state"
)

// Options configure an Engine.
type Options struct {
	// Config gives policy, deletions, identity and per-connector fields,
	// direction, exclude and create_defaults.
	Config *config.Config
	Store  *state.Store
	// Connectors by config name; they may also implement Writer, IDLister
	// and Deleter.
	Connectors map[string]connectors.Connector
	// Pacers by name, for API call and retry counts in the journal (nil
	// entries are fine).
	Pacers map[string]*connectors.Pacer
	Logger *slog.Logger
	Now    func() time.Time
	// Progress, when set, receives progress for live display.
	Progress func(ProgressEvent)
}

// ProgressEvent reports a connector's progress within a phase.
type ProgressEvent struct {
	Connector string
	// Phase is "pull", "link", "reconcile" or "push".
	Phase   string
	Pages   int
	Records int
	// Total is the number of records the phase will handle, or -1.
	Total int
	// Done is set on a connector's last event of a pull or push.
	Done bool
}

// Engine runs syncs. A Run must not overlap another Run of the same
// Engine (the daemon's scheduler skips overlapping runs) or its
// ResolveConflict (the syncd command resolves conflicts in a process of
// its own, which needs the store's lock): a run relies on being the
// store's only writer.
type Engine struct {
	cfg      *config.Config
	store    *state.Store
	log      *slog.Logger
	now      func() time.Time
	progress func(ProgressEvent)
	conns    []*conn // config order
	byName   map[string]*conn
	// names are the configured connectors' names.
	names  []string
	region mapping.Options
	// rank is each connector's position in the priority order.
	rank map[string]int
	// checkpointEvery is the interval of the run's checkpoints.
	checkpointEvery time.Duration
	// aheadAfter is how many entities reconciliation reads through the
	// writer before it reads ahead (reconcileAheadAfter).
	aheadAfter int
}

// conn is one configured connector with what the engine needs of it.
type conn struct {
	name   string
	c      connectors.Connector
	writer connectors.Writer
	lister connectors.IDLister
	// inFlight is how many writes the drain keeps in flight at once.
	inFlight int
	// counter, when set, spares the id listing while the count agrees.
	counter connectors.Counter
	del     connectors.Deleter
	mapper  *mapping.Mapper
	pacer   *connectors.Pacer
	// compared lists the canonical fields this connector syncs, sorted.
	compared []string
	// readable connectors feed entities; push connectors only receive.
	readable bool
	// writable connectors receive creates and updates; pull connectors
	// are never written.
	writable bool
	// rawKey stands for everything that decides how this connector's
	// CRM values map to canonical values (see mappingKey).
	rawKey []byte
}

// mappingVersion is part of every mapping key: raise it when a change to
// internal/mapping makes the same CRM values map to other canonical
// values, so that every stored record is mapped again.
const mappingVersion = 1

// mappingKey hashes what decides how a connector's CRM values map to its
// compared canonical values: the field mappings, the excluded fields, the
// default phone region, the mapping code (mappingVersion) and the phone
// library's version. A record pulled with the same CRM values under the
// same key maps to the same canonical values.
func mappingKey(fields []mapping.Field, exclude []string, region string) []byte {
	h := sha256.New()
	fmt.Fprintf(h, "syncd mapping %d %s\n", mappingVersion, moduleVersion("github.com/nyaruka/phonenumbers"))
	_ = json.NewEncoder(h).Encode(struct {
		Fields  []mapping.Field
		Exclude []string
		Region  string
	}{fields, exclude, region})
	return h.Sum(nil)
}

// moduleVersion is the version of a module built into the binary ("" when
// the binary carries no module information).
func moduleVersion(path string) string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, d := range info.Deps {
		if d.Path == path {
			if d.Replace != nil {
				return d.Replace.Path + "@" + d.Replace.Version
			}
			return d.Version
		}
	}
	return ""
}

// rawHash hashes a record's CRM values with the connector's mapping key.
func (cn *conn) rawHash(remote map[string]string) string {
	keys := make([]string, 0, len(remote))
	for k := range remote {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := sha256.New()
	h.Write(cn.rawKey)
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write([]byte(remote[k]))
		h.Write([]byte{0})
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}

// New compiles every connector's mapping and returns an engine.
func New(o Options) (*Engine, error) {
	if o.Config == nil || o.Store == nil {
		return nil, errors.New("engine: config and store are required")
	}
	e := &Engine{cfg: o.Config, store: o.Store, log: o.Logger, now: o.Now, progress: o.Progress, byName: map[string]*conn{}, rank: map[string]int{}, checkpointEvery: checkpointEvery, aheadAfter: reconcileAheadAfter}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.now == nil {
		e.now = time.Now
	}
	e.region = mapping.Options{DefaultRegion: o.Config.Identity.DefaultRegion}
	var errs []error
	for i := range o.Config.Connector {
		cc := &o.Config.Connector[i]
		c, ok := o.Connectors[cc.Name]
		if !ok {
			errs = append(errs, fmt.Errorf("engine: connector %s: not built", cc.Name))
			continue
		}
		exclude := append(slices.Clone(cc.Kind.ExcludedFields), cc.Exclude...)
		m, err := mapping.Compile(cc.Fields, exclude, cc.CreateDefaults, e.region)
		if err != nil {
			errs = append(errs, fmt.Errorf("engine: connector %s: mapping: %w", cc.Name, err))
			continue
		}
		dir := connectors.Direction(cc.Direction)
		if dir == "" {
			dir = connectors.Both
		}
		cn := &conn{name: cc.Name, c: c, mapper: m, readable: dir != connectors.Push, rawKey: mappingKey(cc.Fields, exclude, o.Config.Identity.DefaultRegion)}
		cn.writer, _ = c.(connectors.Writer)
		cn.lister, _ = c.(connectors.IDLister)
		cn.counter, _ = c.(connectors.Counter)
		cn.inFlight = cc.MaxInFlight
		if cn.inFlight == 0 {
			cn.inFlight = config.DefaultMaxInFlight
		}
		cn.del, _ = c.(connectors.Deleter)
		cn.writable = dir != connectors.Pull && cn.writer != nil
		if o.Pacers != nil {
			cn.pacer = o.Pacers[cc.Name]
		}
		for _, f := range m.Canonicals() {
			if m.Compared(f) {
				cn.compared = append(cn.compared, f)
			}
		}
		e.conns = append(e.conns, cn)
		e.byName[cn.name] = cn
		e.names = append(e.names, cn.name)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for i, n := range o.Config.Conflicts.Priority {
		if _, dup := e.rank[n]; !dup {
			e.rank[n] = i
		}
	}
	// Connectors missing from the priority list rank after it, in config
	// order, so every tie has one answer.
	for _, cn := range e.conns {
		if _, ok := e.rank[cn.name]; !ok {
			e.rank[cn.name] = len(o.Config.Conflicts.Priority) + len(e.rank)
		}
	}
	return e, nil
}

// RunOptions choose how one run goes.
type RunOptions struct {
	// DryRun pulls, matches and merges, prints the plan to Out, and
	// writes nothing to any CRM and nothing lasting to the store except
	// the run's journal row (status "dry").
	DryRun bool
	// Full ignores cursors and pulls everything; a full pull also counts
	// as a complete listing for deletion detection.
	Full bool
	// Out receives the dry-run plan (nil: discarded).
	Out io.Writer
}

// ConnectorReport is one connector's part of a run.
type ConnectorReport struct {
	Name string
	// Pulled records, of which Changed had a new content hash and
	// Unchanged not; Matched unlinked records were linked to an existing
	// entity by identity.
	Pulled, Changed, Unchanged, Matched int
	// Created, Updated and Deleted count successful writes to this
	// connector (planned writes in a dry run).
	Created, Updated, Deleted int
	// Conflicts this connector took part in; Failed writes to it.
	Conflicts, Failed int
	// DeletionsBlocked is how many linked contacts this connector would
	// have lost when it is one the deletion guard stopped the run's
	// deletions for (0 otherwise).
	DeletionsBlocked int
	// Reads, Writes and Retries are API calls (from the pacer).
	Reads, Writes, Retries int64
	Duration               time.Duration
	// Err is why the connector stopped, nil when it did not.
	Err error
}

// Report is the outcome of a run.
type Report struct {
	RunID      int64
	Connectors []ConnectorReport
	// Conflicts is the number of open conflicts, Failed of failed writes
	// and Parked of parked records, in the store after the run.
	Conflicts, Failed, Parked int
	// DeletionsBlocked says why deletions were held back, naming each
	// connector over a limit ("" if none).
	DeletionsBlocked string
	// Interrupted is set when the run stopped early on cancellation; it
	// resumes on the next run.
	Interrupted bool
	DryRun      bool
	Duration    time.Duration
}

// ExitCode is 0 when all went well, 1 when a connector failed, 3 when the
// run finished but left open conflicts, failed records, parked matches or
// blocked deletions.
func (r *Report) ExitCode() int {
	if r == nil {
		return 1
	}
	for _, c := range r.Connectors {
		if c.Err != nil {
			return 1
		}
	}
	if r.Conflicts > 0 || r.Failed > 0 || r.Parked > 0 || r.DeletionsBlocked != "" {
		return 3
	}
	return 0
}

// ResolveConflict settles a conflict by taking connector take's value, or
// value when not nil; the next run writes it everywhere.
func (e *Engine) ResolveConflict(ctx context.Context, id int64, take string, value *string) error {
	if value != nil {
		if cf, err := e.conflictField(ctx, id); err == nil {
			v := mapping.Normalize(cf, *value, e.region)
			value = &v
		}
	}
	return e.store.ResolveConflict(ctx, id, take, value)
}

func (e *Engine) conflictField(ctx context.Context, id int64) (string, error) {
	var field string
	err := e.store.Update(ctx, func(w *state.WriteTx) error {
		c, found, err := w.GetConflict(id)
		if !found && err == nil {
			err = state.ErrNoConflict
		}
		field = c.Field
		return err
	})
	return field, err
}

func (e *Engine) emit(ev ProgressEvent) {
	if e.progress != nil {
		e.progress(ev)
	}
}
