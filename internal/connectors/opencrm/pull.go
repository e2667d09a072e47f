package opencrm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/syncd/syncd/internal/connectors"
)

// Pull cursors come in two forms:
//   - the Done cursor, an RFC 3339 UTC instant: the newest of the modified
//     times seen, the previous cursor, and the server's clock when the
//     pull's first page was answered (its Date header) less zoneSlack.
//     The next incremental pull queries
//     crmentity.modifiedtime|>|<cursor − lookback> in the CRM's zone.
//   - a page cursor (JSON object, pageCursor): the exact query of the
//     pull in progress, the next offset and the newest time seen so far,
//     so that a pull interrupted after a page resumes after it.
type pageCursor struct {
	// Since is the cursor the pull started from ("" for a full pull); it
	// becomes the Done cursor when the pull brings nothing newer.
	Since string `json:"since,omitempty"`
	// From is the query's local wall-clock value; "" lists everything.
	From string `json:"from,omitempty"`
	// Next is the next limit_start.
	Next int `json:"next"`
	// Max is the newest modified time seen so far (RFC 3339).
	Max string `json:"max,omitempty"`
	// Server is the server's clock when the first page was answered
	// (RFC 3339), when it sent a usable Date header.
	Server string `json:"server,omitempty"`
	// Offset is the UTC offset (seconds) OpenCRM wrote the newest
	// modified time seen with, when it differs from the configured
	// time_zone's offset at that instant: the zone setting is wrong, and
	// queries follow what OpenCRM reports instead.
	Offset *int `json:"offset,omitempty"`
	// newest is the newest modified time seen with an explicit offset.
	newest time.Time
}

// offsetMark separates a Done cursor's instant from the server offset
// it carries (see pageCursor.Offset).
const offsetMark = " offset="

// doneCursor is the Done cursor of st.
func (st *pageCursor) doneCursor() string {
	if st.Offset == nil {
		return st.Max
	}
	return st.Max + offsetMark + strconv.Itoa(*st.Offset)
}

// observe notes the UTC offset of a modified time written with one
// (ISO 8601 output), for the newest such time of the pull. t is the time
// as record read it: in the configured zone when it came without an
// offset, so that only times OpenCRM gave an offset count.
func (c *Client) observe(st *pageCursor, t time.Time) {
	if t.IsZero() || t.Location() == c.loc || t.Before(st.newest) {
		return
	}
	st.newest = t
	_, got := t.Zone()
	_, want := t.In(c.loc).Zone()
	if got == want {
		st.Offset = nil
		return
	}
	st.Offset = &got
}

// zoneSlack is how far behind the server's clock the cursor stays: the
// largest error in the time_zone setting that loses no edit.
const zoneSlack = 2 * time.Hour

// maxServerAhead bounds how far ahead of syncd's own clock a reply's Date
// header may be and still move the cursor; a Date further ahead is taken
// for a broken clock and ignored.
const maxServerAhead = 24 * time.Hour

