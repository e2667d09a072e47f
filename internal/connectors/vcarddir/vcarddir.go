// Package vcarddir is a connector over a folder of .vcf files, one contact
// each, named by the card's UID: the layout of vdirsyncer's "filesystem"
// storage (fileext = ".vcf"), also read by khard and other vdir tools.
//
// Record.ID is the file name without ".vcf" (the UID for files this
// connector or vdirsyncer wrote). Fields follow the scheme of
// internal/connectors/vcardmap.
//
// Change detection: a pull with a cursor lists the folder and reads only
// files whose modification or status-change time (ctime, which no tool can
// set back and which a rename updates) is at or after the cursor, less a
// short lookback (options.lookback) for coarse file-system clocks. Files
// this connector wrote after a pull are named in that pull's cursor by
// AdvanceCursor, so that the next pull, even in a new process, passes
// over them while unchanged. A full pull reads every file; nothing is
// cached between pulls (memory stays flat with the folder's size).
// Deletions are found by ListIDs (a file that disappeared). Unchanged
// records that come back are dropped by the engine by content hash.
//
// Writes are atomic and batched: Create and Update write a complete
// temporary file in the same folder; Flush (called by the engine after
// each batch of writes, and before any read) makes the batch's data
// durable at once, then renames each file into place (link for a create,
// so that an existing file is never replaced), then fsyncs the folder.
// See Flush for why this is as safe as an fsync per file. An update
// rewrites only the properties it changes and keeps all others byte for
// byte.
package vcarddir

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/connectors/emulator"
	"github.com/syncd/syncd/internal/connectors/vcardmap"
)

// Ext is the file extension of a contact.
const Ext = ".vcf"

// DefaultLookback is how far before the cursor an incremental pull looks:
// file times come from a coarse kernel clock (one tick, at most 10 ms,
// behind the real time), and a file written while the folder was being
// listed must not be missed. Network file systems stamp files with the
// server's clock: raise options.lookback above the clocks' difference.
const DefaultLookback = 100 * time.Millisecond

// stampTick bounds the file-system clock's tick: a file whose stamp is
// older than this when the folder is listed gets a new stamp from any
// later write.
const stampTick = 20 * time.Millisecond

// DefaultPageSize is the number of records per page.
const DefaultPageSize = 500

// Options of a vcarddir connector.
type Options struct {
	// Path is the folder of .vcf files, relative to the config's folder.
	// It must exist: a mistyped path must not look like an empty address
	// book.
	Path string `toml:"path"`
	// Version of the cards Create writes: "3.0" (default) or "4.0".
	// Updates keep a card's own version.
	Version string `toml:"version"`
	// Lookback is how far before the last pull's start the next pull
	// re-reads changed files (default "100ms"; e.g. "5s" on NFS).
	Lookback string `toml:"lookback"`
}

func (o *Options) lookback() (time.Duration, error) {
	if o.Lookback == "" {
		return DefaultLookback, nil
	}
	d, err := time.ParseDuration(o.Lookback)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("lookback: not a duration like \"100ms\" or \"5s\" (got %q)", o.Lookback)
	}
	return d, nil
}

