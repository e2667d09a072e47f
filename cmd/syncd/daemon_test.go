package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/metrics"
)

func TestListenAddr(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{":9477", "127.0.0.1:9477"},
		{"127.0.0.1:9477", "127.0.0.1:9477"},
		{"0.0.0.0:9477", "0.0.0.0:9477"},
		{"[::]:9477", "[::]:9477"},
		{"[::1]:9477", "[::1]:9477"},
		{"localhost:9477", "localhost:9477"},
	} {
		if got := listenAddr(tc.in); got != tc.want {
			t.Errorf("listenAddr(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// A listen address without a host serves on loopback only.
func TestServeMetricsBareAddressIsLoopback(t *testing.T) {
	var buf bytes.Buffer
	stop, err := serveMetrics(context.Background(), ":0", metrics.New(time.Hour, nil), slog.New(slog.NewJSONHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if !strings.Contains(buf.String(), `"url":"http://127.0.0.1:`) {
		t.Errorf("metrics not on loopback: %s", buf.String())
	}
}

// The watchdog's gate is open while the daemon waits for the schedule and
// while a cycle beats, closed once a running cycle has been quiet for
// longer than the limit, and open again at the next beat.
func TestWatchdogGate(t *testing.T) {
	clock := newFakeClock()
	live := newLiveness(clock.now)
	var buf bytes.Buffer
	g := &watchdogGate{live: live, limit: time.Minute, log: slog.New(slog.NewJSONHandler(&buf, nil))}
	steps := []struct {
		what string
		do   func()
		open bool
	}{
		{"idle at start", func() {}, true},
		{"idle for hours", func() { clock.advance(5 * time.Hour) }, true},
		{"a cycle starts", func() { live.cycle(true) }, true},
		{"quiet for less than the limit", func() { clock.advance(50 * time.Second) }, true},
		{"a page arrives", func() { clock.advance(50 * time.Second); live.beat() }, true},
		{"quiet for longer than the limit", func() { clock.advance(61 * time.Second) }, false},
		{"still quiet", func() { clock.advance(time.Minute) }, false},
		{"an API call returns", func() { live.beat() }, true},
		{"stuck again", func() { clock.advance(2 * time.Minute) }, false},
		{"the cycle ends", func() { live.cycle(false) }, true},
		{"idle again", func() { clock.advance(time.Hour) }, true},
	}
	for _, s := range steps {
		s.do()
		if got := g.open(); got != s.open {
			t.Errorf("%s: gate open %v, want %v", s.what, got, s.open)
		}
	}
	if n := strings.Count(buf.String(), "watchdog pings withheld"); n != 2 {
		t.Errorf("withheld pings were logged %d times, want once per stall (2):\n%s", n, buf.String())
	}
}

// notifySocket listens like systemd's notify socket and collects what it
// receives.
type notifySocket struct {
	mu   sync.Mutex
	msgs []string
	got  chan struct{}
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	s := &notifySocket{got: make(chan struct{}, 1)}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, string(buf[:n]))
			s.mu.Unlock()
			select {
			case s.got <- struct{}{}:
			default:
			}
		}
	}()
	return s
}

// count returns how many messages contain the line want.
func (s *notifySocket) count(want string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.msgs {
		for l := range strings.SplitSeq(m, "\n") {
			if l == want {
				n++
			}
		}
	}
	return n
}

func (s *notifySocket) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.msgs...)
}

// waitFor waits up to 30 s until cond holds.
func (s *notifySocket) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for !cond() {
		select {
		case <-s.got:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no %s within 30 s; got %q", what, s.all())
		}
	}
}

// TestDaemonNotify: under systemd (NOTIFY_SOCKET, WATCHDOG_USEC) the
// daemon says READY=1, pings the watchdog and says STOPPING=1 when it is
// stopped; under info level it logs per-connector progress.
func TestDaemonNotify(t *testing.T) {
	sock := listenNotify(t)
	t.Setenv("WATCHDOG_USEC", "400000")
	t.Setenv("WATCHDOG_PID", "")
	_, cfg := cliSim(t, 40)
	raiseLogLevel(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr lockedWriter
	code := -1
	var wg sync.WaitGroup
	wg.Go(func() { code = Run(ctx, []string{"-config", cfg}, &bytes.Buffer{}, &stderr) })

	sock.waitFor(t, "READY=1", func() bool { return sock.count("READY=1") == 1 })
	if first := sock.all()[0]; !strings.HasPrefix(first, "READY=1\n") {
		t.Errorf("first message %q, want READY=1 first", first)
	}
	sock.waitFor(t, "three WATCHDOG=1", func() bool { return sock.count("WATCHDOG=1") >= 3 })
	sock.waitFor(t, "the end of the first cycle", func() bool { return sock.count("STATUS=waiting for the schedule") >= 2 })
	if sock.count("STOPPING=1") != 0 {
		t.Fatalf("STOPPING=1 before the stop: %q", sock.all())
	}
	cancel()
	wg.Wait()
	if code != 0 {
		t.Fatalf("daemon exit %d\n%s", code, stderr.String())
	}
	if sock.count("STOPPING=1") != 1 {
		t.Errorf("STOPPING=1 sent %d times, want 1: %q", sock.count("STOPPING=1"), sock.all())
	}
	if sock.count("STATUS=running a sync") < 1 {
		t.Errorf("no STATUS for the running cycle: %q", sock.all())
	}
	log := stderr.String()
	for _, c := range []string{"opencrm", "co3"} {
		if !strings.Contains(log, `"msg":"sync phase finished","component":"progress","connector":"`+c+`","phase":"pull"`) {
			t.Errorf("no end-of-pull line for %s:\n%s", c, log)
		}
	}
}

// raiseLogLevel makes a cliSim config log at info.
func raiseLogLevel(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), `level = "warn"`, `level = "info"`, 1)
	if s == string(b) {
		t.Fatalf("no log level in %s", path)
	}
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// The config takes a bare port for listen and refuses an address without
// one.
func TestListenConfig(t *testing.T) {
	_, cfg := cliSim(t, 5)
	text, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		listen, err string
	}{
		{":9477", ""},
		{"0.0.0.0:9477", ""},
		{"9477", `listen: not a host:port address (got "9477")`},
	} {
		path := filepath.Join(t.TempDir(), "config.toml")
		if err := os.WriteFile(path, append([]byte("listen = \""+tc.listen+"\"\n"), text...), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := loadConfig(path)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("listen %q: %v", tc.listen, err)
		case tc.err == "" && c.Listen != tc.listen:
			t.Errorf("listen %q read as %q", tc.listen, c.Listen)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("listen %q: error %v, want %q", tc.listen, err, tc.err)
		}
	}
}
