package e2e

import (
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/connectors/emulator"
	"github.com/syncd/syncd/internal/crmsim"
)

// setFaults gives the OpenCRM, CO3 and Client Book emulators of e the
// fault function fn (nil for none).
func setFaults(e *env, fn func(method string) *emulator.Fault) {
	e.sim.OpenCRM.SetRandomFaults(fn)
	e.sim.CO3.SetRandomFaults(fn)
	e.sim.ClientBook.SetRandomFaults(fn)
}

// slowEmulators adds latency to every emulator call of e, so that a run
// is long enough to interrupt; the returned func removes it.
func slowEmulators(e *env, latency time.Duration) (undo func()) {
	setFaults(e, func(string) *emulator.Fault {
		time.Sleep(latency)
		return nil
	})
	return func() { setFaults(e, nil) }
}

// TestSecondSignalStopsAtOnce: a first SIGTERM lets the work in hand
// finish; a second one ends the daemon at once, with exit 1, even while
// a slow call is under way. The next run converges without duplicates.
func TestSecondSignalStopsAtOnce(t *testing.T) {
	t.Parallel()
	e := setup(t, crmsim.Options{}, crmsim.ConfigOptions{}, hourly)
	// Each write takes 3 s: a write in hand is let finish after the first
	// signal, and outlasts the second.
	slowWrite := func(method string) *emulator.Fault {
		if method == "edit_contact" || method == "setContact" || strings.HasPrefix(method, "clients/add") || strings.HasPrefix(method, "clients/edit") {
			time.Sleep(3 * time.Second)
		}
		return nil
	}
	setFaults(e, slowWrite)
	d := e.startDaemon()
	d.waitFor("the first cycle's push", func() bool { return e.totalWrites() >= 1 })
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	d.waitFor("the first signal's message", func() bool {
		return strings.Contains(d.stderr.String(), "send again to stop at once")
	})
	start := time.Now()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code := d.wait(5 * time.Second)
	took := time.Since(start)
	if code != 1 {
		t.Errorf("second SIGTERM: exit %d, want 1; stderr:\n%s", code, d.stderr.String())
	}
	if took > 1500*time.Millisecond {
		t.Errorf("second SIGTERM took %s to stop syncd, want at once (a write in hand takes 3 s)", took)
	}
	if !strings.Contains(d.stderr.String(), "stopping at once") {
		t.Errorf("no word of stopping at once:\n%s", d.stderr.String())
	}
	setFaults(e, nil)
	wantCode(t, e.runOnce(), 0, "run-once after a daemon stopped at once")
	e.checkConverged()
}

// TestRunOnceSIGTERM: SIGTERM during `syncd --run-once` finishes the
// page or push in hand, commits and exits 0 within 10 s; status shows the
// run as interrupted, and the next run resumes and converges.
func TestRunOnceSIGTERM(t *testing.T) {
	t.Parallel()
	e := setup(t, crmsim.Options{}, crmsim.ConfigOptions{OpenCRMPageSize: 10}, nil)
	undo := slowEmulators(e, *flagLatency)
	d := e.start("-config", e.config, "--run-once")
	d.waitFor("the pull", func() bool {
		return e.calls("opencrm", "get_contact_list_full") >= 3 && e.totalWrites() == 0
	})
	code, took := d.stop()
	t.Logf("run-once stopped %s after SIGTERM", took.Round(time.Millisecond))
	if code != 0 {
		t.Errorf("SIGTERM during --run-once: exit %d; stderr:\n%s", code, d.stderr.String())
	}
	st := syncd(t, "status", "-config", e.config)
	wantCode(t, st, 0, "status after the interrupted run")
	if !regexp.MustCompile(`(?m)^\s+run 1\s.*\sinterrupted\s`).MatchString(st.Stdout) {
		t.Errorf("status does not show run 1 as interrupted:\n%s", st.Stdout)
	}
	undo()
	wantCode(t, e.runOnce(), 0, "run-once after the interrupted run")
	e.checkConverged()
}

// TestSlowCycleSkipsTheNext: a cycle that outlasts the schedule's
// interval makes the scheduler skip the cycles due meanwhile (saying so),
// never run two at once; the daemon then stops cleanly.
func TestSlowCycleSkipsTheNext(t *testing.T) {
	t.Parallel()
	everySecond := func(s string) string {
		return strings.Replace(s, `schedule = "@every 1m"`, `schedule = "@every 1s"`, 1)
	}
	e := setup(t, crmsim.Options{}, crmsim.ConfigOptions{OpenCRMPageSize: 10, LogLevel: "info"}, everySecond)
	undo := slowEmulators(e, 100*time.Millisecond)
	d := e.startDaemon()
	d.waitFor("a skipped cycle", func() bool {
		return strings.Contains(d.stderr.String(), "scheduled cycle skipped")
	})
	undo()
	st := syncd(t, "status", "-config", e.config)
	if n := len(regexp.MustCompile(`(?m)^\s+run \d+\s.*\srunning\s`).FindAllString(st.Stdout, -1)); n > 1 {
		t.Errorf("%d runs at once:\n%s", n, st.Stdout)
	}
	if code, _ := d.stop(); code != 0 {
		t.Errorf("SIGTERM: exit %d; stderr:\n%s", code, d.stderr.String())
	}
}
