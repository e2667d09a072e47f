// Package carddav is a connector for a CardDAV address book (RFC 6352):
// Nextcloud, Radicale, Baïkal, iCloud, Fastmail and other servers.
//
// Record.ID is the address object's resource name inside the address book
// (the last path segment of its href, unescaped, e.g. "<uid>.vcf"): it is
// what GET, PUT and DELETE need, and it never changes, while a UID may be
// missing or duplicated. Fields follow the scheme of
// internal/connectors/vcardmap, shared with the vcarddir connector.
//
// Discovery: base_url may be the address book itself; otherwise the
// connector follows current-user-principal and addressbook-home-set and
// takes the first address book by path, unless options.addressbook names
// one.
//
// Pull: where the server supports sync-collection (RFC 6578), the cursor
// holds the sync token and a pull asks only for what changed (deletions
// come as Deleted records); a server that refuses the token gets a full
// listing again. Otherwise a PROPFIND lists hrefs with ETags. Changed
// objects are read with addressbook-multiget, one request per page. An
// in-process cache of name -> (ETag, fields) means unchanged objects are
// never fetched again while the process runs. An interrupted pull resumes
// from its starting token (repeating is safe: the engine drops unchanged
// records by content hash).
//
// Writes: Create PUTs "<uid>.vcf" with If-None-Match: *; Update reads the
// object, changes only the given properties (all others kept byte for
// byte) and PUTs it with If-Match: <etag>; Delete sends If-Match too. A
// 412 means someone else changed the contact: nothing is overwritten, and
// the error wraps ErrChangedConcurrently and ErrTemporary so that the
// engine tries again after its next pull.
//
// The WebDAV requests are built here rather than with go-webdav's client,
// which cannot send conditional PUTs and hides the statuses this
// connector has to classify.
package carddav

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/connectors/vcardmap"
	"github.com/syncd/syncd/internal/redact"
)

// DefaultPageSize is the number of objects per addressbook-multiget.
const DefaultPageSize = 100

// Options of a carddav connector.
type Options struct {
	// Addressbook is the address book's path or URL, resolved against
	// base_url (optional: discovered when empty).
	Addressbook string `toml:"addressbook"`
	// Version of the cards Create writes: "3.0" (default) or "4.0".
	Version string `toml:"version"`
}

// Validate checks the options.
func (o *Options) Validate() []error {
	var errs []error
	if o.Version != "3.0" && o.Version != "4.0" {
		errs = append(errs, fmt.Errorf("version: must be 3.0 or 4.0 (got %q)", o.Version))
	}
	if o.Addressbook != "" {
		if _, err := url.Parse(o.Addressbook); err != nil {
			errs = append(errs, fmt.Errorf("addressbook: not a path or URL (got %q)", o.Addressbook))
		}
	}
	return errs
}

// Type is the registry entry.
var Type = connectors.Type{
	Name:         "carddav",
	Description:  "CardDAV address book (RFC 6352): Nextcloud, Radicale, Baïkal, iCloud, Fastmail",
	DefaultRate:  10,
	DefaultBurst: 5,
	NeedsBaseURL: true,
	Credentials:  []string{"username", "password"},
	NewOptions:   func() any { return &Options{Version: "3.0"} },
	New: func(s connectors.Settings) (connectors.Connector, error) {
		return New(s)
	},
}

// ErrChangedConcurrently: the contact changed on the server since it was
// read (HTTP 412). Nothing was written; the error also wraps ErrTemporary.
var ErrChangedConcurrently = errors.New("contact changed concurrently on the server")

// Connector is a carddav connector.
type Connector struct {
	base     *url.URL
	username string
	password string
	opts     Options
	pageSize int
	http     *connectors.HTTPClient
	pacer    *connectors.Pacer
	log      *slog.Logger

	mu     sync.Mutex
	book   *url.URL // discovered address book, path ending in "/"
	noSync bool     // the server refused sync-collection
	cache  map[string]cached
}

// cached is what the last read of an object found.
type cached struct {
	etag   string
	fields map[string]string
}

