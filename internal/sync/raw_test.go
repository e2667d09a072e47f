package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/mapping"
	"github.com/syncd/syncd/internal/state"
)

// pullPage pulls connector name from the start as one page.
func (h *harness) pullPage(name string) connectors.Page {
	h.t.Helper()
	var all connectors.Page
	err := h.conns[name].Pull(context.Background(), connectors.PullOptions{}, func(_ context.Context, p connectors.Page) error {
		all.Records = append(all.Records, p.Records...)
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return all
}

func (h *harness) stored(name string, page connectors.Page) map[string]state.StoredHash {
	h.t.Helper()
	var ids []string
	for _, r := range page.Records {
		ids = append(ids, r.ID)
	}
	var out map[string]state.StoredHash
	if err := h.store.Update(context.Background(), func(w *state.WriteTx) (err error) { out, err = w.RecordHashes(name, ids); return err }); err != nil {
		h.t.Fatal(err)
	}
	return out
}

// A record pulled again with the CRM values it had when last pulled is
// not mapped again; one edited in the CRM, one syncd wrote since and any
// record in a full run are. A change of the field mapping maps every
// record again.
func TestUnchangedRecordsAreNotMappedAgain(t *testing.T) {
	h := newHarness(t, []string{"a", "b"})
	ann := h.insert("a", map[string]string{"given_name": "Ann", "email": "ann@x.org", "phone": "+44 20 7946 0001"})
	h.insert("a", map[string]string{"given_name": "Bob", "email": "bob@x.org"})
	h.insert("b", map[string]string{"given_name": "Cy", "email": "cy@x.org"})
	h.sync()

	same := func(name string, full bool) map[string]bool {
		r := &run{e: h.eng, full: full}
		page := h.pullPage(name)
		out := map[string]bool{}
		for i, m := range r.mapPage(h.eng.byName[name], page, h.stored(name, page), false) {
			out[page.Records[i].ID] = m.same
		}
		return out
	}
	// Ann and Bob were pulled from a; Cy was created in a by syncd, and
	// the first pull that reads it back maps it.
	got := same("a", false)
	if len(got) != 3 {
		t.Fatalf("a holds %d records", len(got))
	}
	created := ""
	for id := range got {
		if id != ann && id != "2" {
			created = id
		}
	}
	if !got[ann] || !got["2"] || got[created] {
		t.Errorf("after the first sync: %v, want only syncd's create (%s) mapped again", got, created)
	}
	// A run that reads it back (a full one: an incremental pull passes
	// over syncd's own writes) keeps its hash.
	h.sync(RunOptions{Full: true})
	if got := same("a", false); !got[created] || !got[ann] {
		t.Errorf("after reading back syncd's create: %v", got)
	}
	h.edit("a", ann, map[string]string{"given_name": "Anne"})
	if got := same("a", false); got[ann] || !got["2"] {
		t.Errorf("after an edit of Ann: %v", got)
	}
	h.sync()
	if got := same("a", true); got[ann] || got["2"] {
		t.Errorf("a full run skipped mapping: %v", got)
	}
	// Another mapping for a: every record maps again.
	cc, _ := h.cfg.ConnectorByName("a")
	cc.Exclude = append(cc.Exclude, "phone")
	h.build()
	for id, s := range same("a", false) {
		if s {
			t.Errorf("record %s not mapped again after the mapping changed", id)
		}
	}
}

// mappingDigests records, for each mappingVersion, a digest of what the
// mapping code makes of a fixed set of CRM values. A change to
// internal/mapping that maps them differently fails this test until
// mappingVersion is raised (and the new digest recorded): records stored
// under the old version must be mapped again.
var mappingDigests = map[int]string{
	1: "a9b5c31bb598dafc039892c335d29e7009728320a6fe3ef11f2af0cb6084d245",
}

func TestMappingVersionFollowsMappingBehaviour(t *testing.T) {
	fields := []mapping.Field{
		{Canonical: "given_name", Remote: "name", Transforms: []string{"given_name"}},
		{Canonical: "family_name", Remote: "name", Transforms: []string{"family_name"}},
		{Canonical: "email", Remote: "email", Transforms: []string{"trim", "lower"}},
		{Canonical: "phone", Remote: "phone", Transforms: []string{"phone"}},
		{Canonical: "mobile", Remote: "mobile", Transforms: []string{"phone:national"}},
		{Canonical: "company", Remote: "company", Transforms: []string{"collapse"}},
		{Canonical: "postcode", Remote: "zip", Transforms: []string{"upper"}},
		{Canonical: "birthday", Remote: "born", Transforms: []string{"date:DD-MM-YYYY"}},
		{Canonical: "custom.gender", Remote: "sex", Values: map[string]string{"male": "M", "female": "F"}},
	}
	m, err := mapping.Compile(fields, nil, nil, mapping.Options{DefaultRegion: "GB"})
	if err != nil {
		t.Fatal(err)
	}
	inputs := []map[string]string{
		{"name": "  Ann  Lee ", "email": " Ann@Example.COM ", "phone": "020 7946 0958", "mobile": "+44 7700 900123", "company": "Acme   Ltd", "zip": "sw1a 1aa", "born": "07-03-1980", "sex": "Female"},
		{"name": "Dvořák", "email": "d@x.org", "phone": "+1 (415) 555-0100 ext. 12", "mobile": "07700 900 456", "born": "1980-03-07", "sex": "other"},
		{"name": "Jean-Luc de la Tour", "phone": "+39 06 1234 5678", "mobile": "not a number", "born": "31/12/1999"},
		{"name": "", "email": "", "phone": "0044 20 7946 0000", "mobile": "+800 1234 5678"},
	}
	h := sha256.New()
	for _, in := range inputs {
		out := m.ToCanonical(in)
		keys := slices.Sorted(maps.Keys(out))
		for _, k := range keys {
			fmt.Fprintf(h, "%s=%q;", k, out[k])
		}
		for _, k := range slices.Sorted(maps.Keys(m.CreateFields(out))) {
			fmt.Fprintf(h, "w:%s=%q;", k, m.CreateFields(out)[k])
		}
		h.Write([]byte{'\n'})
	}
	got := hex.EncodeToString(h.Sum(nil))
	want, ok := mappingDigests[mappingVersion]
	if !ok || want != got {
		t.Fatalf("the mapping code maps the sample values to digest %s, but mappingVersion %d records %q: "+
			"if the mapping behaviour changed, raise mappingVersion in engine.go and record the new digest here", got, mappingVersion, want)
	}
}
