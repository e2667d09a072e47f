package reliability

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/connectors/emulator"
	"github.com/syncd/syncd/internal/crmsim"
	"github.com/syncd/syncd/internal/state"
)

var (
	flagSeed   = flag.Uint64("seed", 1, "seed of the sample people, kill moments and user edits")
	flagTrials = flag.Int("trials", 3, "crash trials to run")
	flagPeople = flag.Int("people", 2000, "sample people of each crash trial")
	flagKeep   = flag.String("keep", "", "keep each world's config, state database and syncd logs in this folder")
)

// binary is the syncd binary built once for the whole package.
var binary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if binary.dir != "" {
		os.RemoveAll(binary.dir)
	}
	os.Exit(code)
}

// syncdBinary builds cmd/syncd of this module (once) and returns its path.
func syncdBinary(t *testing.T) string {
	t.Helper()
	binary.once.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		out, err := exec.Command(goTool, "env", "GOMOD").Output()
		if err != nil {
			binary.err = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		binary.dir, binary.err = os.MkdirTemp("", "syncd-reliability-")
		if binary.err != nil {
			return
		}
		binary.path = filepath.Join(binary.dir, "syncd")
		cmd := exec.Command(goTool, "build", "-o", binary.path, "./cmd/syncd")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			binary.err = fmt.Errorf("go build ./cmd/syncd: %w\n%s", err, out)
		}
	})
	if binary.err != nil {
		t.Fatal(binary.err)
	}
	return binary.path
}

// editable are the fields users edit in the trials: plain text on both
// sides (no transform), so a value written is the value synced. E-mail
// stays as it is: it names the person in the checks.
var editable = []struct{ canonical, opencrm, co3 string }{
	{"job_title", "title", "contact_job"},
	{"notes", "description", "contact_note"},
	{"family_name", "lastname", "contact_lastname"},
	{"street", "mailingstreet", "contact_address"},
}

var crms = []string{"opencrm", "co3"}

// edit is one change a user made in one CRM.
type edit struct {
	seq   int
	crm   string
	email string // normalised: names the person
	field string // canonical
	value string
}

// world is one simulated pair of CRMs and one syncd state folder.
type world struct {
	t    *testing.T
	sim  *crmsim.Sim
	dir  string
	cfg  string
	db   string
	bin  string
	rng  *rand.Rand
	runs int
	// edits and added people, in the order users made them.
	edits []edit
	added []string
	seq   int
}

// newWorld starts the emulators with people sample people and writes a
// config for them; adjust may rewrite the config text.
func newWorld(t *testing.T, people int, seed uint64, rng *rand.Rand, adjust func(string) string) *world {
	t.Helper()
	sim, err := crmsim.Start(crmsim.Options{People: people, Seed: seed, Only: crms})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	dir := t.TempDir()
	if *flagKeep != "" {
		dir = filepath.Join(*flagKeep, strings.ReplaceAll(t.Name(), "/", "_"))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	w := &world{t: t, sim: sim, dir: dir, cfg: filepath.Join(dir, "syncd.toml"), db: filepath.Join(dir, "state.db"), rng: rng}
	text, err := sim.Config(crmsim.ConfigOptions{State: w.db, LogLevel: "warn", LogFormat: "json"})
	if err != nil {
		t.Fatal(err)
	}
	if adjust != nil {
		text = adjust(text)
	}
	if err := os.WriteFile(w.cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

// hooks returns both emulators' hooks.
func (w *world) hooks() []*emulator.Hooks {
	return []*emulator.Hooks{&w.sim.OpenCRM.Hooks, &w.sim.CO3.Hooks}
}

// calls is the number of API calls both emulators answered.
func (w *world) calls() int {
	return w.sim.OpenCRM.Calls("*") + w.sim.CO3.Calls("*")
}

// writes is the number of write calls both emulators received.
func (w *world) writes() int {
	return w.sim.OpenCRM.Calls("edit_contact") + w.sim.CO3.Calls("setContact")
}

func isWrite(method string) bool { return method == "edit_contact" || method == "setContact" }

// proc is one running syncd.
type proc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	code int
	// killed is set when kill -9 ended it.
	killed bool
}

// start starts syncd --run-once.
func (w *world) start(ctx context.Context) *proc {
	w.t.Helper()
	w.runs++
	p := &proc{log: filepath.Join(w.dir, fmt.Sprintf("run-%02d.log", w.runs)), done: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		w.t.Fatal(err)
	}
	p.cmd = exec.CommandContext(ctx, w.bin, "-config", w.cfg, "--run-once")
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		f.Close()
		w.t.Fatal(err)
	}
	go func() {
		err := p.cmd.Wait()
		f.Close()
		p.code = p.cmd.ProcessState.ExitCode()
		if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			p.killed = true
		}
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			p.code = -2
		}
		close(p.done)
	}()
	return p
}

