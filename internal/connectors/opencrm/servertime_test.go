package opencrm

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/connectors/opencrm/opencrmtest"
)

// A quiet CRM: once the server's clock has moved past the lookback and
// the zone slack, the next pull no longer returns the last burst of
// edits, however long ago it was; an edit made after the pull is still
// found.
func TestCursorFollowsServerClock(t *testing.T) {
	e := newEnv(t, envConfig{pageSize: 5})
	base := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	e.emu.Clock.Set(base)
	var ids []string
	for i := range 12 {
		ids = append(ids, e.emu.Seed(person(i)))
	}
	_, pages := pull(t, e.c, connectors.PullOptions{})
	cursor := lastCursor(pages)

	// Three hours later nothing changed: the burst is still read once.
	e.emu.Clock.Set(base.Add(3 * time.Hour))
	recs, pages := pull(t, e.c, connectors.PullOptions{Cursor: cursor})
	if len(recs) != 12 {
		t.Fatalf("first incremental pull: %d records, want the 12 of the window", len(recs))
	}
	cursor = lastCursor(pages)
	if want := base.Add(3*time.Hour - zoneSlack).Format(time.RFC3339); !strings.HasPrefix(cursor, want[:19]) {
		t.Fatalf("cursor = %q, want the server's clock less the zone slack, %s", cursor, want)
	}
	e.emu.Clock.Set(base.Add(6 * time.Hour))
	e.emu.ResetCalls()
	recs, pages = pull(t, e.c, connectors.PullOptions{Cursor: cursor})
	if len(recs) != 0 || e.emu.Calls(MethodListFull) != 1 {
		t.Fatalf("quiet pull: %d records in %d calls, want 0 in 1", len(recs), e.emu.Calls(MethodListFull))
	}
	cursor = lastCursor(pages)

	// An edit in the same second as the last pull's Date is found.
	e.emu.EditAsUser(ids[3], map[string]string{"lastname": "Later"})
	recs, _ = pull(t, e.c, connectors.PullOptions{Cursor: cursor})
	if r, ok := byID(recs)[ids[3]]; !ok || r.Fields["lastname"] != "Later" {
		t.Fatalf("edit after a quiet pull missed: %v", recs)
	}
}

// A CRM that keeps modifiedtime in UTC while the config says
// Europe/London (an hour off all summer) loses no edit made after a pull,
// however the server's clock moved the cursor.
func TestWrongZoneLosesNoEdit(t *testing.T) {
	e := newEnv(t, envConfig{pageSize: 5, emu: opencrmtest.Config{TimeZone: "UTC"}})
	base := time.Date(2026, 7, 2, 10, 0, 0, 0, time.UTC) // summer: London is UTC+1
	e.emu.Clock.Set(base)
	id := e.emu.Seed(person(1))
	e.emu.Seed(person(2))
	_, pages := pull(t, e.c, connectors.PullOptions{})
	cursor := lastCursor(pages)
	for _, step := range []time.Duration{3 * time.Hour, 10 * time.Minute, time.Minute} {
		e.emu.Clock.Set(e.emu.Clock.Now().Add(step))
		_, pages = pull(t, e.c, connectors.PullOptions{Cursor: cursor})
		cursor = lastCursor(pages)
		e.emu.Clock.Set(e.emu.Clock.Now().Add(time.Second))
		e.emu.EditAsUser(id, map[string]string{"lastname": "After " + step.String()})
		recs, p := pull(t, e.c, connectors.PullOptions{Cursor: cursor})
		if r, ok := byID(recs)[id]; !ok || r.Fields["lastname"] != "After "+step.String() {
			t.Fatalf("edit a second after a pull (%s later) missed with the zone an hour off: %v", step, recs)
		}
		cursor = lastCursor(p)
	}
	if !strings.HasSuffix(cursor, offsetMark+"0") {
		t.Errorf("cursor %q does not carry the UTC offset OpenCRM reports", cursor)
	}
	if !strings.Contains(e.logs.String(), "until options.time_zone is set") {
		t.Errorf("no warning about the time_zone setting:\n%s", e.logs.String())
	}
}

// With the right zone the cursor is a plain instant and nothing warns.
func TestRightZoneCursorIsPlain(t *testing.T) {
	e := newEnv(t, envConfig{pageSize: 5})
	e.emu.Clock.Set(time.Date(2026, 7, 2, 10, 0, 0, 0, time.UTC))
	e.emu.Seed(person(1))
	_, pages := pull(t, e.c, connectors.PullOptions{})
	if c := lastCursor(pages); strings.Contains(c, offsetMark) {
		t.Errorf("cursor %q carries an offset with the right zone", c)
	}
	if strings.Contains(e.logs.String(), "time_zone") {
		t.Errorf("warned with the right zone:\n%s", e.logs.String())
	}
}

// Without a usable Date header the cursor is the newest modified time
// seen, as before; a Date far ahead of syncd's clock is ignored.
func TestUnusableDateHeaderIgnored(t *testing.T) {
	for name, date := range map[string]string{
		"missing":    "",
		"garbage":    "yesterday-ish",
		"far future": time.Now().Add(48 * time.Hour).UTC().Format(http.TimeFormat),
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, envConfig{pageSize: 5, wrap: func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					h.ServeHTTP(&dateWriter{ResponseWriter: w, date: date}, r)
				})
			}})
			base := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
			e.emu.Clock.Set(base)
			for i := range 3 {
				e.emu.Seed(person(i))
			}
			e.emu.Clock.Set(base.Add(time.Hour))
			_, pages := pull(t, e.c, connectors.PullOptions{})
			if c := lastCursor(pages); !strings.HasPrefix(c, "2026-03-02T10:00:00") {
				t.Errorf("cursor = %q, want the newest modified time 10:00:00", c)
			}
		})
	}
}

// dateWriter replaces (or removes) the Date header of a reply.
type dateWriter struct {
	http.ResponseWriter
	date string
	done bool
}

func (d *dateWriter) fix() {
	if d.done {
		return
	}
	d.done = true
	if d.date == "" {
		d.Header()["Date"] = nil // suppresses the server's own Date
		return
	}
	d.Header().Set("Date", d.date)
}

func (d *dateWriter) WriteHeader(code int) { d.fix(); d.ResponseWriter.WriteHeader(code) }
func (d *dateWriter) Write(b []byte) (int, error) {
	d.fix()
	return d.ResponseWriter.Write(b)
}
