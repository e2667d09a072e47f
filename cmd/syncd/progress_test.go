package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	engine "github.com/syncd/syncd/internal/sync"
)

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// logLines decodes JSON log lines.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON log line: %q", l)
		}
		out = append(out, m)
	}
	buf.Reset()
	return out
}

// summary is a log line as "msg connector phase records" plus the named
// attributes that are present.
func summary(m map[string]any, extra ...string) string {
	s := []string{m["msg"].(string)}
	for _, k := range append([]string{"connector", "phase", "records"}, extra...) {
		if v, ok := m[k]; ok {
			s = append(s, k+"="+toString(v))
		}
	}
	return strings.Join(s, " ")
}

func toString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// TestProgressLog: progress lines come from the ticker, not from events:
// however many events arrive between two ticks, each connector under way
// gets one line per tick; a connector's end of pull or push is logged at
// once; a finished phase is not reported again.
func TestProgressLog(t *testing.T) {
	clock := newFakeClock()
	var buf bytes.Buffer
	p := newProgressLog(slog.New(slog.NewJSONHandler(&buf, nil)), clock.now)
	p.Begin()

	// 10 s of pulling: opencrm knows its total, co3 does not.
	for i := 1; i <= 50; i++ {
		clock.advance(200 * time.Millisecond)
		p.Event(engine.ProgressEvent{Connector: "opencrm", Phase: "pull", Pages: i, Records: 100 * i, Total: 20000})
		if i%5 == 0 {
			p.Event(engine.ProgressEvent{Connector: "co3", Phase: "pull", Pages: i / 5, Records: 50 * i / 5, Total: -1})
		}
	}
	if got := logLines(t, &buf); len(got) != 0 {
		t.Fatalf("events alone logged %d lines, want 0: %v", len(got), got)
	}
	p.report()
	got := logLines(t, &buf)
	if len(got) != 2 || summary(got[0], "pages", "total", "per_second", "eta") != "sync progress connector=opencrm phase=pull records=5000 pages=50 total=20000 per_second=500 eta=30000000000" ||
		summary(got[1], "pages", "total", "eta") != "sync progress connector=co3 phase=pull records=500 pages=10" {
		t.Errorf("first tick logged:\n%v", got)
	}

	// co3 finishes between the ticks: one line at once, and none on the
	// next tick; opencrm, silent since, is reported as idle.
	clock.advance(2 * time.Second)
	p.Event(engine.ProgressEvent{Connector: "co3", Phase: "pull", Pages: 11, Records: 520, Total: -1, Done: true})
	got = logLines(t, &buf)
	if len(got) != 1 || summary(got[0], "pages", "duration") != "sync phase finished connector=co3 phase=pull records=520 pages=11 duration=12000000000" {
		t.Errorf("end of co3's pull logged:\n%v", got)
	}
	clock.advance(8 * time.Second)
	p.report()
	got = logLines(t, &buf)
	if len(got) != 1 || summary(got[0], "idle") != "sync progress connector=opencrm phase=pull records=5000 idle=10000000000" {
		t.Errorf("second tick logged:\n%v", got)
	}

	// Link and reconcile span the connectors; a push ends with a line.
	p.Event(engine.ProgressEvent{Connector: "opencrm", Phase: "pull", Pages: 200, Records: 20000, Total: 20000, Done: true})
	logLines(t, &buf)
	p.Event(engine.ProgressEvent{Phase: "link", Records: 500, Total: -1})
	p.Event(engine.ProgressEvent{Phase: "reconcile", Records: 500, Total: -1})
	p.report()
	if got = logLines(t, &buf); len(got) != 1 || summary(got[0]) != "sync progress phase=reconcile records=500" {
		t.Errorf("third tick logged:\n%v", got)
	}
	clock.advance(time.Second)
	p.Event(engine.ProgressEvent{Connector: "co3", Phase: "push", Records: 200, Total: -1})
	p.Event(engine.ProgressEvent{Connector: "co3", Phase: "push", Records: 260, Total: -1, Done: true})
	p.report()
	if got = logLines(t, &buf); len(got) != 1 || summary(got[0]) != "sync phase finished connector=co3 phase=push records=260" {
		t.Errorf("push logged:\n%v", got)
	}

	// After the run nothing is under way.
	p.Event(engine.ProgressEvent{Connector: "opencrm", Phase: "push", Records: 200, Total: -1})
	p.End()
	p.report()
	if got = logLines(t, &buf); len(got) != 0 {
		t.Errorf("tick after the run logged:\n%v", got)
	}
}

// TestProgressLogTicker: the loop reports on each tick and stops with its
// context.
func TestProgressLogTicker(t *testing.T) {
	clock := newFakeClock()
	var buf lockedWriter
	p := newProgressLog(slog.New(slog.NewJSONHandler(&buf, nil)), clock.now)
	p.Begin()
	p.Event(engine.ProgressEvent{Connector: "a", Phase: "pull", Pages: 1, Records: 10, Total: -1})
	p.Event(engine.ProgressEvent{Connector: "b", Phase: "pull", Pages: 1, Records: 10, Total: -1})
	ticks := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.run(ctx, ticks); close(done) }()
	for range 3 {
		ticks <- clock.now()
	}
	cancel()
	<-done
	if n := strings.Count(buf.String(), `"msg":"sync progress"`); n != 6 {
		t.Errorf("3 ticks over 2 connectors logged %d lines, want 6:\n%s", n, buf.String())
	}
}