// New returns a connector for s (Options: *Options; credentials username
// and password, sent with HTTP basic authentication).
func New(s connectors.Settings) (*Connector, error) {
	opts, _ := s.Options.(*Options)
	if opts == nil {
		opts = &Options{Version: "3.0"}
	}
	if errs := opts.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("carddav: %w", errors.Join(errs...))
	}
	base, err := url.Parse(s.BaseURL)
	if err != nil || base.Host == "" {
		return nil, fmt.Errorf("carddav: base_url is not a URL")
	}
	if !strings.HasSuffix(base.Path, "/") {
		base.Path += "/"
		base.RawPath = ""
	}
	c := &Connector{
		base:     base,
		username: s.Credentials["username"],
		password: s.Credentials["password"],
		opts:     *opts,
		pageSize: s.PageSize,
		http:     s.HTTP,
		pacer:    s.Pacer,
		log:      s.Logger,
		cache:    map[string]cached{},
	}
	if c.pageSize <= 0 {
		c.pageSize = DefaultPageSize
	}
	if c.http == nil {
		c.http = connectors.NewHTTPClient(0, redact.New())
	}
	if c.http.Redactor == nil {
		c.http.Redactor = redact.New()
	}
	if c.password != "" {
		c.http.Redactor.Add(c.password, base64.StdEncoding.EncodeToString([]byte(c.username+":"+c.password)))
	}
	if c.pacer == nil {
		c.pacer = connectors.NewPacer(connectors.PacerConfig{Name: s.Name})
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// addressBook returns the address book's URL, discovering it once.
func (c *Connector) addressBook(ctx context.Context) (*url.URL, error) {
	c.mu.Lock()
	book := c.book
	c.mu.Unlock()
	if book != nil {
		return book, nil
	}
	book, err := c.discover(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.book = book
	c.mu.Unlock()
	return book, nil
}

func withSlash(u *url.URL) *url.URL {
	v := *u
	if !strings.HasSuffix(v.Path, "/") {
		v.Path += "/"
	}
	v.RawPath = ""
	return &v
}

func (c *Connector) resolve(ref string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(ref))
	if err != nil {
		return nil, fmt.Errorf("%w: bad href %q", connectors.ErrMalformed, ref)
	}
	r := c.base.ResolveReference(u)
	if r.Host != c.base.Host || r.Scheme != c.base.Scheme {
		// Never send the credentials to another host.
		return nil, fmt.Errorf("%w: href %q points to another server", connectors.ErrMalformed, ref)
	}
	return withSlash(r), nil
}

// discover finds the address book: the configured one, base_url itself,
// or the first address book of the user's home set.
func (c *Connector) discover(ctx context.Context) (*url.URL, error) {
	if c.opts.Addressbook != "" {
		return c.resolve(c.opts.Addressbook)
	}
	const props = `<d:resourcetype/><d:current-user-principal/><card:addressbook-home-set/>`
	ms, err := c.propfind(ctx, "discover", c.base, "0", props)
	if err != nil {
		return nil, err
	}
	var home string
	var principal string
	for _, r := range ms.Responses {
		p := r.okProp()
		if p.ResourceType != nil && p.ResourceType.AddressBook != nil {
			return c.base, nil
		}
		if p.HomeSet != nil && p.HomeSet.Href != "" {
			home = p.HomeSet.Href
		}
		if p.CurrentUserPrincipal != nil && p.CurrentUserPrincipal.Href != "" {
			principal = p.CurrentUserPrincipal.Href
		}
	}
	if home == "" && principal != "" {
		pu, err := c.resolve(principal)
		if err != nil {
			return nil, fmt.Errorf("carddav: discover: %w", err)
		}
		ms, err := c.propfind(ctx, "discover", pu, "0", `<card:addressbook-home-set/>`)
		if err != nil {
			return nil, err
		}
		for _, r := range ms.Responses {
			if p := r.okProp(); p.HomeSet != nil && p.HomeSet.Href != "" {
				home = p.HomeSet.Href
			}
		}
	}
	homeURL := c.base
	if home != "" {
		if homeURL, err = c.resolve(home); err != nil {
			return nil, fmt.Errorf("carddav: discover: %w", err)
		}
	}
	ms, err = c.propfind(ctx, "discover", homeURL, "1", `<d:resourcetype/>`)
	if err != nil {
		return nil, err
	}
	var books []string
	for _, r := range ms.Responses {
		if p := r.okProp(); p.ResourceType != nil && p.ResourceType.AddressBook != nil {
			books = append(books, r.Hrefs[0])
		}
	}
	if len(books) == 0 {
		return nil, fmt.Errorf("carddav: discover: no address book under %s; create one or set options.addressbook", c.http.Redactor.URL(homeURL))
	}
	slices.Sort(books)
	book, err := c.resolve(books[0])
	if err != nil {
		return nil, fmt.Errorf("carddav: discover: %w", err)
	}
	c.log.Debug("carddav: address book found", "url", c.http.Redactor.URL(book))
	return book, nil
}

// cursor forms: "sync:<token>" after a sync-collection pull, "etag" after
// a PROPFIND pull.
const (
	syncPrefix = "sync:"
	etagCursor = "etag"
)

// Pull streams the records changed since the cursor (all when opts.Full
// or the cursor is empty).
func (c *Connector) Pull(ctx context.Context, opts connectors.PullOptions, fn connectors.PageFunc) error {
	book, err := c.addressBook(ctx)
	if err != nil {
		return err
	}
	token, incremental := strings.CutPrefix(opts.Cursor, syncPrefix)
	incremental = incremental && !opts.Full
	var (
		changed []member
		deleted []string
		next    string
	)
	c.mu.Lock()
	noSync := c.noSync
	c.mu.Unlock()
	if !noSync {
		if !incremental {
			token = ""
		}
		changed, deleted, token, err = c.syncCollection(ctx, book, token)
		if errors.Is(err, errSyncToken) && incremental {
			c.log.Info("carddav: the server refused the sync token; listing everything")
			incremental = false
			changed, deleted, token, err = c.syncCollection(ctx, book, "")
		}
		if errors.Is(err, errSyncToken) || (err != nil && !incremental && isUnsupported(err)) {
			c.log.Info("carddav: no sync-collection support; comparing ETags", "err", err)
			c.mu.Lock()
			c.noSync = true
			c.mu.Unlock()
			noSync = true
		} else if err != nil {
			return err
		}
		next = syncPrefix + token
	}
	if noSync {
		incremental = opts.Cursor == etagCursor && !opts.Full
		deleted = nil
		if changed, err = c.listMembers(ctx, "list", book); err != nil {
			return err
		}
		next = etagCursor
	}
	return c.emit(ctx, book, changed, deleted, incremental, opts.Cursor, next, fn)
}

// isUnsupported says whether a failed sync report means "not supported"
// rather than a failure worth reporting.
func isUnsupported(err error) bool {
	return !errors.Is(err, connectors.ErrAuth) && !errors.Is(err, connectors.ErrRateLimited) &&
		!errors.Is(err, connectors.ErrTemporary) && !errors.Is(err, connectors.ErrNotSent) &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// emit turns a listing into pages: cached fields for unchanged objects
// (left out of incremental pulls), multiget for the rest, Deleted records
// for deletions.
func (c *Connector) emit(ctx context.Context, book *url.URL, members []member, deleted []string, incremental bool, startCursor, next string, fn connectors.PageFunc) error {
	slices.SortFunc(members, func(a, b member) int { return strings.Compare(a.name, b.name) })
	var fromCache []connectors.Record
	var toFetch []member
	c.mu.Lock()
	for _, m := range members {
		if ce, ok := c.cache[m.name]; ok && m.etag != "" && ce.etag == m.etag {
			if !incremental {
				fromCache = append(fromCache, connectors.Record{ID: m.name, Fields: ce.fields, Modified: m.modified})
			}
			continue
		}
		toFetch = append(toFetch, m)
	}
	for _, name := range deleted {
		delete(c.cache, name)
	}
	c.mu.Unlock()
	total := len(fromCache) + len(toFetch) + len(deleted)
	var pending []connectors.Record
	for _, name := range deleted {
		pending = append(pending, connectors.Record{ID: name, Deleted: true})
	}
	pending = append(pending, fromCache...)
	send := func(recs []connectors.Record, done bool) error {
		cur := startCursor
		if done {
			cur = next
		}
		if err := fn(ctx, connectors.Page{Records: recs, Cursor: cur, Done: done, Total: total}); err != nil {
			return err
		}
		return ctx.Err()
	}
	if total == 0 {
		return send(nil, true)
	}
	for len(pending) > 0 {
		n := min(len(pending), c.pageSize)
		if err := send(pending[:n], n == len(pending) && len(toFetch) == 0); err != nil {
			return err
		}
		pending = pending[n:]
	}
	for len(toFetch) > 0 {
		n := min(len(toFetch), c.pageSize)
		recs, err := c.fetch(ctx, book, toFetch[:n])
		if err != nil {
			return err
		}
		toFetch = toFetch[n:]
		if err := send(recs, len(toFetch) == 0); err != nil {
			return err
		}
	}
	return nil
}

// fetch reads members with one multiget and caches what it read.
func (c *Connector) fetch(ctx context.Context, book *url.URL, members []member) ([]connectors.Record, error) {
	got, err := c.multiget(ctx, book, members)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]member, len(members))
	for _, m := range members {
		byName[m.name] = m
	}
	recs := make([]connectors.Record, 0, len(got))
	for _, f := range got {
		card, err := vcardmap.Parse(f.data)
		if err != nil {
			c.log.Warn("carddav: skipping a malformed card", "name", f.name, "err", err)
			continue
		}
		fields := card.Fields()
		etag := f.etag
		if etag == "" {
			etag = byName[f.name].etag
		}
		modified := f.modified
		if modified.IsZero() {
			modified = byName[f.name].modified
		}
		c.mu.Lock()
		c.cache[f.name] = cached{etag: etag, fields: fields}
		c.mu.Unlock()
		recs = append(recs, connectors.Record{ID: f.name, Fields: fields, Modified: modified})
	}
	return recs, nil
}

