package clientbook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/syncd/syncd/internal/connectors"
)

// How pulls work.
//
// clients/list has no change filter, only an order (newest first by
// update_date or by creation) and offset paging. An incremental pull reads
// order=update from the top and stops at the first client older than
// cursor − lookback: a few edits cost one call. The cursor for the next
// pull is the newest update_date seen on the first page, which is taken
// from the CRM's own values (no clock or time zone of ours is involved)
// and is inclusive, so an edit landing in the same second is read again,
// never missed. An edit made while a pull runs gets an update_date no older
// than that mark, so the next pull sees it.
//
// Offset paging over a list that changes underneath shifts positions: an
// edit moves a client to the top, a deletion pulls the rest up. Every page
// after the first therefore re-reads the last client of the previous page
// and aligns on the last already-seen client in the window; when nothing in
// the window was seen (rows were deleted above), it steps back a page.
// Clients already returned in this pull are not returned again.
//
// The cursor of a page in the middle of a pull holds the mode, the mark,
// the offset and the last id, so a pull killed after that page resumes
// there; if the listing moved so far that the last id is not found, the
// resumed pull starts over from the top (repeats are harmless: the engine
// drops unchanged records by content hash).
//
// ListIDs reads order=created, which edits do not reorder, so a client
// edited during the listing is never missed (and never taken for deleted).

// cursor is the JSON form of a pull position.
type cursor struct {
	// Since is the newest update_date of the previous pull; the next
	// incremental pull returns clients updated at or after Since−lookback.
	Since time.Time `json:"since,omitzero"`
	// LastFull is when the last full pull started (engine clock).
	LastFull time.Time `json:"last_full,omitzero"`
	// The rest is set only in the middle of a pull.
	Mode   string    `json:"mode,omitempty"` // modeFull or modeChanges
	Mark   time.Time `json:"mark,omitzero"`  // the next Since
	Offset int       `json:"offset,omitempty"`
	LastID string    `json:"last_id,omitempty"`
}

const (
	modeFull    = "full"
	modeChanges = "changes"
)

// futureSlack bounds how far in the future (by our clock) an update_date
// may be and still become the cursor: a client dated years ahead by a
// broken import must not stop incremental pulls until then.
const futureSlack = 48 * time.Hour

