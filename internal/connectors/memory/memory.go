// Package memory is an in-process connector over an emulator.Table. It
// needs no network and no account: the demo, config experiments and engine
// tests use it. It is seeded from a JSON file or inline records in the
// config, and its changes live as long as the process.
package memory

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/connectors/emulator"
)

// Options of a memory connector.
type Options struct {
	// SeedFile is a JSON file holding an array of objects of string
	// fields; relative paths are resolved against the config's folder.
	SeedFile string `toml:"seed_file"`
	// Seed holds inline records.
	Seed []map[string]string `toml:"seed"`
}

// Validate checks the options.
func (o *Options) Validate() []error {
	var errs []error
	if o.SeedFile != "" && filepath.IsAbs(o.SeedFile) {
		if _, err := os.Stat(o.SeedFile); err != nil {
			errs = append(errs, fmt.Errorf("seed_file: cannot read (got %q)", o.SeedFile))
		}
	}
	return errs
}

// Type is the registry entry.
var Type = connectors.Type{
	Name:        "memory",
	Description: "in-process contact table, seeded from JSON (no network)",
	NewOptions:  func() any { return &Options{} },
	New: func(s connectors.Settings) (connectors.Connector, error) {
		opts, _ := s.Options.(*Options)
		if opts == nil {
			opts = &Options{}
		}
		seed := opts.Seed
		if opts.SeedFile != "" {
			path := opts.SeedFile
			if !filepath.IsAbs(path) {
				path = filepath.Join(s.ConfigDir, path)
			}
			recs, err := LoadSeed(path)
			if err != nil {
				return nil, err
			}
			seed = append(seed, recs...)
		}
		c := New(nil, s.PageSize)
		c.Pacer = s.Pacer
		for _, f := range seed {
			c.Table.Insert(f)
		}
		return c, nil
	},
}

// LoadSeed reads a JSON array of objects with string values.
func LoadSeed(path string) ([]map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("memory: seed file: %w", err)
	}
	var recs []map[string]string
	if err := json.Unmarshal(b, &recs); err != nil {
		return nil, fmt.Errorf("memory: seed file %s: %w", path, err)
	}
	return recs, nil
}

// Connector is a memory connector. Table is exported so tests and the demo
// can edit contacts "as a user".
type Connector struct {
	Table    *emulator.Table
	PageSize int
	// Hooks lets tests inject failures: any fault makes the call fail
	// with ErrTemporary (5xx), ErrRateLimited (429), ErrAuth (401/403) or
	// ErrRejected (other 4xx), as a remote CRM would.
	Hooks emulator.Hooks
	// Pacer, when set, carries every call like a remote connector's, so
	// injected faults are retried the same way.
	Pacer *connectors.Pacer
}

// New returns a connector over table (a new one when nil).
func New(table *emulator.Table, pageSize int) *Connector {
	if table == nil {
		table = emulator.NewTable(nil)
	}
	if pageSize <= 0 {
		pageSize = 100
	}
	return &Connector{Table: table, PageSize: pageSize}
}

// cursor is the JSON form of the pull position.
type cursor struct {
	Since  time.Time `json:"since"`
	Max    time.Time `json:"max"`
	LastID int64     `json:"last_id"`
}