// screen is a tiny terminal: it applies what progressTerm writes (CR, LF,
// cursor up, erase) and returns the lines left on screen.
func screen(t *testing.T, out string) []string {
	t.Helper()
	var lines [][]rune
	row, col := 0, 0
	put := func(r rune) {
		for len(lines) <= row {
			lines = append(lines, nil)
		}
		for len(lines[row]) < col {
			lines[row] = append(lines[row], ' ')
		}
		if col < len(lines[row]) {
			lines[row][col] = r
		} else {
			lines[row] = append(lines[row], r)
		}
		col++
	}
	csi := regexp.MustCompile(`^\x1b\[(\??)(\d*)([A-Za-z])`)
	rs := []rune(out)
	for i := 0; i < len(rs); i++ {
		switch rs[i] {
		case '\r':
			col = 0
		case '\n':
			row, col = row+1, 0
		case '\x1b':
			m := csi.FindStringSubmatch(string(rs[i:]))
			if m == nil {
				t.Fatalf("unknown escape at %q", string(rs[i:min(len(rs), i+10)]))
			}
			n, _ := strconv.Atoi(m[2])
			switch {
			case m[1] == "?":
			case m[3] == "A":
				row = max(0, row-max(n, 1))
			case m[3] == "J":
				if row < len(lines) {
					lines[row] = lines[row][:min(col, len(lines[row]))]
					lines = lines[:row+1]
				}
			case m[3] == "K":
				if row < len(lines) && col < len(lines[row]) {
					lines[row] = lines[row][:col]
				}
			default:
				t.Fatalf("unexpected escape %q", m[0])
			}
			i += len([]rune(m[0])) - 1
		default:
			put(rs[i])
		}
	}
	var s []string
	for _, l := range lines {
		s = append(s, strings.TrimRight(string(l), " "))
	}
	for len(s) > 0 && s[len(s)-1] == "" {
		s = s[:len(s)-1]
	}
	return s
}

// TestProgressTerm: one line per connector, redrawn in place; a log line
// lands above the block; the end leaves the block below everything with
// each phase done.
func TestProgressTerm(t *testing.T) {
	clock := newFakeClock()
	var out lockedWriter
	term := newProgressTerm(&out, clock.now)
	term.start()
	for i := 1; i <= 5; i++ {
		clock.advance(time.Second)
		term.Event(engine.ProgressEvent{Connector: "opencrm", Phase: "pull", Pages: i, Records: 100 * i, Total: 1000})
		term.Event(engine.ProgressEvent{Connector: "co3", Phase: "pull", Pages: i, Records: 40 * i, Total: -1})
		term.redraw(true)
	}
	if n := strings.Count(out.String(), "\x1b[2A"); n < 4 {
		t.Errorf("the block was redrawn in place %d times, want at least 4", n)
	}
	scr := screen(t, out.String())
	want := []string{
		"opencrm      pull               5 pages      500 records     100/s   50% of 1000  ETA 5s",
		"co3          pull               5 pages      200 records      40/s",
	}
	if strings.Join(scr, "\n") != strings.Join(want, "\n") {
		t.Errorf("screen while pulling:\n%s\nwant:\n%s", strings.Join(scr, "\n"), strings.Join(want, "\n"))
	}
	if _, err := term.Write([]byte("WARN id listing failed\n")); err != nil {
		t.Fatal(err)
	}
	clock.advance(time.Second)
	term.Event(engine.ProgressEvent{Connector: "co3", Phase: "pull", Pages: 6, Records: 240, Total: -1, Done: true})
	term.Event(engine.ProgressEvent{Phase: "link", Records: 740, Total: -1})
	term.finish()
	if _, err := term.Write([]byte("after\n")); err != nil {
		t.Fatal(err)
	}
	scr = screen(t, out.String())
	want = []string{
		"WARN id listing failed",
		"opencrm      pull done          5 pages      500 records     100/s   50% of 1000",
		"co3          pull done          6 pages      240 records      40/s",
		"all          link done                       740 records",
		"after",
	}
	if strings.Join(scr, "\n") != strings.Join(want, "\n") {
		t.Errorf("screen at the end:\n%s\nwant:\n%s", strings.Join(scr, "\n"), strings.Join(want, "\n"))
	}
}

// TestProgressRate: a later phase's rate counts from the end of the phase
// before it, not from its own first event.
func TestProgressRate(t *testing.T) {
	clock := newFakeClock()
	s := newProgressState(clock.now)
	s.begin()
	clock.advance(10 * time.Second)
	s.event(engine.ProgressEvent{Connector: "a", Phase: "pull", Pages: 1, Records: 100, Total: -1, Done: true})
	clock.advance(5 * time.Second)
	s.event(engine.ProgressEvent{Phase: "reconcile", Records: 100, Total: -1})
	clock.advance(2 * time.Second)
	r, _ := s.event(engine.ProgressEvent{Connector: "a", Phase: "push", Records: 100, Total: -1})
	if got := r.rate(); got != 50 {
		t.Errorf("push rate %v/s, want 50 (100 records in the 2 s after reconcile)", got)
	}
	if !s.rows[""].done {
		t.Error("reconcile row not done once the push began")
	}
}
