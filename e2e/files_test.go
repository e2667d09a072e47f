package e2e

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/connectors/emulator"
	"github.com/syncd/syncd/internal/crmsim"
	"github.com/syncd/syncd/internal/state"
)

var flagDiskSize = flag.String("e2e.disk-size", "1280k", "size of the tmpfs that TestFullDisk fills")

// TestStateFileModes: a state database created by a run, its folder and
// its companion files are private to the service user. The WAL and
// shared-memory files exist only while the database is open, so their
// modes are checked during a run, slowed down so that it can be caught.
func TestStateFileModes(t *testing.T) {
	t.Parallel()
	e := setup(t, crmsim.Options{People: 40}, crmsim.ConfigOptions{State: filepath.Join(t.TempDir(), "var", "lib", "state.db")}, nil)
	latency := *flagLatency
	slow := func(string) *emulator.Fault {
		time.Sleep(latency)
		return nil
	}
	for _, h := range []*emulator.Hooks{&e.sim.OpenCRM.Hooks, &e.sim.CO3.Hooks, &e.sim.ClientBook.Hooks} {
		h.SetRandomFaults(slow)
		defer h.SetRandomFaults(nil)
	}
	d := e.start("-config", e.config, "--run-once")
	d.waitFor("writes in the run", func() bool { return e.totalWrites() >= 3 })
	for _, suffix := range []string{"", "-wal", "-shm", ".lock"} {
		if st, err := os.Stat(e.state + suffix); err != nil {
			t.Errorf("during a run: %v", err)
		} else if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v during a run, want 0600", e.state+suffix, st.Mode().Perm())
		}
	}
	if code := d.wait(time.Minute); code != 0 {
		t.Fatalf("run exited %d; stderr:\n%s", code, d.stderr.String())
	}
	if st, err := os.Stat(filepath.Dir(e.state)); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("the state folder syncd created: %v, %v; want mode 0700", st.Mode().Perm(), err)
	}
	for _, suffix := range []string{"", ".lock"} {
		if st, err := os.Stat(e.state + suffix); err != nil {
			t.Error(err)
		} else if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v after a run, want 0600", e.state+suffix, st.Mode().Perm())
		}
	}
}

// readOnly makes paths unwritable even for root (chattr +i), or with
// chmod for other users, and returns what undoes it. It skips the test
// when neither can work here.
func readOnly(t *testing.T, paths ...string) (undo func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		modes := map[string]os.FileMode{}
		for _, p := range paths {
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			modes[p] = st.Mode().Perm()
			if err := os.Chmod(p, st.Mode().Perm()&0o555); err != nil {
				t.Fatal(err)
			}
		}
		undo = func() {
			for p, m := range modes {
				_ = os.Chmod(p, m)
			}
		}
		t.Cleanup(undo)
		return undo
	}
	chattr, err := exec.LookPath("chattr")
	if err != nil {
		t.Skip("running as root without chattr: permissions cannot make the state database read-only here")
	}
	set := func(flag string, p string) error {
		out, err := exec.Command(chattr, flag, p).CombinedOutput()
		if err != nil {
			return &os.PathError{Op: "chattr " + flag, Path: p, Err: errString(strings.TrimSpace(string(out)))}
		}
		return nil
	}
	var done []string
	undo = func() {
		for _, p := range done {
			if err := set("-i", p); err != nil {
				t.Error(err)
			}
		}
		done = nil
	}
	t.Cleanup(undo)
	for _, p := range paths {
		if err := set("+i", p); err != nil {
			undo()
			t.Skipf("running as root and chattr +i does not work here (%v): permissions cannot make the state database read-only", err)
		}
		done = append(done, p)
	}
	return undo
}

type errString string

func (e errString) Error() string { return string(e) }

// errorLine returns the "syncd: …" lines of stderr (the log lines are
// JSON).
func errorLines(stderr string) []string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "syncd: ") {
			out = append(out, l)
		}
	}
	return out
}