// kill sends SIGKILL (kill -9); it is harmless once the process ended.
func (p *proc) kill() { _ = p.cmd.Process.Signal(syscall.SIGKILL) }

func (p *proc) wait() *proc {
	<-p.done
	return p
}

// tail returns the last lines of the run's output.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 25 {
		lines = lines[len(lines)-25:]
	}
	return strings.Join(lines, "\n")
}

// runOnce runs syncd --run-once to its end.
func (w *world) runOnce(ctx context.Context) *proc { return w.start(ctx).wait() }

// killAfter runs syncd and kills it after d. It reports whether the kill
// came before the run ended.
func (w *world) killAfter(ctx context.Context, d time.Duration) bool {
	p := w.start(ctx)
	tm := time.AfterFunc(d, p.kill)
	p.wait()
	tm.Stop()
	return w.afterKill(p)
}

// killAtCall runs syncd and kills it while the emulators are handling its
// n-th call (its n-th write when writesOnly): the call is then carried out
// for a client that is gone, like a create that reached the CRM just
// before a crash.
func (w *world) killAtCall(ctx context.Context, n int, writesOnly bool) bool {
	p := w.start(ctx)
	var mu sync.Mutex
	count := 0
	hook := func(method string) *emulator.Fault {
		if writesOnly && !isWrite(method) {
			return nil
		}
		mu.Lock()
		count++
		hit := count == n
		mu.Unlock()
		if hit {
			p.kill()
			// Let the signal land before the emulator answers.
			<-p.done
		}
		return nil
	}
	for _, h := range w.hooks() {
		h.SetRandomFaults(hook)
	}
	p.wait()
	for _, h := range w.hooks() {
		h.SetRandomFaults(nil)
	}
	return w.afterKill(p)
}

func (w *world) afterKill(p *proc) bool {
	if !p.killed && p.code != 0 && p.code != 3 {
		w.t.Fatalf("syncd run %s exited %d before the kill:\n%s", p.log, p.code, p.tail())
	}
	return p.killed
}

// converge runs syncd until a run exits 0, at most maxRuns times.
func (w *world) converge(ctx context.Context, maxRuns int) int {
	w.t.Helper()
	var p *proc
	for i := 1; i <= maxRuns; i++ {
		p = w.runOnce(ctx)
		if p.code == 0 {
			return i
		}
		if p.code == 2 {
			break
		}
	}
	w.t.Fatalf("no clean run within %d runs; last exited %d:\n%s", maxRuns, p.code, p.tail())
	return 0
}

// checkConverged runs syncd once more: it must exit 0 and write nothing.
func (w *world) checkConverged(ctx context.Context) {
	w.t.Helper()
	before := w.writes()
	p := w.runOnce(ctx)
	if p.code != 0 {
		w.t.Fatalf("convergence run exited %d:\n%s", p.code, p.tail())
	}
	if n := w.writes() - before; n != 0 {
		w.t.Errorf("not converged: one more run made %d write calls", n)
	}
}

func normEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// contact is one live contact of a CRM.
type contact struct {
	id     string
	fields map[string]string
}

// index lists crm's live contacts by normalised e-mail; dups counts the
// e-mails held by more than one contact.
func (w *world) index(crm string) (byEmail map[string][]contact) {
	byEmail = map[string][]contact{}
	field := crmsim.EmailFields[crm]
	for _, c := range w.sim.Tables()[crm].List(nil) {
		e := normEmail(c.Fields[field])
		byEmail[e] = append(byEmail[e], contact{id: emulator.FormatID(c.ID), fields: c.Fields})
	}
	return byEmail
}

func (w *world) editAsUser(crm, id string, fields map[string]string) {
	switch crm {
	case "opencrm":
		w.sim.OpenCRM.EditAsUser(id, fields)
	default:
		w.sim.CO3.EditAsUser(id, fields)
	}
}

func crmField(crm string, i int) string {
	if crm == "opencrm" {
		return editable[i].opencrm
	}
	return editable[i].co3
}

// userEdits makes n random edits as users of either CRM would, and records
// them. Some edit the same person's same field in both CRMs: a conflict.
func (w *world) userEdits(n int, label string) {
	idx := map[string]map[string][]contact{}
	emails := map[string][]string{}
	for _, crm := range crms {
		idx[crm] = w.index(crm)
		emails[crm] = slices.Sorted(maps.Keys(idx[crm]))
	}
	for range n {
		crm := crms[w.rng.IntN(len(crms))]
		if len(emails[crm]) == 0 {
			continue
		}
		email := emails[crm][w.rng.IntN(len(emails[crm]))]
		f := w.rng.IntN(len(editable))
		sides := []string{crm}
		if other := crms[1-slices.Index(crms, crm)]; len(idx[other][email]) > 0 && w.rng.IntN(6) == 0 {
			sides = append(sides, other)
		}
		for _, side := range sides {
			w.seq++
			v := fmt.Sprintf("%s %s by %s #%d", label, editable[f].canonical, side, w.seq)
			w.editAsUser(side, idx[side][email][0].id, map[string]string{crmField(side, f): v})
			w.edits = append(w.edits, edit{seq: w.seq, crm: side, email: email, field: editable[f].canonical, value: v})
		}
	}
}

