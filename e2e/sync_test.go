package e2e

import (
	"fmt"
	"maps"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/crmsim"
)

// TestRunOnce: the first run merges the people shared between CRMs and
// creates everyone everywhere, a second run writes nothing, edits travel
// both ways, and status and explain tell what happened.
func TestRunOnce(t *testing.T) {
	t.Parallel()
	e := setup(t, crmsim.Options{}, crmsim.ConfigOptions{}, nil)
	n := len(e.sim.People)
	shared := e.sim.People[n/2] // in OpenCRM and CO3, written differently
	if e.sim.FindByEmail("opencrm", shared.Email) == "" || e.sim.FindByEmail("co3", shared.Email) == "" {
		t.Fatalf("person %d is not seeded in both OpenCRM and CO3", n/2)
	}

	r := e.runOnce()
	wantCode(t, r, 0, "first run")
	first := parseReport(t, r.Stdout)
	for _, name := range []string{"opencrm", "co3", "clientbook", "hosting"} {
		if _, ok := first[name]; !ok {
			t.Errorf("first run: no summary row for %s\n%s", name, r.Stdout)
		}
	}
	if first.sum("created") == 0 || first.sum("matched") == 0 {
		t.Errorf("first run created or matched nothing:\n%s", r.Stdout)
	}
	if !regexp.MustCompile(`run 1 ok in `).MatchString(r.Stdout) {
		t.Errorf("first run: no \"run 1 ok\" line:\n%s", r.Stdout)
	}
	e.checkConverged()

	before := e.writeCalls()
	r = e.runOnce()
	wantCode(t, r, 0, "second run")
	if after := e.writeCalls(); !maps.Equal(before, after) {
		t.Errorf("second run wrote: write calls before %v, after %v", before, after)
	}
	if w := parseReport(t, r.Stdout).sum("writes"); w != 0 {
		t.Errorf("second run reports %d writes:\n%s", w, r.Stdout)
	}

	// A user edits a shared person in OpenCRM and another in CO3.
	other := e.sim.People[n/2+1]
	e.sim.Clock.Advance(time.Minute)
	e.sim.OpenCRM.EditAsUser(e.sim.FindByEmail("opencrm", shared.Email), map[string]string{"firstname": "Zelda-E2E"})
	e.sim.CO3.EditAsUser(e.sim.FindByEmail("co3", other.Email), map[string]string{"contact_lastname": "Okonkwo-E2E", "contact_job": "Chief Tester"})
	r = e.runOnce()
	wantCode(t, r, 0, "run after edits")
	check := func(crm, email, field, want string) {
		t.Helper()
		if got := e.fields(crm, email)[field]; got != want {
			t.Errorf("%s %s: %s = %q, want %q", crm, email, field, got, want)
		}
	}
	check("co3", shared.Email, "contact_firstname", "Zelda-E2E")
	check("clientbook", shared.Email, "client_first_name", "Zelda-E2E")
	check("opencrm", other.Email, "lastname", "Okonkwo-E2E")
	check("opencrm", other.Email, "title", "Chief Tester")
	check("clientbook", other.Email, "client_last_name", "Okonkwo-E2E")
	e.checkConverged()

	before = e.writeCalls()
	r = e.runOnce()
	wantCode(t, r, 0, "run after the edits travelled")
	if after := e.writeCalls(); !maps.Equal(before, after) {
		t.Errorf("the run after convergence wrote: write calls before %v, after %v", before, after)
	}

	st := syncd(t, "status", "-config", e.config)
	wantCode(t, st, 0, "status")
	for _, want := range []string{
		"schema version", "last runs:", "run 1", "run 2", "run 3", "run 4",
		fmt.Sprintf("created %d", first["opencrm"]["created"]),
		fmt.Sprintf("pulled %d", first["co3"]["pulled"]),
		"opencrm", "co3", "clientbook", "hosting", "cursors:", "outbox backlog:", "open conflicts: 0",
	} {
		if !strings.Contains(st.Stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, st.Stdout)
		}
	}

	ex := syncd(t, "explain", "-config", e.config, shared.EmailVariant())
	wantCode(t, ex, 0, "explain")
	for _, want := range []string{"entity ", "opencrm record ", "co3 record ", "clientbook record ", "given_name", "job_title", "email"} {
		if !strings.Contains(ex.Stdout, want) {
			t.Errorf("explain lacks %q:\n%s", want, ex.Stdout)
		}
	}
	// The given_name row shows the value once as the entity's and once per
	// linked CRM.
	for _, line := range strings.Split(ex.Stdout, "\n") {
		if strings.HasPrefix(line, "given_name") {
			if c := strings.Count(line, `"Zelda-E2E"`); c < 4 {
				t.Errorf("explain's given_name row shows the value %d times, want the entity's and 3 CRMs':\n%s", c, ex.Stdout)
			}
		}
	}
	if ex := syncd(t, "explain", "-config", e.config, "nobody@nowhere.invalid"); ex.Code == 0 {
		t.Errorf("explain of an unknown address succeeded:\n%s", ex)
	}
}