// get reads one object with its ETag.
func (c *Connector) get(ctx context.Context, method, id string) (*vcardmap.Card, string, time.Time, error) {
	if id == "" || strings.ContainsAny(id, "/\x00") || id == "." || id == ".." {
		return nil, "", time.Time{}, fmt.Errorf("carddav: %s %q: %w", method, id, connectors.ErrNotFound)
	}
	book, err := c.addressBook(ctx)
	if err != nil {
		return nil, "", time.Time{}, err
	}
	r, err := c.do(ctx, method, connectors.Read, http.MethodGet, memberURL(book, id), http.Header{"Accept": {"text/vcard"}}, nil, http.StatusOK)
	if err != nil {
		return nil, "", time.Time{}, err
	}
	card, err := vcardmap.Parse(r.Body)
	if err != nil {
		return nil, "", time.Time{}, fmt.Errorf("carddav: %s %s: %w: %w", method, id, connectors.ErrMalformed, err)
	}
	return card, r.Header.Get("ETag"), parseHTTPTime(r.Header.Get("Last-Modified")), nil
}

// Get reads one contact.
func (c *Connector) Get(ctx context.Context, id string) (connectors.Record, error) {
	card, _, modified, err := c.get(ctx, "get", id)
	if err != nil {
		return connectors.Record{}, err
	}
	return connectors.Record{ID: id, Fields: card.Fields(), Modified: modified}, nil
}