// Pull returns contacts modified after the cursor's time, by ascending id.
func (c *Connector) Pull(ctx context.Context, opts connectors.PullOptions, fn connectors.PageFunc) error {
	var cur cursor
	if opts.Cursor != "" && !opts.Full {
		if err := json.Unmarshal([]byte(opts.Cursor), &cur); err != nil {
			return fmt.Errorf("memory: bad cursor: %w", err)
		}
	}
	if opts.Full {
		cur = cursor{}
	}
	for {
		if err := c.fault(ctx, "list"); err != nil {
			return err
		}
		rows, more := c.Table.ListAfter(cur.LastID, max(c.PageSize, 1), func(r *emulator.Contact) bool {
			return cur.Since.IsZero() || r.Modified.After(cur.Since)
		})
		done := !more
		page := connectors.Page{Total: -1, Done: done}
		for _, r := range rows {
			page.Records = append(page.Records, record(r))
			cur.LastID = r.ID
			if r.Modified.After(cur.Max) {
				cur.Max = r.Modified
			}
		}
		next := cur
		if done {
			// The next pull starts from the newest change seen.
			next = cursor{Since: cur.Max, Max: cur.Max}
		}
		b, _ := json.Marshal(next)
		page.Cursor = string(b)
		if err := fn(ctx, page); err != nil {
			return err
		}
		if done {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

func record(r emulator.Contact) connectors.Record {
	return connectors.Record{ID: strconv.FormatInt(r.ID, 10), Fields: r.Fields, Modified: r.Modified}
}

// Get returns one contact.
func (c *Connector) Get(ctx context.Context, id string) (connectors.Record, error) {
	if err := c.fault(ctx, "get"); err != nil {
		return connectors.Record{}, err
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return connectors.Record{}, fmt.Errorf("memory: get %q: %w", id, connectors.ErrNotFound)
	}
	r, ok := c.Table.Get(n)
	if !ok {
		return connectors.Record{}, fmt.Errorf("memory: get %s: %w", id, connectors.ErrNotFound)
	}
	return record(r), nil
}

// Create inserts a contact.
func (c *Connector) Create(ctx context.Context, fields map[string]string) (string, error) {
	if err := c.fault(ctx, "create"); err != nil {
		return "", err
	}
	return strconv.FormatInt(c.Table.Insert(fields), 10), nil
}

// Update changes fields of a contact.
func (c *Connector) Update(ctx context.Context, id string, fields map[string]string) error {
	if err := c.fault(ctx, "update"); err != nil {
		return err
	}
	n, _ := strconv.ParseInt(id, 10, 64)
	if !c.Table.Update(n, fields) {
		return fmt.Errorf("memory: update %s: %w", id, connectors.ErrNotFound)
	}
	return nil
}

// Delete deletes a contact.
func (c *Connector) Delete(ctx context.Context, id string) error {
	if err := c.fault(ctx, "delete"); err != nil {
		return err
	}
	n, _ := strconv.ParseInt(id, 10, 64)
	if !c.Table.Delete(n) {
		return fmt.Errorf("memory: delete %s: %w", id, connectors.ErrNotFound)
	}
	return nil
}

// ListIDs lists every live id.
func (c *Connector) ListIDs(ctx context.Context, fn func(ctx context.Context, ids []string) error) error {
	if err := c.fault(ctx, "ids"); err != nil {
		return err
	}
	all := c.Table.IDs()
	for len(all) > 0 {
		n := min(len(all), c.PageSize*10)
		batch := make([]string, n)
		for i, id := range all[:n] {
			batch[i] = strconv.FormatInt(id, 10)
		}
		if err := fn(ctx, batch); err != nil {
			return err
		}
		all = all[n:]
	}
	return nil
}

// Count returns the number of live contacts.
func (c *Connector) Count(ctx context.Context) (int, error) {
	if err := c.fault(ctx, "count"); err != nil {
		return 0, err
	}
	return c.Table.Len(), nil
}

// fault turns an injected fault into the error a remote CRM would cause,
// through the pacer when there is one.
func (c *Connector) fault(ctx context.Context, method string) error {
	if c.Pacer == nil {
		return c.Hooks.Fail("memory", method)
	}
	kind := connectors.Read
	switch method {
	case "create":
		kind = connectors.Create
	case "update", "delete":
		kind = connectors.Write
	}
	return c.Pacer.Call(ctx, method, kind, func(context.Context) error { return c.Hooks.Fail("memory", method) })
}

var _ interface {
	connectors.Connector
	connectors.Writer
	connectors.Deleter
	connectors.IDLister
	connectors.Counter
} = (*Connector)(nil)
