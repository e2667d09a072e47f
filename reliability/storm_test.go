package reliability

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/config"
	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/connectors/emulator"
	"github.com/syncd/syncd/internal/connectors/registry"
	"github.com/syncd/syncd/internal/redact"
	"github.com/syncd/syncd/internal/state"
	engine "github.com/syncd/syncd/internal/sync"
)

var (
	flagStormPeople = flag.Int("storm-people", 1000, "sample people of the fault storm")
	flagSleepScale  = flag.Float64("storm-sleep-scale", 0.01, "scale of the pacer's waits (Retry-After, backoff) in the fault storm; 1 waits in full")
	flagStormRuns   = flag.Int("storm-max-runs", 0, "runs the fault storm may take to converge (0: stormMaxRuns of -storm-people)")
)

// Fault storm rates: of every call, this share is answered 429 (half with
// Retry-After: 0, half with Retry-After: 1) and this share 500; every
// stormExpireEvery-th call of an emulator first expires all its sessions.
const (
	storm429         = 0.20
	storm500         = 0.10
	stormMaxLatency  = 4 * time.Millisecond
	stormExpireEvery = 37
	// stormMaxCallRatio bounds the API calls per record of the storm
	// against a run without faults.
	stormMaxCallRatio = 3.0
)

// stormUnsettled bounds the chance that the storm's run cap is reached
// while the sync is still making progress.
const stormUnsettled = 1e-3

// stormMaxRuns bounds the runs until one exits 0 and writes nothing, for
// a storm over people sample people. It grows with the logarithm of the
// size because of how creates are settled: a create the CRM answered
// with a server error may have made the contact, so it is not repeated in
// that run; it waits, as "attempted", for the next run's pull to show
// that the CRM lacks it, and is sent again then. Every run thus settles
// the creates left uncertain by the one before, except those that meet a
// fault again. At worst every fault (429s included) leaves a create
// uncertain, so of the first sync's creates (fewer than people) a share
// q = storm429+storm500 is left after run 1, and the share q of those
// after each later run. After k more runs the expected number left is
// q·people·q^k; the cap allows k such that this is below stormUnsettled,
// plus the first run and the final run that writes nothing. That is 13
// runs for the CI size of 1,000 people and 15 for 20,000.
func stormMaxRuns(people int) int {
	q := storm429 + storm500
	k := math.Ceil(math.Log(q*float64(people)/stormUnsettled) / math.Log(1/q))
	return 2 + int(k)
}

// stormFaults injects one emulator's faults; its random numbers come from
// the test's seed.
type stormFaults struct {
	mu     sync.Mutex
	rng    *rand.Rand
	calls  int
	expire func()
	// Injected counts the faults answered, by status.
	injected map[int]int
	expired  int
}

func (s *stormFaults) fault(string) *emulator.Fault {
	s.mu.Lock()
	s.calls++
	expire := s.calls%stormExpireEvery == 0
	r := s.rng.Float64()
	latency := time.Duration(s.rng.Int64N(int64(stormMaxLatency)))
	retryAfter := []string{"0", "1"}[s.rng.IntN(2)]
	var f *emulator.Fault
	switch {
	case r < storm429:
		f = &emulator.Fault{Status: 429, RetryAfter: retryAfter}
	case r < storm429+storm500:
		f = &emulator.Fault{Status: 500}
	}
	if f != nil {
		s.injected[f.Status]++
	}
	if expire {
		s.expired++
	}
	s.mu.Unlock()
	time.Sleep(latency)
	if expire {
		// The session the call carries is now stale: the connector must
		// renew it once and repeat the call.
		s.expire()
	}
	return f
}

// inProcess is one syncd --run-once done in the test process, wired like
// the binary (config, registry types, state store, engine) except that the
// pacers' waits are scaled, so that a storm of Retry-After: 1 and backoffs
// does not take minutes.
type inProcess struct {
	retries, reads, writes int64
}

func (w *world) runInProcess(ctx context.Context, scale float64, tot *inProcess) *engine.Report {
	w.t.Helper()
	rep, err := w.runInProcessWith(ctx, scale, tot, state.Options{})
	if err != nil {
		w.t.Fatalf("run %d: %v", w.runs, err)
	}
	return rep
}

