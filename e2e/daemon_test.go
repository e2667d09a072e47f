package e2e

import (
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/crmsim"
)

// hourly makes a config's schedule "@every 1h", so that a daemon runs only
// its start-up cycle during a test.
func hourly(s string) string {
	return strings.Replace(s, `schedule = "@every 1m"`, `schedule = "@every 1h"`, 1)
}

// daemon is a syncd running in the background, usually `syncd -config F`.
type daemon struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdout lockedBuffer
	stderr lockedBuffer
	done   chan struct{}
	err    error
}

func (e *env) startDaemon() *daemon {
	e.t.Helper()
	return e.start("-config", e.config)
}

// start starts syncd with args in the background.
func (e *env) start(args ...string) *daemon {
	e.t.Helper()
	needBinaries(e.t)
	d := &daemon{t: e.t, done: make(chan struct{})}
	d.cmd = exec.Command(binaries.syncd, args...)
	d.cmd.Stdout, d.cmd.Stderr = &d.stdout, &d.stderr
	if err := d.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	e.t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	})
	return d
}

// stop sends SIGTERM and returns the exit code and how long the exit took;
// it fails the test when the daemon is still running after 10 seconds.
func (d *daemon) stop() (int, time.Duration) {
	d.t.Helper()
	start := time.Now()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		d.t.Fatal(err)
	}
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		d.t.Fatalf("syncd still running 10 s after SIGTERM; stderr:\n%s", d.stderr.String())
	}
	return d.exitCode(), time.Since(start)
}

// wait waits up to timeout for syncd to exit by itself and returns its
// exit code.
func (d *daemon) wait(timeout time.Duration) int {
	d.t.Helper()
	select {
	case <-d.done:
	case <-time.After(timeout):
		d.t.Fatalf("syncd still running after %s; stderr:\n%s", timeout, d.stderr.String())
	}
	return d.exitCode()
}

func (d *daemon) exitCode() int {
	d.t.Helper()
	noRace(d.t, d.stderr.String())
	var ee *exec.ExitError
	switch {
	case d.err == nil:
		return 0
	case errors.As(d.err, &ee):
		return ee.ExitCode()
	}
	d.t.Fatalf("syncd: %v", d.err)
	return -1
}

// waitFor polls cond every 10 ms for up to 30 s.
func (d *daemon) waitFor(what string, cond func() bool) {
	d.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		select {
		case <-d.done:
			d.t.Fatalf("syncd exited while waiting for %s: %v; stderr:\n%s", what, d.err, d.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("no %s within 30 s; stderr:\n%s", what, d.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDaemon: the daemon runs its first cycle at start, refuses a second
// syncd on the same database naming itself, keeps its files private, lets
// status read beside it, and exits 0 soon after SIGTERM.
func TestDaemon(t *testing.T) {
	t.Parallel()
	e := setup(t, crmsim.Options{}, crmsim.ConfigOptions{}, hourly)
	d := e.startDaemon()
	firstRunOK := regexp.MustCompile(`(?m)^\s+run 1\s.*\sok\s`)
	var status result
	d.waitFor("finished first run in syncd status", func() bool {
		status = syncd(t, "status", "-config", e.config)
		return status.Code == 0 && firstRunOK.MatchString(status.Stdout)
	})
	e.checkConverged()

	r := e.runOnce()
	if r.Code == 0 {
		t.Fatalf("a second syncd on the same database was not refused:\n%s", r)
	}
	pid := strconv.Itoa(d.cmd.Process.Pid)
	if !strings.Contains(r.Stderr, "in use by another syncd") || !regexp.MustCompile(`\bpid `+pid+`\b`).MatchString(r.Stderr) {
		t.Errorf("the refusal does not name the running syncd (pid %s):\n%s", pid, r)
	}

	// The database, its WAL and shared-memory files, and the lock file
	// are private while the daemon holds them.
	for _, suffix := range []string{"", "-wal", "-shm", ".lock"} {
		st, err := os.Stat(e.state + suffix)
		if err != nil {
			if suffix == "-wal" || suffix == "-shm" {
				continue
			}
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v while the daemon runs, want 0600", e.state+suffix, st.Mode().Perm())
		}
	}

	code, took := d.stop()
	if code != 0 {
		t.Errorf("SIGTERM: exit %d; stderr:\n%s", code, d.stderr.String())
	}
	t.Logf("idle daemon stopped %s after SIGTERM", took.Round(time.Millisecond))
	if !strings.Contains(d.stderr.String(), `"msg":"stopped"`) {
		t.Errorf("the daemon did not log that it stopped:\n%s", d.stderr.String())
	}
	// With the daemon gone the database is free again.
	before := e.writeCalls()
	wantCode(t, e.runOnce(), 0, "run-once after the daemon stopped")
	if after := e.writeCalls(); e.totalWrites() != sum(before) {
		t.Errorf("run-once after the daemon's run wrote: before %v, after %v", before, after)
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// TestDaemonStopDuringRun: SIGTERM in the middle of a slow first cycle,
// while it pulls or while it pushes, ends the daemon with exit 0 within
// 10 s, and the next --run-once resumes and converges without duplicates.
func TestDaemonStopDuringRun(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		phase string
		// busy reports whether the daemon is in the phase.
		busy func(e *env) bool
	}{
		{"pull", func(e *env) bool {
			return e.calls("opencrm", "get_contact_list")+e.calls("opencrm", "get_contact_list_full") >= 3 && e.totalWrites() == 0
		}},
		{"push", func(e *env) bool { return e.totalWrites() >= 5 }},
	} {
		t.Run(tc.phase, func(t *testing.T) {
			t.Parallel()
			// Small OpenCRM pages make its pull many calls long.
			e := setup(t, crmsim.Options{}, crmsim.ConfigOptions{OpenCRMPageSize: 10}, hourly)
			undo := slowEmulators(e, *flagLatency)

			d := e.startDaemon()
			d.waitFor("the first cycle's "+tc.phase, func() bool { return tc.busy(e) })
			code, took := d.stop()
			t.Logf("daemon stopped %s after SIGTERM during the %s, after %d writes", took.Round(time.Millisecond), tc.phase, e.totalWrites())
			if code != 0 {
				t.Errorf("SIGTERM during a run: exit %d; stderr:\n%s", code, d.stderr.String())
			}
			if !strings.Contains(d.stderr.String(), "interrupted") {
				t.Errorf("the daemon did not log an interrupted run:\n%s", d.stderr.String())
			}
			st := syncd(t, "status", "-config", e.config)
			wantCode(t, st, 0, "status after the interrupted run")
			if !regexp.MustCompile(`(?m)^\s+run 1\s.*\sinterrupted\s`).MatchString(st.Stdout) {
				t.Errorf("status does not show run 1 as interrupted:\n%s", st.Stdout)
			}

			undo()
			r := e.runOnce()
			wantCode(t, r, 0, "run-once after the interrupted run")
			e.checkConverged()
			before := e.totalWrites()
			r = e.runOnce()
			wantCode(t, r, 0, "run-once after convergence")
			if w := e.totalWrites() - before; w != 0 {
				t.Errorf("the run after convergence made %d writes:\n%s", w, r.Stdout)
			}
		})
	}
}