// addPeople adds n new people as users of one CRM or the other would.
func (w *world) addPeople(n int, label string) {
	for range n {
		w.seq++
		email := fmt.Sprintf("new.%s.%d@example.org", strings.ReplaceAll(label, " ", "-"), w.seq)
		phone := fmt.Sprintf("7700 9%05d", w.seq%100000)
		switch crms[w.rng.IntN(len(crms))] {
		case "opencrm":
			w.sim.OpenCRM.Seed(map[string]string{"firstname": "New", "lastname": fmt.Sprint("Person ", w.seq), "email": email, "phone": "0" + phone})
		default:
			w.sim.CO3.Seed(map[string]string{"contact_type": "0", "contact_firstname": "New", "contact_lastname": fmt.Sprint("Person ", w.seq), "contact_email": strings.ToUpper(email[:1]) + email[1:], "contact_phone": "+44 " + phone})
		}
		w.added = append(w.added, email)
	}
}

// outcome is what verify found.
type outcome struct {
	duplicates, missing, lost, explained int
	problems                             []string
}

func (o *outcome) problem(format string, args ...any) {
	if len(o.problems) < 20 {
		o.problems = append(o.problems, fmt.Sprintf(format, args...))
	}
}

// verify checks, with syncd stopped: no e-mail is held twice in a CRM,
// every person is in both CRMs, and the last edit of every edited field
// is the value in both CRMs unless a conflict recorded in the state
// database explains the value that won.
func (w *world) verify(ctx context.Context) outcome {
	var o outcome
	idx := map[string]map[string][]contact{}
	for _, crm := range crms {
		idx[crm] = w.index(crm)
		for e, cs := range idx[crm] {
			if len(cs) > 1 {
				o.duplicates += len(cs) - 1
				o.problem("%s holds %d contacts with e-mail %q", crm, len(cs), e)
			}
		}
	}
	want := slices.Clone(w.added)
	for _, p := range w.sim.People {
		want = append(want, p.Email)
	}
	for _, e := range want {
		for _, crm := range crms {
			if len(idx[crm][normEmail(e)]) == 0 {
				o.missing++
				o.problem("%s lacks %s", crm, e)
			}
		}
	}
	st, err := state.Open(ctx, w.db, state.Options{ReadOnly: true})
	if err != nil {
		w.t.Fatal(err)
	}
	conflicts, err := st.Conflicts(ctx, "", 1<<30)
	st.Close()
	if err != nil {
		w.t.Fatal(err)
	}
	// A value that lost a conflict, by field and value: the value that won.
	lostTo := map[[2]string][]string{}
	for _, c := range conflicts {
		for _, v := range c.Candidates {
			if v != c.Decision {
				k := [2]string{c.Field, v}
				lostTo[k] = append(lostTo[k], c.Decision)
			}
		}
	}
	last := map[[2]string]edit{}
	for _, e := range w.edits {
		last[[2]string{e.email, e.field}] = e
	}
	for _, k := range slices.SortedFunc(maps.Keys(last), func(a, b [2]string) int { return strings.Compare(a[0]+a[1], b[0]+b[1]) }) {
		e := last[k]
		f := slices.IndexFunc(editable, func(x struct{ canonical, opencrm, co3 string }) bool { return x.canonical == e.field })
		var got []string
		for _, crm := range crms {
			v := "<missing>"
			if cs := idx[crm][e.email]; len(cs) > 0 {
				v = cs[0].fields[crmField(crm, f)]
			}
			got = append(got, v)
		}
		switch {
		case got[0] == e.value && got[1] == e.value:
		case got[0] == got[1] && slices.Contains(lostTo[[2]string{e.field, e.value}], got[0]):
			o.explained++
		default:
			o.lost++
			o.problem("edit #%d (%s %s %s = %q) lost: opencrm has %q, co3 has %q", e.seq, e.crm, e.email, e.field, e.value, got[0], got[1])
		}
	}
	return o
}

// report fails the test on any problem of o.
func (w *world) report(o outcome) {
	w.t.Helper()
	if o.duplicates+o.missing+o.lost == 0 {
		return
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d duplicates, %d missing, %d lost edits (db %s):\n", o.duplicates, o.missing, o.lost, w.db)
	for _, p := range o.problems {
		fmt.Fprintf(&b, "  %s\n", p)
	}
	w.t.Error(b.String())
}