// runInProcessWith is runInProcess with the store opened with opts; it
// returns the run's own error (the store's) instead of failing the test.
func (w *world) runInProcessWith(ctx context.Context, scale float64, tot *inProcess, opts state.Options) (*engine.Report, error) {
	w.t.Helper()
	cfg, err := config.Load(w.cfg, registry.Types())
	if err != nil {
		w.t.Fatal(err)
	}
	red := redact.New(cfg.Secrets()...)
	logf, err := os.OpenFile(filepath.Join(w.dir, "storm.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		w.t.Fatal(err)
	}
	defer logf.Close()
	logger := slog.New(red.Handler(slog.NewJSONHandler(logf, &slog.HandlerOptions{Level: slog.LevelWarn})))
	st, err := state.Open(ctx, cfg.StatePath(), opts)
	if err != nil {
		w.t.Fatal(err)
	}
	defer st.Close()
	conns := map[string]connectors.Connector{}
	pacers := map[string]*connectors.Pacer{}
	for i := range cfg.Connector {
		cc := &cfg.Connector[i]
		pacer := connectors.NewPacer(connectors.PacerConfig{Name: cc.Name, Rate: cc.Rate, Burst: cc.Burst,
			Sleep: func(ctx context.Context, d time.Duration) error {
				return connectors.SleepContext(ctx, time.Duration(float64(d)*scale))
			}})
		c, err := cc.Kind.New(connectors.Settings{Name: cc.Name, BaseURL: cc.BaseURL, Credentials: cc.Resolved, PageSize: cc.PageSize,
			Options: cc.TypeOptions, Pacer: pacer, HTTP: connectors.NewHTTPClient(cc.Timeout.Duration, red),
			Logger: logger.With("connector", cc.Name), Now: time.Now, ConfigDir: cfg.Dir})
		if err != nil {
			w.t.Fatal(err)
		}
		if cl, ok := c.(connectors.Closer); ok {
			defer cl.Close()
		}
		conns[cc.Name], pacers[cc.Name] = c, pacer
	}
	eng, err := engine.New(engine.Options{Config: cfg, Store: st, Connectors: conns, Pacers: pacers, Logger: logger})
	if err != nil {
		w.t.Fatal(err)
	}
	w.runs++
	rep, err := eng.Run(ctx, engine.RunOptions{})
	if rep != nil {
		for _, c := range rep.Connectors {
			tot.retries += c.Retries
			tot.reads += c.Reads
			tot.writes += c.Writes
		}
	}
	return rep, err
}

// stormResult is what one world's sync to convergence took.
type stormResult struct {
	runs    int
	calls   int
	records int
	pacer   inProcess
	faults  map[int]int
	expired int
}

func (r stormResult) callsPerRecord() float64 { return float64(r.calls) / float64(r.records) }

// syncToConvergence runs until a run exits 0 and writes nothing, with users
// editing between the first and second run, then checks the outcome.
func (w *world) syncToConvergence(ctx context.Context, scale float64) stormResult {
	w.t.Helper()
	var res stormResult
	for i := 1; ; i++ {
		limit := *flagStormRuns
		if limit <= 0 {
			limit = stormMaxRuns(*flagStormPeople)
		}
		if i > limit {
			w.t.Fatalf("no run exited 0 without writes within %d runs", limit)
		}
		before, callsBefore := w.writes(), w.calls()
		var run inProcess
		rep := w.runInProcess(ctx, scale, &run)
		res.pacer.retries += run.retries
		res.pacer.reads += run.reads
		res.pacer.writes += run.writes
		res.runs++
		// Per-run progress shows how the creates left uncertain by one
		// run are settled by the next (see stormMaxRuns).
		var per []string
		for _, c := range rep.Connectors {
			s := fmt.Sprintf("%s pulled %d changed %d created %d updated %d failed %d retries %d", c.Name, c.Pulled, c.Changed, c.Created, c.Updated, c.Failed, c.Retries)
			if c.Err != nil {
				s += fmt.Sprintf(" stopped: %v", c.Err)
			}
			per = append(per, s)
		}
		w.t.Logf("run %d: exit %d, %d API calls, %d write calls, %d open failed records, %d conflicts; %s",
			i, rep.ExitCode(), w.calls()-callsBefore, w.writes()-before, rep.Failed, rep.Conflicts, strings.Join(per, "; "))
		if i == 1 {
			w.userEdits(*flagStormPeople/20+5, "storm")
			w.addPeople(5, "storm")
			continue
		}
		if rep.ExitCode() == 0 && w.writes() == before {
			break
		}
	}
	res.calls = w.calls()
	for _, t := range w.sim.Tables() {
		res.records += t.Len()
	}
	return res
}

// TestFaultStorm syncs two emulated CRMs that answer a fifth of all calls
// 429 (Retry-After 0 or 1), a tenth 500, with a few milliseconds of
// latency, and expire every session now and then (OpenCRM in login mode,
// and CO3). The sync must converge within stormMaxRuns runs with
// no duplicate, no lost person or edit, and API calls per record within
// stormMaxCallRatio of the same sync without faults.
func TestFaultStorm(t *testing.T) {
	ctx := t.Context()
	people, seed, scale := *flagStormPeople, *flagSeed, *flagSleepScale
	loginMode := func(text string) string {
		if !strings.Contains(text, `auth = "params"`) {
			t.Fatal(`crmsim config no longer sets OpenCRM auth = "params"`)
		}
		return strings.Replace(text, `auth = "params"`, `auth = "login"`, 1)
	}

	calm := newWorld(t, people, seed, rand.New(rand.NewPCG(seed, 1<<32)), loginMode)
	start := time.Now()
	base := calm.syncToConvergence(ctx, scale)
	calm.report(calm.verify(ctx))
	t.Logf("without faults: %d runs, %d API calls for %d records (%.2f per record), %d retries, %v",
		base.runs, base.calls, base.records, base.callsPerRecord(), base.pacer.retries, time.Since(start).Round(time.Millisecond))

	w := newWorld(t, people, seed, rand.New(rand.NewPCG(seed, 1<<32)), loginMode)
	faults := map[string]*stormFaults{
		"opencrm": {rng: rand.New(rand.NewPCG(seed, 1<<33)), expire: w.sim.OpenCRM.ExpireSessions, injected: map[int]int{}},
		"co3":     {rng: rand.New(rand.NewPCG(seed, 1<<34)), expire: w.sim.CO3.ExpireSessions, injected: map[int]int{}},
	}
	w.sim.OpenCRM.SetRandomFaults(faults["opencrm"].fault)
	w.sim.CO3.SetRandomFaults(faults["co3"].fault)
	start = time.Now()
	res := w.syncToConvergence(ctx, scale)
	took := time.Since(start)
	w.sim.OpenCRM.SetRandomFaults(nil)
	w.sim.CO3.SetRandomFaults(nil)
	res.faults = map[int]int{}
	for _, f := range faults {
		for k, v := range f.injected {
			res.faults[k] += v
		}
		res.expired += f.expired
	}
	// Calm again: one more run finds nothing to do.
	before := w.writes()
	var calmTot inProcess
	if rep := w.runInProcess(ctx, scale, &calmTot); rep.ExitCode() != 0 {
		t.Errorf("run after the storm exited %d", rep.ExitCode())
	}
	if n := w.writes() - before; n != 0 {
		t.Errorf("not converged: the run after the storm made %d write calls", n)
	}
	o := w.verify(ctx)
	w.report(o)
	ratio := res.callsPerRecord() / base.callsPerRecord()
	t.Logf("storm: %d runs, %d API calls for %d records (%.2f per record, %.2fx the calm sync), %d retries (%.2f per record), %d×429, %d×500, %d session expiries, %v; duplicates %d, missing %d, lost edits %d of %d",
		res.runs, res.calls, res.records, res.callsPerRecord(), ratio, res.pacer.retries, float64(res.pacer.retries)/float64(res.records),
		res.faults[429], res.faults[500], res.expired, took.Round(time.Millisecond), o.duplicates, o.missing, o.lost, len(w.edits))
	if ratio > stormMaxCallRatio {
		t.Errorf("retries unbounded: %.2f API calls per record, %.2fx the calm sync's %.2f (limit %.1fx)", res.callsPerRecord(), ratio, base.callsPerRecord(), stormMaxCallRatio)
	}
	if res.faults[429] == 0 || res.faults[500] == 0 || res.expired == 0 {
		t.Errorf("the storm did not blow: %v, %d expiries", res.faults, res.expired)
	}
}