// Create PUTs a new card named "<uid>.vcf" and returns that name.
func (c *Connector) Create(ctx context.Context, fields map[string]string) (string, error) {
	book, err := c.addressBook(ctx)
	if err != nil {
		return "", err
	}
	uid := vcardmap.NewUID()
	card := vcardmap.New(uid, c.opts.Version)
	if err := card.Apply(fields); err != nil {
		return "", fmt.Errorf("carddav: create: %w: %w", connectors.ErrRejected, err)
	}
	if card.Get("N") == nil {
		card.Add("N", ";;;;")
	}
	card.EnsureFN()
	name := uid + ".vcf"
	h := http.Header{"Content-Type": {"text/vcard; charset=utf-8"}, "If-None-Match": {"*"}}
	r, err := c.do(ctx, "create", connectors.Create, http.MethodPut, memberURL(book, name), h, card.Encode(), http.StatusCreated, http.StatusNoContent, http.StatusOK)
	if errors.Is(err, errPrecondition) {
		return "", fmt.Errorf("carddav: create %s: %w: the name is taken", name, connectors.ErrRejected)
	}
	if err != nil {
		return "", err
	}
	c.remember(name, r.Header.Get("ETag"), card)
	return name, nil
}

// remember caches what was just written when the server reported its
// ETag (a strong one: a weak ETag may stand for a rewritten body).
func (c *Connector) remember(name, etag string, card *vcardmap.Card) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if etag == "" || strings.HasPrefix(etag, "W/") {
		delete(c.cache, name)
		return
	}
	c.cache[name] = cached{etag: etag, fields: card.Fields()}
}

