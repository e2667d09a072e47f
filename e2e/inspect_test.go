package e2e

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/connectors/emulator"
	"github.com/syncd/syncd/internal/crmsim"
)

// TestInspection: what an operator reads when something needs a person —
// `conflicts show` with base, values, policy and decision; `conflicts
// resolve --value`; failed records with the CRM's message and parked
// ambiguous matches in `syncd status` — and that each is acted on.
func TestInspection(t *testing.T) {
	t.Parallel()
	manual := func(s string) string {
		return strings.Replace(s, `policy = "newest"`, `policy = "manual"`, 1)
	}
	e := setup(t, crmsim.Options{People: 40}, crmsim.ConfigOptions{}, manual)
	wantCode(t, e.runOnce(), 0, "first run")
	people := e.sim.People
	shared := people[len(people)/2] // in OpenCRM and CO3

	// A conflict under the manual policy, settled with a value of one's own.
	e.sim.Clock.Advance(time.Minute)
	e.sim.OpenCRM.EditAsUser(e.sim.FindByEmail("opencrm", shared.Email), map[string]string{"title": "Title From OpenCRM"})
	e.sim.CO3.EditAsUser(e.sim.FindByEmail("co3", shared.Email), map[string]string{"contact_job": "Title From CO3"})
	wantCode(t, e.runOnce(), 3, "run with a conflict")
	list := syncd(t, "conflicts", "list", "-config", e.config)
	m := regexp.MustCompile(`(?m)^(\d+)\s+\d+\s+job_title\s+open`).FindStringSubmatch(list.Stdout)
	if m == nil {
		t.Fatalf("no open job_title conflict listed:\n%s", list.Stdout)
	}
	show := syncd(t, "conflicts", "show", m[1], "-config", e.config)
	wantCode(t, show, 0, "conflicts show")
	for _, want := range []string{"field job_title (open)", "base (last agreed): " + `"` + shared.JobTitle + `"`, "Title From OpenCRM", "Title From CO3", "policy: manual", "(waiting for you)"} {
		if !strings.Contains(show.Stdout, want) {
			t.Errorf("conflicts show lacks %q:\n%s", want, show.Stdout)
		}
	}
	wantCode(t, syncd(t, "conflicts", "show", "99999", "-config", e.config), 1, "conflicts show of an unknown id")
	wantCode(t, syncd(t, "conflicts", "resolve", m[1], "-config", e.config), 2, "conflicts resolve without --take or --value")
	wantCode(t, syncd(t, "conflicts", "resolve", m[1], "--value", "Head of Testing", "-config", e.config), 0, "conflicts resolve --value")
	wantCode(t, e.runOnce(), 0, "run after resolving")
	if a, b := e.fields("opencrm", shared.Email)["title"], e.fields("co3", shared.Email)["contact_job"]; a != "Head of Testing" || b != "Head of Testing" {
		t.Errorf("after resolve --value: OpenCRM title %q, CO3 job %q; want the given value on both", a, b)
	}
	ex := syncd(t, "explain", "-config", e.config, shared.Email)
	wantCode(t, ex, 0, "explain")
	jobLine := regexp.MustCompile(`(?m)^job_title\s.*$`).FindString(ex.Stdout)
	if !strings.Contains(jobLine, "resolved (conflict #"+m[1]+"): operator") {
		t.Errorf("explain does not say the operator's resolution produced job_title:\n%s", ex.Stdout)
	}
	givenLine := regexp.MustCompile(`(?m)^given_name\s.*$`).FindString(ex.Stdout)
	if !strings.Contains(givenLine, "first seen in ") || !strings.Contains(givenLine, ", run 1") {
		t.Errorf("explain does not say where given_name first came from:\n%s", ex.Stdout)
	}

	// A write the CRM refuses: a failed record with OpenCRM's message,
	// retried on the next run.
	other := people[len(people)/2+1]
	e.sim.Clock.Advance(time.Minute)
	e.sim.CO3.EditAsUser(e.sim.FindByEmail("co3", other.Email), map[string]string{"contact_job": "Refused Title"})
	e.sim.OpenCRM.FailNext("edit_contact", 1, emulator.Fault{Status: 200, Body: `{"error":"Field title is too long"}`, ContentType: "application/json"})
	wantCode(t, e.runOnce(), 3, "run with a refused write")
	st := syncd(t, "status", "-config", e.config)
	if !strings.Contains(st.Stdout, "failed records") || !strings.Contains(st.Stdout, "Field title is too long") {
		t.Errorf("status does not show the failed record with OpenCRM's message:\n%s", st.Stdout)
	}
	wantCode(t, e.runOnce(), 0, "run retrying the failed record")
	if got := e.fields("opencrm", other.Email)["title"]; got != "Refused Title" {
		t.Errorf("the failed write was not retried: OpenCRM title %q", got)
	}

	// A new CO3 contact with one person's e-mail and another's phone is
	// parked, not merged into either.
	a, b := people[0], people[1] // OpenCRM only
	e.sim.Clock.Advance(time.Minute)
	e.sim.CO3.Seed(map[string]string{"contact_type": "0", "contact_firstname": "Mixed", "contact_lastname": "Up",
		"contact_email": a.Email, "contact_phone": b.PhoneSpaced()})
	wantCode(t, e.runOnce(), 3, "run with an ambiguous record")
	st = syncd(t, "status", "-config", e.config)
	if !strings.Contains(st.Stdout, "parked records (ambiguous identity): 1") || !strings.Contains(st.Stdout, "co3 ") {
		t.Errorf("status does not show the parked CO3 record:\n%s", st.Stdout)
	}
	if got := e.fields("opencrm", a.Email)["firstname"]; got == "Mixed" {
		t.Errorf("the ambiguous record was merged into %s", a.Email)
	}
}