// Pull streams clients changed since opts.Cursor, or all of them.
func (c *Connector) Pull(ctx context.Context, opts connectors.PullOptions, fn connectors.PageFunc) error {
	var cur cursor
	if opts.Cursor != "" && !opts.Full {
		if err := json.Unmarshal([]byte(opts.Cursor), &cur); err != nil {
			// An unreadable cursor costs a full pull, not a failed run.
			c.log.Debug("clientbook: unreadable cursor; pulling everything", "connector", c.name)
			cur = cursor{}
		}
	}
	now := c.now()
	if cur.Mode == "" {
		full := opts.Full || cur.Since.IsZero() ||
			(c.fullScanEvery > 0 && now.Sub(cur.LastFull) >= c.fullScanEvery)
		cur.Mode, cur.Offset, cur.LastID, cur.Mark = modeChanges, 0, "", time.Time{}
		if full {
			cur.Mode, cur.LastFull = modeFull, now
		}
	}
	if cur.Mode != modeFull && cur.Mode != modeChanges {
		cur = cursor{Mode: modeFull, LastFull: now}
	}
	threshold := cur.Since.Add(-c.lookback)

	l := c.newLister("update", cur.Offset, cur.LastID)
	for {
		batch, total, end, err := l.next(ctx)
		if err != nil {
			return err
		}
		if l.firstWindow {
			cur.Mark = c.mark(batch, cur.Since, now)
		}
		if cur.Mode == modeChanges {
			for i, cl := range batch {
				if cl.updated.Before(threshold) {
					batch, end = batch[:i], true
					break
				}
			}
		}
		page := connectors.Page{Total: -1, Records: make([]connectors.Record, len(batch))}
		if cur.Mode == modeFull {
			page.Total = total
		}
		for i, cl := range batch {
			page.Records[i] = cl.record()
		}
		if end {
			page.Done = true
			page.Cursor = encodeCursor(cursor{Since: cur.Mark, LastFull: cur.LastFull})
		} else {
			if len(batch) == 0 {
				continue
			}
			cur.Offset, cur.LastID = l.offset, batch[len(batch)-1].id
			page.Cursor = encodeCursor(cur)
		}
		if err := fn(ctx, page); err != nil {
			return err
		}
		if end {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// mark is the next pull's Since: the newest plausible update_date on the
// first page, or the previous Since when there is none.
func (c *Connector) mark(first []client, prev, now time.Time) time.Time {
	m := prev
	for _, cl := range first {
		if cl.updated.After(m) && cl.updated.Before(now.Add(futureSlack)) {
			m = cl.updated
		}
	}
	return m
}

func encodeCursor(cur cursor) string {
	b, _ := json.Marshal(cur) // plain struct: cannot fail
	return string(b)
}

// ListIDs lists every client id with a full clients/list scan in creation
// order.
func (c *Connector) ListIDs(ctx context.Context, fn func(ctx context.Context, ids []string) error) error {
	l := c.newLister("created", 0, "")
	for {
		batch, _, end, err := l.next(ctx)
		if err != nil {
			return err
		}
		if len(batch) > 0 {
			ids := make([]string, len(batch))
			for i, cl := range batch {
				ids[i] = cl.id
			}
			if err := fn(ctx, ids); err != nil {
				return err
			}
		}
		if end {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// lister walks clients/list in one order with offset paging, aligning
// every page on clients already seen (see the comment at the top).
type lister struct {
	c      *Connector
	order  string
	offset int // list positions consumed
	seen   map[string]struct{}
	// resumed is set while nothing has been delivered since a resume:
	// a misaligned window then restarts from the top.
	resumed     bool
	firstWindow bool // the last window was read from the top of a fresh pull
	fresh       bool
	calls       int
	maxTotal    int
}

func (c *Connector) newLister(order string, offset int, lastID string) *lister {
	l := &lister{c: c, order: order, offset: offset, seen: map[string]struct{}{}}
	if lastID != "" && offset > 0 {
		l.seen[lastID] = struct{}{}
		l.resumed = true
	} else {
		l.offset, l.fresh = 0, true
	}
	return l
}

// next returns the clients of the next window not returned before, the
// reply's total (-1 if none) and whether the listing is at its end.
func (l *lister) next(ctx context.Context) ([]client, int, bool, error) {
	l.firstWindow = false
	for {
		from, limit := l.offset, l.c.pageSize
		if from > 0 {
			from, limit = from-1, limit+1 // overlap one to check alignment
		}
		rep, err := l.c.list(ctx, l.order, from, limit)
		if err != nil {
			return nil, 0, false, err
		}
		l.calls++
		l.maxTotal = max(l.maxTotal, rep.total, from+len(rep.clients))
		if l.calls > 3*(l.maxTotal/l.c.pageSize+1)+20 {
			return nil, 0, false, fmt.Errorf("clientbook: clients/list: %w: the listing keeps shifting under paging (%d calls)", connectors.ErrTemporary, l.calls)
		}
		window := rep.clients
		aligned := from == 0
		for i := len(window) - 1; i >= 0 && !aligned; i-- {
			_, aligned = l.seen[window[i].id]
		}
		if !aligned {
			// Rows above us disappeared (or a resumed pull lost its
			// place): step back, or start over after a resume.
			if l.resumed {
				l.offset = 0
			} else {
				l.offset = max(0, l.offset-l.c.pageSize)
			}
			l.resumed = false
			continue
		}
		l.firstWindow = l.fresh
		l.fresh, l.resumed = false, false
		out := window[:0:0]
		for _, cl := range window {
			if _, dup := l.seen[cl.id]; !dup {
				l.seen[cl.id] = struct{}{}
				out = append(out, cl)
			}
		}
		l.offset = from + len(window)
		end := len(window) < limit || (rep.total >= 0 && l.offset >= rep.total)
		return out, rep.total, end, nil
	}
}

// list makes one clients/list call.
func (c *Connector) list(ctx context.Context, order string, from, limit int) (listReply, error) {
	q := url.Values{"order": {order}, "from": {strconv.Itoa(from)}, "limit": {strconv.Itoa(limit)}}
	body, err := c.call(ctx, request{function: "clients/list", path: "clients/list", query: q, kind: connectors.Read})
	if err != nil {
		return listReply{}, err
	}
	rep, err := decodeList(body, c.loc)
	if err != nil {
		return listReply{}, fmt.Errorf("clientbook: clients/list: %w", err)
	}
	return rep, nil
}