// serverTime reads a reply's Date header: the server's clock, to one
// second. It reports false when the header is missing, unreadable or
// implausibly far ahead of now.
func serverTime(h http.Header, now time.Time) (time.Time, bool) {
	v := h.Get("Date")
	if v == "" {
		return time.Time{}, false
	}
	t, err := http.ParseTime(v)
	if err != nil || t.After(now.Add(maxServerAhead)) {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// Pull lists contacts with get_contact_list_full: all of them for a full
// pull (or an empty cursor), else those modified after cursor − lookback.
//
// Paging is correct whether limit_end is an absolute end index or a count
// (the documentation does not say): ask limit_start=k&limit_end=k+N, keep
// at most the first N rows, advance k by N, de-duplicate by id, stop on a
// page with fewer than N rows. The overlap window returns some unchanged
// records again; the engine drops them by content hash.
//
// The server's clock at the first page (the reply's Date header), less
// zoneSlack, moves the cursor on even when nothing changed, so a quiet
// CRM's window does not hold the last burst of edits however long ago it
// was. The readings this rests on: modifiedtime is stamped by the clock
// the web server's Date reports (to within the lookback), and a record
// modified before the first page was answered is visible within the
// lookback. A Date more than a day ahead of syncd's own clock is
// ignored.
//
// Why the slack: with the default output format (no offset) the newest
// modified time seen is read and written back in the configured
// time_zone, so a wrong zone cancels out; the Date header is an absolute
// instant, so a zone wrong by E would shift the query by E and miss the
// edits in between (a CRM that keeps modifiedtime in UTC while the config
// says Europe/London is an hour off all summer). Holding the server's
// clock back by zoneSlack keeps the query safe for a zone up to that far
// off. With ISO 8601 output each modified time carries OpenCRM's offset:
// observe finds a zone that disagrees, and the queries follow OpenCRM's
// offset (warned about on every pull until the setting is fixed).
func (c *Client) Pull(ctx context.Context, opts connectors.PullOptions, fn connectors.PageFunc) error {
	st := c.startState(opts)
	// The cursor never moves back: records of the overlap window are
	// older than the cursor they were found with.
	var maxSeen time.Time
	for _, s := range []string{st.Since, st.Max} {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil && t.After(maxSeen) {
			maxSeen = t
		}
	}
	n := c.pageSize
	seen := make(map[string]struct{})
	for {
		params := url.Values{
			"limit_start": {formatLimit(st.Next)},
			"limit_end":   {formatLimit(st.Next + n)},
		}
		if st.From != "" {
			params.Set("query_string", "crmentity.modifiedtime|>|"+st.From)
		}
		body, header, err := c.callHeader(ctx, MethodListFull, connectors.Read, params, true)
		if err != nil {
			return err
		}
		if st.Server == "" {
			if t, ok := serverTime(header, c.now()); ok {
				st.Server = t.Format(time.RFC3339Nano)
			} else {
				st.Server = "-" // asked once per pull
			}
		}
		rows, err := decodeList(body)
		if err != nil {
			return c.malformed(MethodListFull, err)
		}
		if len(rows) > n {
			rows = rows[:n] // limit_end read as a count
		}
		page := connectors.Page{Records: make([]connectors.Record, 0, len(rows)), Total: -1}
		for _, row := range rows {
			rec, mt, err := c.record(row, "")
			if err != nil {
				return c.malformed(MethodListFull, err)
			}
			c.observe(&st, mt)
			if _, dup := seen[rec.ID]; dup {
				continue
			}
			// A decoded value shares its page's memory: the guard keeps a
			// copy, not the page.
			seen[strings.Clone(rec.ID)] = struct{}{}
			if rec.Modified.After(maxSeen) {
				maxSeen = rec.Modified
			}
			page.Records = append(page.Records, rec)
		}
		if len(rows) == n && len(page.Records) == 0 {
			return fmt.Errorf("opencrm: %s: %w: a full page brought no new record at limit_start=%d (paging parameters ignored?)", MethodListFull, connectors.ErrMalformed, st.Next)
		}
		st.Next += n
		if !maxSeen.IsZero() {
			st.Max = maxSeen.UTC().Format(time.RFC3339Nano)
		}
		page.Done = len(rows) < n
		if page.Done {
			if t, err := time.Parse(time.RFC3339Nano, st.Server); err == nil && t.Add(-zoneSlack).After(maxSeen) {
				maxSeen = t.Add(-zoneSlack)
				st.Max = maxSeen.Format(time.RFC3339Nano)
			}
			if st.Offset != nil {
				c.log.Warn("opencrm: OpenCRM writes modifiedtime at a UTC offset the configured time_zone does not have; queries follow OpenCRM's offset until options.time_zone is set to OpenCRM's zone",
					"connector", c.name, "opencrm_offset", time.Time{}.In(time.FixedZone("", *st.Offset)).Format("-07:00"), "time_zone", c.loc.String())
			}
			page.Cursor = st.doneCursor()
		} else {
			b, _ := json.Marshal(st)
			page.Cursor = string(b)
		}
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

// startState turns the pull options into the position to start from. A
// cursor that cannot be read starts a full pull (always safe: unchanged
// records are dropped by hash), with a warning.
func (c *Client) startState(opts connectors.PullOptions) pageCursor {
	cur := strings.TrimSpace(opts.Cursor)
	since := ""
	switch {
	case cur == "":
	case strings.HasPrefix(cur, "{"):
		var pc pageCursor
		if err := json.Unmarshal([]byte(cur), &pc); err == nil && pc.Next >= 0 && validCursorTimes(pc) {
			if !opts.Full {
				return pc
			}
			since = pc.Since
			break
		}
		c.log.Warn("opencrm: unreadable pull cursor, pulling everything", "connector", c.name)
	default:
		instant, offText, hasOffset := strings.Cut(cur, offsetMark)
		t, err := time.Parse(time.RFC3339Nano, instant)
		var off *int
		if hasOffset {
			n, perr := strconv.Atoi(offText)
			if perr != nil || n < -18*3600 || n > 18*3600 {
				err = errors.Join(err, fmt.Errorf("bad offset %q", offText))
			}
			off = &n
		}
		if err != nil {
			c.log.Warn("opencrm: unreadable pull cursor, pulling everything", "connector", c.name)
			break
		}
		since = t.UTC().Format(time.RFC3339Nano)
		if !opts.Full {
			return pageCursor{Since: since, From: c.queryFrom(t, off), Offset: off}
		}
	}
	return pageCursor{Since: since}
}

func validCursorTimes(pc pageCursor) bool {
	for _, s := range []string{pc.Since, pc.Max, pc.Server} {
		if s == "" || s == "-" {
			continue
		}
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return false
		}
	}
	if pc.From != "" {
		if _, err := time.Parse(layoutLocal, pc.From); err != nil {
			return false
		}
	}
	return true
}

// queryFrom is the local wall-clock text an incremental pull from cursor
// queries after: cursor − lookback in the CRM's zone, moved back before a
// repeated (autumn) hour when the start falls within that hour or less
// than an hour after it. The server compares local text, so an edit in the
// second pass of a repeated hour looks older than one in the first pass.
//
// When OpenCRM was seen writing modified times at a UTC offset the
// configured zone does not have (offset not nil), the query is written
// at that offset instead, an hour earlier still in case the CRM's own
// zone changed its clocks since.
func (c *Client) queryFrom(cursor time.Time, offset *int) string {
	start := cursor.Add(-c.lookback)
	if offset != nil {
		return start.Add(-time.Hour).In(time.FixedZone("", *offset)).Format(layoutLocal)
	}
	if b, ok := repeatedHourStart(start, c.loc); ok && b.Before(start) {
		start = b.Add(-time.Second)
	}
	return start.In(c.loc).Format(layoutLocal)
}

// repeatedHourStart finds a backward clock change near t: a transition at
// T from offset o1 to a smaller o2 repeats the local times of
// [T−(o1−o2), T). When T−Δ <= t < T+Δ+1h it returns T−Δ, the instant the
// repeated wall-clock span first began.
func repeatedHourStart(t time.Time, loc *time.Location) (time.Time, bool) {
	lt := t.In(loc)
	start, end := lt.ZoneBounds()
	for _, tr := range []time.Time{start, end} {
		if tr.IsZero() {
			continue
		}
		_, before := tr.Add(-time.Second).In(loc).Zone()
		_, after := tr.In(loc).Zone()
		delta := time.Duration(before-after) * time.Second
		if delta <= 0 {
			continue
		}
		first := tr.Add(-delta)
		if !t.Before(first) && t.Before(tr.Add(delta+time.Hour)) {
			return first, true
		}
	}
	return time.Time{}, false
}

// Count returns the number of contacts with get_contact_list_count (one
// call, no filter). The engine compares it with the records it holds to
// decide whether an incremental pull needs the complete id scan.
func (c *Client) Count(ctx context.Context) (int, error) {
	body, err := c.call(ctx, MethodCount, connectors.Read, url.Values{}, false)
	if err != nil {
		return 0, err
	}
	n, err := decodeCount(body)
	if err != nil {
		return 0, c.malformed(MethodCount, err)
	}
	return n, nil
}

// ListIDs scans every contact id with get_contact_list (a complete
// listing, for deletion detection), paging like Pull.
func (c *Client) ListIDs(ctx context.Context, fn func(ctx context.Context, ids []string) error) error {
	n := c.pageSize
	seen := make(map[string]struct{})
	for k := 0; ; k += n {
		params := url.Values{"limit_start": {formatLimit(k)}, "limit_end": {formatLimit(k + n)}}
		body, err := c.call(ctx, MethodList, connectors.Read, params, true)
		if err != nil {
			return err
		}
		rows, err := decodeList(body)
		if err != nil {
			return c.malformed(MethodList, err)
		}
		if len(rows) > n {
			rows = rows[:n]
		}
		ids := make([]string, 0, len(rows))
		for _, row := range rows {
			// A copy: the guard and the caller (which may keep every id
			// of a listing) hold the id, not its page.
			id := strings.Clone(rowID(row))
			if id == "" {
				return c.malformed(MethodList, fmt.Errorf("record without a valid id or crmid"))
			}
			if _, dup := seen[id]; dup {
				continue
			}
			seen[id] = struct{}{}
			ids = append(ids, id)
		}
		if len(rows) == n && len(ids) == 0 {
			return fmt.Errorf("opencrm: %s: %w: a full page brought no new id at limit_start=%d (paging parameters ignored?)", MethodList, connectors.ErrMalformed, k)
		}
		if len(ids) > 0 {
			if err := fn(ctx, ids); err != nil {
				return err
			}
		}
		if len(rows) < n {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}