// TestExitCodes: 2 for bad usage and config, 1 when a connector fails, 3
// when a run leaves an open conflict; resolving it lets the next run
// write the chosen value and exit 0.
func TestExitCodes(t *testing.T) {
	t.Parallel()
	manual := func(s string) string {
		return strings.Replace(s, `policy = "newest"`, `policy = "manual"`, 1)
	}
	e := setup(t, crmsim.Options{People: 40}, crmsim.ConfigOptions{}, manual)

	for _, args := range [][]string{
		{"-config", e.config, "--run-once", "--bogus"},
		{"-config", e.config, "--run-once", "extra"},
		{"frobnicate"},
		{"-config", e.dir + "/missing.toml", "--run-once"},
		{"conflicts"},
		{"explain", "-config", e.config},
	} {
		r := syncd(t, args...)
		wantCode(t, r, 2, strings.Join(args, " "))
		if !strings.Contains(r.Stderr, "syncd") {
			t.Errorf("%v: no message on stderr:\n%s", args, r)
		}
	}

	wantCode(t, e.runOnce(), 0, "first run")

	// The same field edited differently on both sides: a conflict that
	// the manual policy leaves open.
	p := e.sim.People[len(e.sim.People)/2]
	e.sim.Clock.Advance(time.Minute)
	e.sim.OpenCRM.EditAsUser(e.sim.FindByEmail("opencrm", p.Email), map[string]string{"title": "Title From OpenCRM"})
	e.sim.CO3.EditAsUser(e.sim.FindByEmail("co3", p.Email), map[string]string{"contact_job": "Title From CO3"})
	r := e.runOnce()
	wantCode(t, r, 3, "run with a conflict")
	if !strings.Contains(r.Stdout, "1 open conflicts") {
		t.Errorf("the run does not report its open conflict:\n%s", r.Stdout)
	}
	list := syncd(t, "conflicts", "list", "-config", e.config)
	wantCode(t, list, 0, "conflicts list")
	m := regexp.MustCompile(`(?m)^(\d+)\s+\d+\s+job_title\s+open`).FindStringSubmatch(list.Stdout)
	if m == nil || !strings.Contains(list.Stdout, "Title From OpenCRM") || !strings.Contains(list.Stdout, "Title From CO3") {
		t.Fatalf("conflicts list does not show the job_title conflict with both values:\n%s", list.Stdout)
	}
	wantCode(t, syncd(t, "conflicts", "resolve", m[1], "--take", "co3", "-config", e.config), 0, "conflicts resolve")
	r = e.runOnce()
	wantCode(t, r, 0, "run after resolving")
	if got := e.fields("opencrm", p.Email)["title"]; got != "Title From CO3" {
		t.Errorf("OpenCRM title after resolving with co3's value: %q", got)
	}

	// A connector with a wrong key fails the run.
	bad := configure(t, e.sim, crmsim.ConfigOptions{State: e.state}, func(s string) string {
		return strings.Replace(manual(s), e.sim.Creds.CBToken, "wrong-token", 1)
	})
	r = bad.runOnce()
	wantCode(t, r, 1, "run with a wrong Client Book token")
	if !strings.Contains(r.Stdout, "clientbook:") {
		t.Errorf("the failed run does not name the failing connector:\n%s", r)
	}
}