// Validate checks the options.
func (o *Options) Validate() []error {
	var errs []error
	if strings.TrimSpace(o.Path) == "" {
		errs = append(errs, fmt.Errorf("path: missing: the folder of .vcf files"))
	}
	if o.Version != "3.0" && o.Version != "4.0" {
		errs = append(errs, fmt.Errorf("version: must be 3.0 or 4.0 (got %q)", o.Version))
	}
	if _, err := o.lookback(); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// Type is the registry entry.
var Type = connectors.Type{
	Name:        "vcarddir",
	Description: "folder of .vcf files, one contact each (vdirsyncer filesystem layout)",
	NewOptions:  func() any { return &Options{Version: "3.0"} },
	New: func(s connectors.Settings) (connectors.Connector, error) {
		return New(s)
	},
}

// Connector is a vcarddir connector.
type Connector struct {
	dir      string
	version  string
	pageSize int
	pacer    *connectors.Pacer
	log      *slog.Logger

	// Hooks injects faults for tests (methods list, get, create, update,
	// delete, ids), as if the folder were remote: 401/403 act like a
	// permission error, 429/503 like a rate limit, other 5xx like an I/O
	// error.
	Hooks emulator.Hooks

	// lookback is Lookback; tests shorten it.
	lookback time.Duration
	// reads counts files read, for tests of change detection.
	reads atomic.Int64

	mu sync.Mutex
	// staged writes wait for Flush; removed: files deleted since the last
	// Flush (the folder needs an fsync); carried: failures of an early
	// flush, for the next Flush to report.
	staged      []staged
	stagedNames map[string]bool
	removed     []string
	carried     map[string]error
	// written: files put in place since the last pull began, for
	// AdvanceCursor.
	written map[string]stamp
	// listed is how many files the last pull's listing found, while no
	// write or deletion has happened since (listedOK), for one Count.
	listed   int
	listedOK bool
}

// stamp identifies a file version without reading it.
type stamp struct {
	size         int64
	mtime, ctime int64 // unix nanoseconds
	ino          uint64
}

// key is the stamp as text, for cursors.
func (s stamp) key() string {
	b := strconv.AppendInt(nil, s.size, 36)
	b = append(b, '.')
	b = strconv.AppendInt(b, s.mtime, 36)
	b = append(b, '.')
	b = strconv.AppendInt(b, s.ctime, 36)
	b = append(b, '.')
	b = strconv.AppendUint(b, s.ino, 36)
	return string(b)
}

// changedAt is the later of the two times.
func (s stamp) changedAt() int64 { return max(s.mtime, s.ctime) }

// New returns a connector for s (Options: *Options).
func New(s connectors.Settings) (*Connector, error) {
	opts, _ := s.Options.(*Options)
	if opts == nil {
		opts = &Options{Version: "3.0"}
	}
	if errs := opts.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("vcarddir: %w", errors.Join(errs...))
	}
	dir := opts.Path
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(s.ConfigDir, dir)
	}
	c := &Connector{
		dir:      filepath.Clean(dir),
		version:  opts.Version,
		pageSize: s.PageSize,
		pacer:    s.Pacer,
		log:      s.Logger,

		stagedNames: map[string]bool{},
		written:     map[string]stamp{},
		lookback:    DefaultLookback,
	}
	if c.pageSize <= 0 {
		c.pageSize = DefaultPageSize
	}
	c.lookback, _ = opts.lookback() // validated above
	if c.pacer == nil {
		c.pacer = connectors.NewPacer(connectors.PacerConfig{Name: s.Name})
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Dir returns the folder.
func (c *Connector) Dir() string { return c.dir }

// cursor is the JSON form of a pull position.
type cursor struct {
	// Since: only files changed at or after this instant (unix ns; 0: all).
	Since int64 `json:"since,omitempty"`
	// Start of the interrupted pull, and the last file name it delivered.
	Start int64  `json:"start,omitempty"`
	After string `json:"after,omitempty"`
	// Own: files whose contents the engine has although they changed
	// after Since, by name, with their stamps (stamp.key): those this
	// connector wrote after the pull that made the cursor (put there by
	// AdvanceCursor, with the stamp right after the write), and those
	// the pull itself delivered or passed over that changed within the
	// lookback before it started (a no-op pull right after files were
	// written does not read them again). Such a file is passed over while
	// its stamp is unchanged.
	Own map[string]string `json:"own,omitempty"`
}

// entry is one listed file.
type entry struct {
	name  string // without Ext
	stamp stamp
}

// Pull returns the contacts changed since the cursor (all on a full pull),
// in file-name order.
func (c *Connector) Pull(ctx context.Context, opts connectors.PullOptions, fn connectors.PageFunc) error {
	var cur cursor
	if opts.Cursor != "" && !opts.Full {
		if err := json.Unmarshal([]byte(opts.Cursor), &cur); err != nil {
			return fmt.Errorf("vcarddir: pull: bad cursor %q: %w", opts.Cursor, err)
		}
	}
	c.flushBeforeRead("pull")
	// Writes from here on are after the cursor this pull ends with.
	c.mu.Lock()
	clear(c.written)
	c.mu.Unlock()
	start := cur.Start
	if start == 0 {
		start = time.Now().UnixNano()
	}
	var entries []entry
	err := c.pacer.Call(ctx, "list", connectors.Read, func(ctx context.Context) error {
		if err := c.fault("list"); err != nil {
			return err
		}
		var err error
		entries, err = c.list(true)
		return err
	})
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.listed, c.listedOK = len(entries), true
	c.mu.Unlock()
	// recent holds the stamps of the files that the next pull will list
	// again (changed within the lookback before this pull's start) and
	// whose contents the engine has: delivered by this pull, or passed
	// over as unchanged. A file changed within stampTick of the listing
	// is left out: a second write in the same clock tick could keep its
	// stamp, so it is read again.
	recentSince := start - int64(c.lookback)
	recentBefore := start - int64(stampTick)
	recent := map[string]string{}
	isRecent := func(e entry) bool {
		t := e.stamp.changedAt()
		return t >= recentSince && t < recentBefore
	}
	if cur.Since > 0 {
		kept := entries[:0]
		for _, e := range entries {
			if e.stamp.changedAt() < cur.Since {
				continue
			}
			if own, ok := cur.Own[e.name]; ok && own == e.stamp.key() {
				if isRecent(e) {
					recent[e.name] = own
				}
				continue
			}
			kept = append(kept, e)
		}
		entries = kept
	}
	// Sorted after filtering: a quiet folder sorts only what changed.
	sortEntries(entries)
	if cur.After != "" {
		i, _ := slices.BinarySearchFunc(entries, cur.After, func(e entry, name string) int { return strings.Compare(e.name, name) })
		for i < len(entries) && entries[i].name <= cur.After {
			i++
		}
		entries = entries[i:]
	}
	total := len(entries)
	if cur.After != "" {
		total = -1
	}
	for {
		n := min(len(entries), c.pageSize)
		batch := entries[:n]
		entries = entries[n:]
		page := connectors.Page{Total: total, Done: len(entries) == 0, Records: make([]connectors.Record, 0, n)}
		for _, e := range batch {
			fields, err := c.readFields(e.name)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue // deleted while listing: ListIDs reports it
				}
				if errors.Is(err, vcardmap.ErrMalformed) {
					c.log.Warn("vcarddir: skipping a malformed card", "file", e.name+Ext, "err", err)
					continue
				}
				return fmt.Errorf("vcarddir: pull: %w", err)
			}
			page.Records = append(page.Records, connectors.Record{ID: e.name, Fields: fields, Modified: time.Unix(0, e.stamp.mtime).UTC()})
			if isRecent(e) {
				recent[e.name] = e.stamp.key()
			}
		}
		next := cursor{Since: cur.Since, Start: start}
		if n > 0 {
			next.After = batch[n-1].name
		}
		if page.Done {
			next = cursor{Since: recentSince}
			if len(recent) > 0 {
				next.Own = recent
			}
		}
		b, _ := json.Marshal(next)
		page.Cursor = string(b)
		if err := fn(ctx, page); err != nil {
			return err
		}
		if page.Done {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// list returns the folder's .vcf files in the folder's own order, with
// stamps when withStamps (see walkDir). Callers that page or resume by
// name sort what they keep.
func (c *Connector) list(withStamps bool) ([]entry, error) {
	var out []entry
	err := walkDir(c.dir, withStamps, func(name string, st stamp) {
		out = append(out, entry{name: strings.TrimSuffix(name, Ext), stamp: st})
	})
	if err != nil {
		return nil, c.fsError("list", err)
	}
	return out, nil
}

// wanted reports whether a folder entry's name is a contact file's: a
// .vcf name that is not hidden (temporary files are).
func wanted(name []byte) bool {
	return bytes.HasSuffix(name, []byte(Ext)) && name[0] != '.'
}

// sortEntries sorts listed files by name, the order pages and cursors use.
func sortEntries(es []entry) {
	slices.SortFunc(es, func(a, b entry) int { return strings.Compare(a.name, b.name) })
}

// readFields reads the fields of one file.
func (c *Connector) readFields(name string) (map[string]string, error) {
	card, _, _, err := c.read(name)
	if err != nil {
		return nil, err
	}
	return card.Fields(), nil
}

// read reads and parses one file, with its stamp and permissions as of
// the read.
func (c *Connector) read(name string) (*vcardmap.Card, stamp, fs.FileMode, error) {
	c.reads.Add(1)
	data, st, perm, err := readFile(c.path(name), vcardmap.MaxCardBytes)
	if err != nil {
		return nil, stamp{}, 0, err
	}
	if st.size > vcardmap.MaxCardBytes {
		return nil, stamp{}, 0, fmt.Errorf("%s: %w: larger than %d bytes", name+Ext, vcardmap.ErrMalformed, vcardmap.MaxCardBytes)
	}
	card, err := vcardmap.Parse(data)
	if err != nil {
		return nil, stamp{}, 0, fmt.Errorf("%s: %w", name+Ext, err)
	}
	return card, st, perm, nil
}

func (c *Connector) path(name string) string { return filepath.Join(c.dir, name+Ext) }

// checkID refuses ids that are not a plain file name.
func checkID(method, id string) error {
	if id == "" || id == "." || id == ".." || strings.HasPrefix(id, ".") || strings.ContainsAny(id, "/\\\x00") {
		return fmt.Errorf("vcarddir: %s %q: not a contact file name: %w", method, id, connectors.ErrNotFound)
	}
	return nil
}

// Get reads one contact.
func (c *Connector) Get(ctx context.Context, id string) (connectors.Record, error) {
	if err := checkID("get", id); err != nil {
		return connectors.Record{}, err
	}
	c.flushBeforeRead("get")
	var rec connectors.Record
	err := c.pacer.Call(ctx, "get", connectors.Read, func(ctx context.Context) error {
		if err := c.fault("get"); err != nil {
			return err
		}
		card, st, _, err := c.read(id)
		if err != nil {
			if errors.Is(err, vcardmap.ErrMalformed) {
				return fmt.Errorf("vcarddir: get %s: %w", id, err)
			}
			return c.fsError("get "+id, err)
		}
		rec = connectors.Record{ID: id, Fields: card.Fields(), Modified: time.Unix(0, st.mtime).UTC()}
		return nil
	})
	return rec, err
}

// ErrChangedConcurrently: the file changed between reading and replacing
// it. Nothing was written; it wraps ErrTemporary so the engine tries again
// after the next pull.
var ErrChangedConcurrently = errors.New("contact changed concurrently")

// Create writes a new card named by a fresh UID and returns the UID.
func (c *Connector) Create(ctx context.Context, fields map[string]string) (string, error) {
	uid := vcardmap.NewUID()
	card := vcardmap.New(uid, c.version)
	if err := card.Apply(fields); err != nil {
		return "", fmt.Errorf("vcarddir: create: %w: %w", connectors.ErrRejected, err)
	}
	if card.Get("N") == nil {
		card.Add("N", ";;;;")
	}
	card.EnsureFN()
	data := card.Encode()
	err := c.pacer.Call(ctx, "create", connectors.Create, func(ctx context.Context) error {
		if err := c.fault("create"); err != nil {
			return err
		}
		tmp, err := c.writeTemp(uid, data, 0o600)
		if err != nil {
			return c.fsError("create", err)
		}
		c.stage(staged{name: uid, tmp: tmp})
		return nil
	})
	if err != nil {
		return "", err
	}
	return uid, nil
}

// Update rewrites the given fields of a card and keeps everything else.
func (c *Connector) Update(ctx context.Context, id string, fields map[string]string) error {
	if err := checkID("update", id); err != nil {
		return err
	}
	if c.isStaged(id) {
		if err := c.flushEarly()[id]; err != nil {
			return fmt.Errorf("vcarddir: update %s: %w", id, err)
		}
	}
	return c.pacer.Call(ctx, "update", connectors.Write, func(ctx context.Context) error {
		if err := c.fault("update"); err != nil {
			return err
		}
		// The stamp of what was read: Flush checks it again right before
		// the rename, which is where a concurrent change is caught.
		card, before, perm, err := c.read(id)
		if err != nil {
			if errors.Is(err, vcardmap.ErrMalformed) {
				return fmt.Errorf("vcarddir: update %s: %w: %w", id, connectors.ErrRejected, err)
			}
			return c.fsError("update "+id, err)
		}
		if err := card.Apply(fields); err != nil {
			return fmt.Errorf("vcarddir: update %s: %w: %w", id, connectors.ErrRejected, err)
		}
		card.EnsureFN()
		tmp, err := c.writeTemp(id, card.Encode(), perm)
		if err != nil {
			return c.fsError("update "+id, err)
		}
		c.stage(staged{name: id, tmp: tmp, replace: true, before: before})
		return nil
	})
}

// Delete removes a card's file.
func (c *Connector) Delete(ctx context.Context, id string) error {
	if err := checkID("delete", id); err != nil {
		return err
	}
	if c.isStaged(id) {
		if err := c.flushEarly()[id]; err != nil {
			return fmt.Errorf("vcarddir: delete %s: %w", id, err)
		}
	}
	return c.pacer.Call(ctx, "delete", connectors.Write, func(ctx context.Context) error {
		if err := c.fault("delete"); err != nil {
			return err
		}
		if err := os.Remove(c.path(id)); err != nil {
			return c.fsError("delete "+id, err)
		}
		c.mu.Lock()
		c.listedOK = false
		delete(c.written, id)
		c.removed = append(c.removed, id)
		c.mu.Unlock()
		return nil
	})
}

// ListIDs lists every contact file name, without reading any file.
func (c *Connector) ListIDs(ctx context.Context, fn func(ctx context.Context, ids []string) error) error {
	c.flushBeforeRead("ids")
	var entries []entry
	err := c.pacer.Call(ctx, "ids", connectors.Read, func(ctx context.Context) error {
		if err := c.fault("ids"); err != nil {
			return err
		}
		var err error
		entries, err = c.list(false)
		return err
	})
	if err != nil {
		return err
	}
	sortEntries(entries)
	for len(entries) > 0 {
		n := min(len(entries), 1000)
		ids := make([]string, n)
		for i, e := range entries[:n] {
			ids[i] = e.name
		}
		if err := fn(ctx, ids); err != nil {
			return err
		}
		entries = entries[n:]
	}
	return nil
}

// Count returns the number of contact files, as ListIDs would list them,
// from the folder listing alone (no file is read or stat-ed). After an
// incremental pull the engine compares it with the records it holds and
// lists the ids only when the two differ. Right after a pull, with no
// write in between, the count is that pull's listing: the records the
// pull saw, which is what the engine compares. A malformed file counts
// but is never stored, so a folder holding one is listed every time
// (slower, never wrong).
func (c *Connector) Count(ctx context.Context) (int, error) {
	c.mu.Lock()
	n, ok := c.listed, c.listedOK
	c.listedOK = false
	c.mu.Unlock()
	if ok {
		return n, nil
	}
	c.flushBeforeRead("count")
	err := c.pacer.Call(ctx, "count", connectors.Read, func(ctx context.Context) error {
		if err := c.fault("count"); err != nil {
			return err
		}
		entries, err := c.list(false)
		n = len(entries)
		return err
	})
	return n, err
}

// writeTemp writes data to a new hidden file next to name's (vdir tools
// read only *.vcf files) and returns its path. The data is not flushed to
// disk yet: Flush does that for a whole batch before putting the files
// in place.
func (c *Connector) writeTemp(name string, data []byte, mode fs.FileMode) (string, error) {
	tmp, err := os.CreateTemp(c.dir, "."+name+".tmp-*")
	if err != nil {
		return "", err
	}
	tmpName := tmp.Name()
	_, err = tmp.Write(data)
	if err == nil && mode != 0o600 { // CreateTemp made it 0600
		err = tmp.Chmod(mode)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmpName)
		return "", err
	}
	return tmpName, nil
}

// staged is a write waiting for Flush: a complete temporary file to be
// put in place of (update) or next to (create) the contact's file.
type staged struct {
	name    string
	tmp     string
	replace bool
	before  stamp // the file's stamp when an update read it
}

func (c *Connector) stage(st staged) {
	c.mu.Lock()
	c.listedOK = false
	c.staged = append(c.staged, st)
	c.stagedNames[st.name] = true
	c.mu.Unlock()
}

func (c *Connector) isStaged(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stagedNames[name]
}

// Flush puts the staged writes in place durably, in three steps: one
// flush of the temporary files' data (syncfs on Linux, an fsync per file
// elsewhere), then a link (create: never replaces a file) or a rename
// (update) of each, then one fsync of the folder. So a contact's file is
// never replaced by, or named after, data that is not on disk, and every
// write Flush reports as done survives a power cut: the engine records a
// write only after Flush returned. After a crash before Flush, nothing
// changed in the folder but hidden temporary files; the engine sends the
// updates again, and creates, marked uncertain, again once a pull has
// shown they are not there. Two fsyncs per batch instead of two per file
// make a first sync of 10,000 contacts seconds instead of minutes.
//
// An update whose file was changed by someone else since Update read it
// is dropped and reported in a *connectors.FlushError (wrapping
// ErrChangedConcurrently and ErrTemporary), as is a create whose name
// was taken meanwhile (ErrRejected).
func (c *Connector) Flush(ctx context.Context) error {
	failed := c.flush()
	c.mu.Lock()
	for name, err := range c.carried {
		if _, ok := failed[name]; !ok {
			failed[name] = err
		}
	}
	c.carried = nil
	c.mu.Unlock()
	if len(failed) > 0 {
		return &connectors.FlushError{Failed: failed}
	}
	return nil
}

// flushEarly flushes before the batch is over (an Update or Delete of a
// contact still staged, or a read). The failures are kept for the next
// Flush, which is where the engine learns a write's fate, and returned.
func (c *Connector) flushEarly() map[string]error {
	failed := c.flush()
	if len(failed) > 0 {
		c.mu.Lock()
		if c.carried == nil {
			c.carried = map[string]error{}
		}
		for name, err := range failed {
			c.carried[name] = err
		}
		c.mu.Unlock()
	}
	return failed
}

// flush does Flush's work and returns the failed writes by name (all of
// them when the data or the folder could not be made durable).
func (c *Connector) flush() map[string]error {
	c.mu.Lock()
	batch, removed := c.staged, c.removed
	c.staged, c.removed = nil, nil
	clear(c.stagedNames)
	c.mu.Unlock()
	failed := map[string]error{}
	if len(batch) == 0 && len(removed) == 0 {
		return failed
	}
	failAll := func(err error) map[string]error {
		err = fmt.Errorf("vcarddir: flush: %w: %v", connectors.ErrTemporary, err)
		for _, st := range batch {
			failed[st.name] = err
		}
		for _, name := range removed {
			failed[name] = err
		}
		return failed
	}
	if len(batch) > 0 {
		if err := syncFiles(c.dir, batch); err != nil {
			for _, st := range batch {
				os.Remove(st.tmp)
			}
			return failAll(err)
		}
	}
	for _, st := range batch {
		if err := c.place(st); err != nil {
			os.Remove(st.tmp)
			failed[st.name] = err
		}
	}
	if err := syncDir(c.dir); err != nil {
		return failAll(err)
	}
	return failed
}

// place links or renames one staged file into place and notes its stamp
// for AdvanceCursor.
func (c *Connector) place(st staged) error {
	final := c.path(st.name)
	if st.replace {
		info, err := os.Stat(final)
		if err != nil {
			return c.fsError("update "+st.name, err)
		}
		if stampOf(info) != st.before {
			return fmt.Errorf("vcarddir: update %s: %w: %w", st.name, ErrChangedConcurrently, connectors.ErrTemporary)
		}
		if err := os.Rename(st.tmp, final); err != nil {
			return c.fsError("update "+st.name, err)
		}
	} else if ok, err := renameNoReplace(st.tmp, final); ok {
		if err != nil {
			return c.fsError("create "+st.name, err)
		}
	} else {
		err := os.Link(st.tmp, final)
		if err != nil && !errors.Is(err, fs.ErrExist) {
			// File systems without hard links: check, then rename.
			if _, serr := os.Lstat(final); serr == nil {
				err = fs.ErrExist
			} else {
				err = os.Rename(st.tmp, final)
			}
		}
		if err != nil {
			return c.fsError("create "+st.name, err)
		}
		os.Remove(st.tmp) // a no-op after a rename
	}
	if info, err := os.Stat(final); err == nil {
		c.mu.Lock()
		c.written[st.name] = stampOf(info)
		c.mu.Unlock()
	}
	return nil
}

// AdvanceCursor adds to the cursor of a finished pull the files this
// connector wrote since that pull began, with their stamps, so that the
// next pull passes over them while they are unchanged (the engine calls
// it once it has recorded those writes). Without it the next pull would
// read back every file of a first sync. A resumed pull drops the list and
// reads them: slower, never wrong.
//
// A stamp is size, mtime, ctime (nanoseconds) and inode number: any later
// write changes ctime, and a replacement by rename changes the inode. An
// in-place rewrite to the same size within one tick of the kernel's
// coarse clock after this connector's own write would keep the stamp; it
// is read on the next full pull.
func (c *Connector) AdvanceCursor(s string) (string, error) {
	var cur cursor
	if err := json.Unmarshal([]byte(s), &cur); err != nil {
		return "", fmt.Errorf("vcarddir: advance cursor: bad cursor %q: %w", s, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur.Start != 0 || cur.After != "" || cur.Since == 0 || len(c.written) == 0 {
		return s, nil
	}
	if cur.Own == nil {
		cur.Own = make(map[string]string, len(c.written))
	}
	for name, st := range c.written {
		cur.Own[name] = st.key()
	}
	clear(c.written)
	b, err := json.Marshal(cur)
	if err != nil {
		return "", fmt.Errorf("vcarddir: advance cursor: %w", err)
	}
	return string(b), nil
}

// flushBeforeRead puts writes staged by a caller that did not flush
// them in place before the folder is read, so that reads see them.
func (c *Connector) flushBeforeRead(method string) {
	if failed := c.flushEarly(); len(failed) > 0 {
		c.log.Warn("vcarddir: staged writes failed", "method", method, "err", &connectors.FlushError{Failed: failed})
	}
}

// Close flushes staged writes.
func (c *Connector) Close() error { return c.Flush(context.Background()) }

// syncDir makes a rename durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, errSyncUnsupported) {
		return err
	}
	return nil
}

// fsError classifies a file-system error: a missing contact is
// ErrNotFound, a missing folder a plain (permanent) error, no permission
// ErrAuth (permanent), anything else ErrTemporary.
func (c *Connector) fsError(method string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if _, serr := os.Stat(c.dir); serr != nil {
			return fmt.Errorf("vcarddir: %s: folder %s does not exist (create it, or fix options.path)", method, c.dir)
		}
		return fmt.Errorf("vcarddir: %s: %w", method, connectors.ErrNotFound)
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("vcarddir: %s: %w: file exists", method, connectors.ErrRejected)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("vcarddir: %s: %w: no permission: %v", method, connectors.ErrAuth, err)
	case errors.Is(err, errNotDir):
		return fmt.Errorf("vcarddir: %s: %s is not a folder", method, c.dir)
	}
	return fmt.Errorf("vcarddir: %s: %w: %v", method, connectors.ErrTemporary, err)
}