// TestReadOnlyState: a state database file or folder that cannot be
// written, before or during a run, stops syncd with an error naming the
// path; with permissions restored, the next run resumes and converges.
func TestReadOnlyState(t *testing.T) {
	t.Parallel()
	e := setup(t, crmsim.Options{People: 100}, crmsim.ConfigOptions{}, nil)
	wantCode(t, e.runOnce(), 0, "first run")
	p := e.sim.People[len(e.sim.People)/2]

	for i, tc := range []struct {
		name  string
		paths []string
	}{
		{"file", []string{e.state}},
		{"folder", []string{e.dir}},
	} {
		e.sim.Clock.Advance(time.Minute)
		title := "Read-Only " + tc.name
		e.sim.OpenCRM.EditAsUser(e.sim.FindByEmail("opencrm", p.Email), map[string]string{"title": title})
		undo := readOnly(t, tc.paths...)
		r := e.runOnce()
		undo()
		if r.Code == 0 {
			t.Fatalf("read-only %s: the run succeeded:\n%s", tc.name, r)
		}
		lines := errorLines(r.Stderr)
		if len(lines) != 1 || !strings.Contains(lines[0], e.state) {
			t.Errorf("read-only %s: want one error line naming %s, got %q\n%s", tc.name, e.state, lines, r)
		}
		r = e.runOnce()
		wantCode(t, r, 0, "run with permissions restored "+string(rune('1'+i)))
		if got := e.fields("co3", p.Email)["contact_job"]; got != title {
			t.Errorf("after the read-only %s: the edit did not travel: %q", tc.name, got)
		}
		e.checkConverged()
	}

	if os.Geteuid() != 0 {
		t.Log("not root: a chmod does not affect a file syncd already holds open, so the mid-run case is left out")
		return
	}
	// During a run: slow writes, and the database becomes read-only
	// while syncd holds it open.
	e.sim.Clock.Advance(time.Minute)
	for _, q := range e.sim.People[:20] {
		if id := e.sim.FindByEmail("co3", q.Email); id != "" {
			e.sim.CO3.EditAsUser(id, map[string]string{"contact_job": "Mid-Run Editor"})
		}
	}
	latency := *flagLatency
	slow := func(string) *emulator.Fault {
		time.Sleep(latency)
		return nil
	}
	e.sim.OpenCRM.SetRandomFaults(slow)
	e.sim.ClientBook.SetRandomFaults(slow)
	before := e.totalWrites()
	d := e.start("-config", e.config, "--run-once")
	d.waitFor("writes in the run", func() bool { return e.totalWrites() >= before+3 })
	paths := []string{e.state}
	if _, err := os.Stat(e.state + "-wal"); err == nil {
		paths = append(paths, e.state+"-wal")
	}
	undo := readOnly(t, paths...)
	code := d.wait(30 * time.Second)
	undo()
	e.sim.OpenCRM.SetRandomFaults(nil)
	e.sim.ClientBook.SetRandomFaults(nil)
	stderr := d.stderr.String()
	t.Logf("run made read-only midway: exit %d; %q", code, errorLines(stderr))
	if strings.Contains(d.stdout.String(), " ok in ") {
		t.Errorf("the run whose database became read-only calls itself ok:\n%s", d.stdout.String())
	}
	if code == 0 {
		t.Errorf("the run whose database became read-only succeeded; stderr:\n%s", stderr)
	} else if lines := errorLines(stderr); len(lines) == 0 || !strings.Contains(strings.Join(lines, "\n")+d.stdout.String(), e.state) {
		t.Errorf("the run whose database became read-only does not name %s:\nstdout:\n%s\nstderr:\n%s", e.state, d.stdout.String(), stderr)
	}
	r := e.runOnce()
	wantCode(t, r, 0, "run after the mid-run failure")
	e.checkConverged()
	for _, q := range e.sim.People[:20] {
		if got := e.fields("opencrm", q.Email)["title"]; e.sim.FindByEmail("co3", q.Email) != "" && got != "Mid-Run Editor" {
			t.Errorf("%s: OpenCRM title %q after the resumed run, want the CO3 edit", q.Email, got)
		}
	}
	before = e.totalWrites()
	wantCode(t, e.runOnce(), 0, "run after convergence")
	if w := e.totalWrites() - before; w != 0 {
		t.Errorf("the run after convergence made %d writes", w)
	}
}

