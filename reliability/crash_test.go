// Crash trials and fault storms for syncd.
//
// The default run is the CI version (a few trials on a small sample, well
// under a minute and a half with -race on two cores):
//
//	go test -race ./reliability
//
// The full version, at the size of a real first sync:
//
//	go test ./reliability -run Crash -trials 20 -people 20000 -timeout 30m
//	go test ./reliability -run Storm -storm-people 20000 -timeout 30m
//
// The fault storm runs the engine in the test process, wired as the
// binary wires it, because its pacers' waits (Retry-After, backoff) are
// scaled by -storm-sleep-scale (default 0.01) so that thousands of
// Retry-After: 1 replies do not take an hour; -storm-sleep-scale 1 waits
// in full. Its cap on the runs to convergence grows with -storm-people
// (see stormMaxRuns); -storm-max-runs N sets another, to see how many
// runs a storm needs.
//
// -seed N picks the sample people, the kill moments and the user edits;
// a failing trial is replayed with the same -seed (and -trials, since
// trial i uses the seed's i-th stream). Kill moments that depend on timing
// (a kill after a random delay) land on different work on another
// machine; kills on the n-th API call land on the same call.
//
// Crash trial: the real syncd binary (built from this module) syncs two
// emulated CRMs (OpenCRM and CO3, served by crmsim inside the test
// process, so they survive the kills). The first sync is killed with
// SIGKILL one to three times, each time either after a random delay
// within the length of an uninterrupted first sync (halved for each
// rerun), or while an emulator
// is handling the n-th API call (the call then completes for a client that
// is gone: a create that reached the CRM just before the crash). Between
// runs users edit contacts in both CRMs, sometimes the same field of the
// same person on both sides, and add people. syncd is rerun to completion;
// then users edit again and an incremental run is killed on a random
// write; then it is rerun to completion once more. The trial passes when
// no CRM holds an e-mail twice, every person is in both CRMs, the last
// edit of every edited field is the value in both CRMs (or lost a conflict
// under policy newest that the state database recorded), and one more run
// exits 0 with no write call.
package reliability

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// crashTotals add up the trials for the summary.
type crashTotals struct {
	trials, kills, killsLanded, runs, edits, conflicts int
	duplicates, missing, lost                          int
}

func TestCrash(t *testing.T) {
	bin := syncdBinary(t)
	ctx := t.Context()
	people, trials, seed := *flagPeople, *flagTrials, *flagSeed

	// An uninterrupted first sync gives the scale of the kill moments
	// (its length and API calls) and checks the plain path.
	var firstSync time.Duration
	var firstCalls int
	t.Run("uninterrupted", func(t *testing.T) {
		w := newWorld(t, people, seed, rand.New(rand.NewPCG(seed, 0)), nil)
		w.bin = bin
		start := time.Now()
		if p := w.runOnce(ctx); p.code != 0 {
			t.Fatalf("first sync exited %d:\n%s", p.code, p.tail())
		}
		firstSync, firstCalls = time.Since(start), w.calls()
		w.checkConverged(ctx)
		w.report(w.verify(ctx))
		t.Logf("first sync of %d people: %v, %d API calls", people, firstSync.Round(time.Millisecond), firstCalls)
	})
	if firstSync == 0 {
		t.FailNow()
	}

	var tot crashTotals
	for trial := 1; trial <= trials; trial++ {
		t.Run(fmt.Sprintf("trial%02d", trial), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, uint64(trial)))
			w := newWorld(t, people, seed, rng, nil)
			w.bin = bin
			kills := 1 + rng.IntN(3)
			var plan []string
			for k := range kills {
				var landed bool
				// Each rerun has less left to do: later kills come sooner.
				if rng.IntN(2) == 0 {
					d := time.Duration(rng.Int64N(int64(firstSync) >> k))
					plan = append(plan, fmt.Sprintf("after %v", d.Round(time.Millisecond)))
					landed = w.killAfter(ctx, d)
				} else {
					n := 1 + rng.IntN(max(firstCalls>>k, 1))
					plan = append(plan, fmt.Sprintf("at call %d", n))
					landed = w.killAtCall(ctx, n, false)
				}
				if landed {
					tot.killsLanded++
				} else {
					plan[len(plan)-1] += " (run ended first)"
				}
				w.userEdits(people/100+5, fmt.Sprintf("t%d k%d", trial, k))
				w.addPeople(1+people/1000, fmt.Sprintf("t%d k%d", trial, k))
			}
			w.converge(ctx, 6)
			// An incremental run with edits to push, killed on a write.
			w.userEdits(people/50+5, fmt.Sprintf("t%d inc", trial))
			w.addPeople(2, fmt.Sprintf("t%d inc", trial))
			n := 1 + rng.IntN(people/50+5)
			plan = append(plan, fmt.Sprintf("incremental at write %d", n))
			if w.killAtCall(ctx, n, true) {
				tot.killsLanded++
			} else {
				plan[len(plan)-1] += " (run ended first)"
			}
			kills++
			w.userEdits(people/100+5, fmt.Sprintf("t%d after", trial))
			w.converge(ctx, 6)
			w.checkConverged(ctx)
			o := w.verify(ctx)
			w.report(o)
			tot.trials++
			tot.kills += kills
			tot.runs += w.runs
			tot.edits += len(w.edits)
			tot.conflicts += o.explained
			tot.duplicates += o.duplicates
			tot.missing += o.missing
			tot.lost += o.lost
			t.Logf("kills %v; %d runs, %d edits, %d settled by conflict; duplicates %d, missing %d, lost edits %d",
				plan, w.runs, len(w.edits), o.explained, o.duplicates, o.missing, o.lost)
		})
	}
	t.Logf("crash trials: %d trials of %d people (seed %d), %d kills (%d during a run), %d syncd runs, %d user edits (%d lost a recorded conflict); duplicates %d, missing %d, lost edits %d",
		tot.trials, people, seed, tot.kills, tot.killsLanded, tot.runs, tot.edits, tot.conflicts, tot.duplicates, tot.missing, tot.lost)
}