// fault turns an injected fault into the error the file system would
// cause.
func (c *Connector) fault(method string) error {
	rec := &faultRecorder{}
	if !c.Hooks.Enter(rec, method) {
		return nil
	}
	err := fmt.Errorf("vcarddir: %s: injected fault %d", method, rec.status)
	switch {
	case rec.status == 429 || rec.status == 503:
		err = fmt.Errorf("%w: %w", connectors.ErrRateLimited, err)
		if d, ok := connectors.ParseRetryAfter(rec.Header().Get("Retry-After"), time.Now()); ok {
			return &connectors.RetryAfterError{After: d, Err: err}
		}
		return err
	case rec.status >= 500:
		return fmt.Errorf("%w: %w", connectors.ErrTemporary, err)
	case rec.status == 401 || rec.status == 403:
		return fmt.Errorf("%w: %w", connectors.ErrAuth, err)
	default:
		return fmt.Errorf("%w: %w", connectors.ErrRejected, err)
	}
}

var _ interface {
	connectors.Connector
	connectors.Writer
	connectors.Flusher
	connectors.Closer
	connectors.CursorAdvancer
	connectors.Deleter
	connectors.IDLister
} = (*Connector)(nil)

// faultRecorder captures an injected fault.
type faultRecorder struct {
	status int
	header http.Header
}

func (f *faultRecorder) Header() http.Header {
	if f.header == nil {
		f.header = http.Header{}
	}
	return f.header
}
func (f *faultRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (f *faultRecorder) WriteHeader(status int)      { f.status = status }
