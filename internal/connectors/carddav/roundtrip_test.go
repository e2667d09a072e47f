package carddav_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/syncd/syncd/internal/connectors/carddav/radicaletest"
	"github.com/syncd/syncd/internal/connectors/emulator"
	"github.com/syncd/syncd/internal/crmsim"
	engine "github.com/syncd/syncd/internal/sync"
	"github.com/syncd/syncd/internal/sync/synctest"
)

// exampleVCardFields returns the field mapping of the vCard connector in
// config.example.toml, so that the round trip runs with what users copy.
func exampleVCardFields(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(strings.TrimSpace(string(out))), "config.example.toml"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	i := strings.Index(text, "type = \"vcarddir\"")
	if i < 0 {
		t.Fatal("config.example.toml has no vcarddir connector")
	}
	text = text[i:]
	j := strings.Index(text, "[[connectors.fields]]")
	if j < 0 {
		t.Fatal("config.example.toml: the vcarddir connector has no fields")
	}
	text = text[j:]
	if k := strings.Index(text, "\n[[connectors]]"); k >= 0 {
		text = text[:k]
	}
	return text
}

// davRig is the engine wired to an OpenCRM emulator and a Radicale
// address book the way cmd/syncd wires it.
type davRig struct {
	sim  *crmsim.Sim
	book *radicaletest.Book
	eng  *engine.Engine
}