// Update changes the given fields of a contact, only if nobody changed
// it since it was read.
func (c *Connector) Update(ctx context.Context, id string, fields map[string]string) error {
	card, etag, _, err := c.get(ctx, "update", id)
	if err != nil {
		return err
	}
	if err := card.Apply(fields); err != nil {
		return fmt.Errorf("carddav: update %s: %w: %w", id, connectors.ErrRejected, err)
	}
	card.EnsureFN()
	book, err := c.addressBook(ctx)
	if err != nil {
		return err
	}
	h := http.Header{"Content-Type": {"text/vcard; charset=utf-8"}}
	if etag != "" {
		h.Set("If-Match", etag)
	}
	r, err := c.do(ctx, "update", connectors.Write, http.MethodPut, memberURL(book, id), h, card.Encode(), http.StatusCreated, http.StatusNoContent, http.StatusOK)
	if errors.Is(err, errPrecondition) {
		return fmt.Errorf("carddav: update %s: %w: %w", id, ErrChangedConcurrently, connectors.ErrTemporary)
	}
	if err != nil {
		return err
	}
	c.remember(id, r.Header.Get("ETag"), card)
	return nil
}

// Delete deletes a contact if it did not change since it was last read.
func (c *Connector) Delete(ctx context.Context, id string) error {
	c.mu.Lock()
	etag := c.cache[id].etag
	c.mu.Unlock()
	if etag == "" {
		var err error
		if _, etag, _, err = c.get(ctx, "delete", id); err != nil {
			return err
		}
	}
	book, err := c.addressBook(ctx)
	if err != nil {
		return err
	}
	h := http.Header{}
	if etag != "" {
		h.Set("If-Match", etag)
	}
	_, err = c.do(ctx, "delete", connectors.Write, http.MethodDelete, memberURL(book, id), h, nil, http.StatusNoContent, http.StatusOK, http.StatusAccepted)
	if errors.Is(err, errPrecondition) {
		return fmt.Errorf("carddav: delete %s: %w: %w", id, ErrChangedConcurrently, connectors.ErrTemporary)
	}
	if err != nil {
		return err
	}
	c.mu.Lock()
	delete(c.cache, id)
	c.mu.Unlock()
	return nil
}

// ListIDs lists every object name with one PROPFIND.
func (c *Connector) ListIDs(ctx context.Context, fn func(ctx context.Context, ids []string) error) error {
	book, err := c.addressBook(ctx)
	if err != nil {
		return err
	}
	members, err := c.listMembers(ctx, "ids", book)
	if err != nil {
		return err
	}
	ids := make([]string, len(members))
	for i, m := range members {
		ids[i] = m.name
	}
	slices.Sort(ids)
	for len(ids) > 0 {
		n := min(len(ids), 1000)
		if err := fn(ctx, ids[:n]); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

var _ interface {
	connectors.Connector
	connectors.Writer
	connectors.Deleter
	connectors.IDLister
} = (*Connector)(nil)