// TestCorruptState: a state file that is not a SQLite database, or whose
// pages are damaged, is refused with a one-line error naming it, and is
// left byte for byte as it was.
func TestCorruptState(t *testing.T) {
	t.Parallel()
	e := setup(t, crmsim.Options{People: 40}, crmsim.ConfigOptions{}, nil)
	wantCode(t, e.runOnce(), 0, "run")
	good, err := os.ReadFile(e.state)
	if err != nil {
		t.Fatal(err)
	}
	damaged := bytes.Clone(good)
	for i := 4096; i < len(damaged) && i < 4096*8; i++ {
		damaged[i] = 0xA5
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"not a database", bytes.Repeat([]byte("this is not a SQLite database\n"), 500)},
		{"damaged pages", damaged},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			for _, args := range [][]string{{"-config", e.config, "--run-once"}, {"status", "-config", e.config}} {
				os.Remove(e.state + "-wal")
				os.Remove(e.state + "-shm")
				if err := os.WriteFile(e.state, tc.data, 0o600); err != nil {
					t.Fatal(err)
				}
				r := syncd(t, args...)
				if r.Code == 0 {
					t.Errorf("%v on a corrupt database succeeded:\n%s", args, r)
				}
				lines := errorLines(r.Stderr)
				if len(lines) != 1 || !strings.Contains(lines[0], e.state) {
					t.Errorf("%v: want one error line naming %s, got %q\n%s", args, e.state, lines, r)
				}
				after, err := os.ReadFile(e.state)
				if err != nil || !bytes.Equal(after, tc.data) {
					t.Errorf("%v changed the corrupt database file (err %v)", args, err)
				}
			}
		})
	}
}

// TestFullDisk: a state database on a disk that fills up during a run
// stops syncd with exit code 1 and one error line naming the database
// and saying it is full; the database stays intact, and once the disk
// has room again the next run resumes and converges. The disk is a small
// tmpfs, so the test needs root (and a kernel that lets it mount one);
// the reliability suite covers the same with a capped database
// everywhere.
func TestFullDisk(t *testing.T) {
	t.Parallel()
	disk := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(disk, 0o700); err != nil {
		t.Fatal(err)
	}
	mount := func(size string, opts ...string) error {
		args := []string{"-t", "tmpfs", "-o", strings.Join(append(opts, "size="+size, "mode=0700"), ","), "tmpfs", disk}
		if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("mount %v: %v: %s", args, err, bytes.TrimSpace(out))
		}
		return nil
	}
	if os.Geteuid() != 0 {
		t.Skip("not root: cannot mount a small tmpfs to fill")
	}
	if err := mount(*flagDiskSize); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill: %v", err)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", disk).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", disk, err, out)
		}
	})
	e := setup(t, crmsim.Options{}, crmsim.ConfigOptions{State: filepath.Join(disk, "state.db")}, nil)

	r := e.runOnce()
	t.Logf("run on a %s disk: %s", *flagDiskSize, r)
	if r.Code != 1 {
		t.Errorf("run on a full disk: want exit 1, got\n%s", r)
	}
	lines := errorLines(r.Stderr)
	if len(lines) != 1 || !strings.Contains(lines[0], e.state+": database or disk is full") {
		t.Errorf("want one error line saying %s is full, got %q\n%s", e.state, lines, r)
	}
	// The default size fills while pushes are recorded; other sizes (or
	// a changed schema) may fill it sooner.
	t.Logf("%d writes reached the CRMs before the disk filled", e.totalWrites())
	checkIntegrity(t, e.state)

	if err := mount("64m", "remount"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, e.runOnce(), 0, "run with room again")
	before := e.totalWrites()
	wantCode(t, e.runOnce(), 0, "run after convergence")
	if w := e.totalWrites() - before; w != 0 {
		t.Errorf("the run after convergence made %d writes", w)
	}
	e.checkConverged()
	checkIntegrity(t, e.state)
}

// checkIntegrity fails the test unless SQLite finds the state database at
// path intact.
func checkIntegrity(t *testing.T, path string) {
	t.Helper()
	st, err := state.Open(t.Context(), path, state.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var res string
	if err := st.ReadDB.QueryRowContext(t.Context(), "PRAGMA integrity_check").Scan(&res); err != nil || res != "ok" {
		t.Errorf("integrity_check of %s: %q, %v", path, res, err)
	}
}