func newDavRig(t *testing.T) *davRig {
	t.Helper()
	srv := radicaletest.Start(t)
	book := srv.NewBook(t)
	sim, err := crmsim.Start(crmsim.Options{People: 20, Seed: 11, Only: []string{"opencrm"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	dir := t.TempDir()
	text, err := sim.Config(crmsim.ConfigOptions{State: filepath.Join(dir, "state.db"), LogLevel: "warn"})
	if err != nil {
		t.Fatal(err)
	}
	text += fmt.Sprintf(`
[[connectors]]
name = "phone"
type = "carddav"
base_url = %q
rate = 1000
burst = 100
credentials = { username = %q, password = %q }

[connectors.options]
version = "3.0"

%s`, srv.URL+book.Path, srv.User, srv.Password, exampleVCardFields(t))
	cfg, st := synctest.Load(t, dir, text, nil)
	eng := synctest.Engine(t, cfg, st, synctest.Connectors(t, cfg))
	return &davRig{sim: sim, book: book, eng: eng}
}

func (r *davRig) run(t *testing.T, step string) *engine.Report {
	t.Helper()
	t.Logf("run: %s", step)
	return synctest.RunOK(t, r.eng)
}

// cardsByEmail reads every card in the address book, by lower-case EMAIL;
// it fails the test on a card without one or an e-mail on two cards.
func cardsByEmail(t *testing.T, book *radicaletest.Book) map[string]string {
	t.Helper()
	names, err := book.Names()
	if err != nil {
		t.Fatal(err)
	}
	byEmail := map[string]string{}
	for _, name := range names {
		f, ok := book.Fields(name)
		if !ok {
			t.Fatalf("card %s unreadable", name)
		}
		email := strings.ToLower(f["EMAIL"])
		if email == "" {
			t.Fatalf("card %s has no EMAIL: %v", name, f)
		}
		if other, dup := byEmail[email]; dup {
			t.Fatalf("%s is on two cards: %s and %s", email, other, name)
		}
		byEmail[email] = name
	}
	return byEmail
}

// putAsPhone replaces a card the way a phone's CardDAV client does: GET,
// change the text, PUT with If-Match.
func putAsPhone(t *testing.T, book *radicaletest.Book, name string, edit func(card string) string) {
	t.Helper()
	u := book.Server.URL + book.Path + name
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.SetBasicAuth(book.Server.User, book.Server.Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d", name, resp.StatusCode)
	}
	changed := edit(string(body))
	if changed == string(body) {
		t.Fatalf("the edit changed nothing in %s", body)
	}
	req, _ = http.NewRequest(http.MethodPut, u, bytes.NewReader([]byte(changed)))
	req.SetBasicAuth(book.Server.User, book.Server.Password)
	req.Header.Set("Content-Type", "text/vcard; charset=utf-8")
	req.Header.Set("If-Match", resp.Header.Get("ETag"))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("PUT %s: HTTP %d", name, resp.StatusCode)
	}
}

// A contact edited in Radicale reaches OpenCRM and back; nothing is
// duplicated, and a sync with nothing new writes nothing.
func TestRoundTripRadicaleOpenCRM(t *testing.T) {
	r := newDavRig(t)
	phoneOnly := []map[string]string{
		{"N.given": "Pia", "N.family": "Phone", "EMAIL": "pia.phone@example.net", "TEL.cell": "+44 7700 900123", "ORG": "Pocket Ltd"},
		{"N.given": "Rafe", "N.family": "Radicale", "EMAIL": "rafe@example.net", "TITLE": "Buyer"},
	}
	for _, f := range phoneOnly {
		r.book.Seed(f)
	}

	people := r.sim.OpenCRM.Table.List(func(*emulator.Contact) bool { return true })
	r.run(t, "first sync")
	cards := cardsByEmail(t, r.book)
	if want := len(people) + len(phoneOnly); len(cards) != want {
		t.Errorf("Radicale holds %d cards after the first sync, want %d", len(cards), want)
	}
	for _, p := range people {
		email := strings.ToLower(strings.TrimSpace(p.Fields["email"]))
		if _, ok := cards[email]; !ok {
			t.Errorf("OpenCRM contact %s did not reach Radicale", email)
		}
	}
	for _, f := range phoneOnly {
		if id := r.sim.FindByEmail("opencrm", f["EMAIL"]); id == "" {
			t.Errorf("Radicale contact %s did not reach OpenCRM", f["EMAIL"])
		}
	}
	if n := r.sim.OpenCRM.Table.Len(); n != len(cards) {
		t.Errorf("OpenCRM holds %d contacts, Radicale %d cards; want the same", n, len(cards))
	}
	if rep := r.run(t, "second sync"); synctest.Writes(rep) != 0 {
		t.Errorf("a second sync made %d writes: %+v", synctest.Writes(rep), rep.Connectors)
	}

	// One of OpenCRM's people, edited on a phone.
	email := strings.ToLower(strings.TrimSpace(people[0].Fields["email"]))
	crmID := emulator.FormatID(people[0].ID)
	name := cards[email]
	putAsPhone(t, r.book, name, func(card string) string {
		var out []string
		for _, line := range strings.Split(card, "\r\n") {
			if strings.HasPrefix(strings.ToUpper(line), "TITLE") {
				continue
			}
			if line == "END:VCARD" {
				out = append(out, "TITLE:Head of Round Trips")
			}
			out = append(out, line)
		}
		return strings.Join(out, "\r\n")
	})
	r.run(t, "sync after the phone edit")
	if f, _ := r.sim.OpenCRM.Fields(crmID); f["title"] != "Head of Round Trips" {
		t.Errorf("the phone edit did not reach OpenCRM: title %q", f["title"])
	}

	// The same contact edited in OpenCRM travels back.
	r.sim.OpenCRM.EditAsUser(crmID, map[string]string{"mailingcity": "Aberystwyth"})
	r.run(t, "sync after the OpenCRM edit")
	f, _ := r.book.Fields(name)
	if f["ADR.locality"] != "Aberystwyth" || f["TITLE"] != "Head of Round Trips" {
		t.Errorf("Radicale holds locality %q, title %q; want Aberystwyth, Head of Round Trips", f["ADR.locality"], f["TITLE"])
	}
	if f["EMAIL"] == "" || !strings.EqualFold(f["EMAIL"], email) {
		t.Errorf("the card lost its e-mail: %v", f)
	}

	if rep := r.run(t, "final sync"); synctest.Writes(rep) != 0 {
		t.Errorf("a sync with nothing new made %d writes: %+v", synctest.Writes(rep), rep.Connectors)
	}
	if got := cardsByEmail(t, r.book); len(got) != len(cards) {
		t.Errorf("Radicale holds %d cards, had %d", len(got), len(cards))
	}
	if n := r.sim.OpenCRM.Table.Len(); n != len(cards) {
		t.Errorf("OpenCRM holds %d contacts, want %d", n, len(cards))
	}
}
