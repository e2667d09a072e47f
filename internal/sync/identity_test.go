package engine

import (
	"slices"
	"strings"
	"testing"

	"github.com/syncd/syncd/internal/mapping"
)

// In these tests b is pull-only, so it never receives a's people and its
// own records meet them unlinked.

// A record whose e-mail matches nothing is matched by its phone in
// E.164, however each CRM writes the number.
func TestRecordMatchedByPhoneAlone(t *testing.T) {
	for _, tc := range []struct {
		name   string
		bEmail string
	}{
		{name: "emails differ", bEmail: "ANN.LEE@ELSEWHERE.ORG"},
		{name: "email absent", bEmail: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, []string{"a", "b"}, withDirection("b", "pull"))
			h.insert("a", map[string]string{"given_name": "Ann", "email": "ann@example.com", "phone": "+44 20 7946 0001"})
			h.sync()
			h.insert("b", map[string]string{"given_name": "Ann", "family_name": "Lee", "email": tc.bEmail, "phone": "020 7946 0001"})
			rep := h.sync()
			if rep.Connectors[1].Matched != 1 {
				t.Errorf("b matched %d, want 1", rep.Connectors[1].Matched)
			}
			if st := h.status(); st.Entities != 1 || len(st.Parked) != 0 {
				t.Errorf("%d contacts, %d parked; want 1 and 0", st.Entities, len(st.Parked))
			}
			if na, nb := h.conns["a"].Table.Len(), h.conns["b"].Table.Len(); na != 1 || nb != 1 {
				t.Errorf("a holds %d, b %d; want 1 each", na, nb)
			}
			// The link carries b's family name to a.
			if got := h.canonicalRows("a"); got["1"]["family_name"] != "Lee" {
				t.Errorf("a = %v, want family_name Lee", got["1"])
			}
		})
	}
}

// withCustomerNo maps custom.customer_no on every connector and makes it
// an identity key.
func withCustomerNo(h *harness) {
	for i := range h.cfg.Connector {
		cc := &h.cfg.Connector[i]
		cc.Fields = append(slices.Clone(cc.Fields), mapping.Field{Canonical: "custom.customer_no", Remote: "custno", Transforms: []string{"trim"}})
	}
	h.cfg.Identity.Keys = []string{"custom.customer_no"}
}

// A record with neither e-mail nor phone in common is matched by a key
// the config names.
func TestRecordMatchedByConfiguredKey(t *testing.T) {
	h := newHarness(t, []string{"a", "b"}, withCustomerNo, withDirection("b", "pull"))
	h.conns["a"].Table.Insert(map[string]string{"first": "Ann", "email": "ann@example.com", "phone": "+44 20 7946 0001", "custno": "C-42"})
	h.sync()
	h.conns["b"].Table.Insert(map[string]string{"FirstName": "Ann", "LastName": "Lee", "EMail": "lee@elsewhere.org", "custno": " C-42 "})
	rep := h.sync()
	if rep.Connectors[1].Matched != 1 {
		t.Errorf("b matched %d, want 1", rep.Connectors[1].Matched)
	}
	if st := h.status(); st.Entities != 1 || len(st.Parked) != 0 {
		t.Errorf("%d contacts, %d parked; want 1 and 0", st.Entities, len(st.Parked))
	}
	if na, nb := h.conns["a"].Table.Len(), h.conns["b"].Table.Len(); na != 1 || nb != 1 {
		t.Errorf("a holds %d, b %d; want 1 each", na, nb)
	}
	// Without the configured key the same records are two people.
	h2 := newHarness(t, []string{"a", "b"}, withCustomerNo, withDirection("b", "pull"), func(h *harness) { h.cfg.Identity.Keys = nil })
	h2.conns["a"].Table.Insert(map[string]string{"first": "Ann", "email": "ann@example.com", "custno": "C-42"})
	h2.sync()
	h2.conns["b"].Table.Insert(map[string]string{"FirstName": "Ann", "EMail": "lee@elsewhere.org", "custno": "C-42"})
	h2.sync()
	if st := h2.status(); st.Entities != 2 {
		t.Errorf("without identity.keys: %d contacts, want 2", st.Entities)
	}
}

// A record whose e-mail is one person's and whose phone is another's is
// parked for review, never merged into either.
func TestRecordMatchingTwoPeopleByDifferentKeysIsParked(t *testing.T) {
	h := newHarness(t, []string{"a", "b"}, withDirection("b", "pull"))
	h.insert("a", map[string]string{"given_name": "Ann", "email": "ann@example.com", "phone": "+44 20 7946 0001"})
	h.insert("a", map[string]string{"given_name": "Bob", "email": "bob@example.com", "phone": "+44 20 7946 0002"})
	h.sync()
	before := h.writes()
	h.insert("b", map[string]string{"given_name": "Ann?", "email": "Ann@Example.com", "phone": "020 7946 0002"})
	rep := h.sync()
	if rep.Parked != 1 || rep.ExitCode() != 3 || rep.Connectors[1].Matched != 0 {
		t.Fatalf("parked %d, exit %d, matched %d; want 1, 3 and 0", rep.Parked, rep.ExitCode(), rep.Connectors[1].Matched)
	}
	st := h.status()
	if len(st.Parked) != 1 {
		t.Fatalf("status shows %d parked, want 1", len(st.Parked))
	}
	p := st.Parked[0]
	if p.Connector != "b" || len(p.Candidates) != 2 || !strings.Contains(p.Reason, "email") || !strings.Contains(p.Reason, "phone") {
		t.Errorf("parked = %+v, want b's record with both contacts and both keys named", p)
	}
	if st.Entities != 2 {
		t.Errorf("%d contacts, want 2", st.Entities)
	}
	// Neither person took the parked record's values.
	for _, v := range h.canonicalRows("a") {
		if v["given_name"] == "Ann?" {
			t.Errorf("a took the parked record's name: %v", v)
		}
	}
	// Nothing was written anywhere.
	if w := h.writes() - before; w != 0 {
		t.Errorf("%d writes for a parked record, want 0", w)
	}
}

// A phone shared by several people (a switchboard) does not contradict
// the e-mail match of one of them.
func TestSharedPhoneDoesNotBlockEmailMatch(t *testing.T) {
	h := newHarness(t, []string{"a", "b"}, withDirection("b", "pull"))
	h.insert("a", map[string]string{"given_name": "Ann", "email": "ann@example.com", "phone": "+44 20 7946 0000"})
	bob := h.insert("a", map[string]string{"given_name": "Bob", "email": "bob@example.com", "phone": "+44 20 7946 0009"})
	h.sync()
	// Bob moves to Ann's number: both people now hold it.
	h.edit("a", bob, map[string]string{"phone": "+44 20 7946 0000"})
	h.sync()
	h.insert("b", map[string]string{"given_name": "Ann", "family_name": "Lee", "email": "ann@example.com", "phone": "020 7946 0000"})
	rep := h.sync()
	if rep.Parked != 0 || rep.Connectors[1].Matched != 1 {
		t.Errorf("parked %d, matched %d; want 0 and 1", rep.Parked, rep.Connectors[1].Matched)
	}
	if got := h.one("a", "ann@example.com")["family_name"]; got != "Lee" {
		t.Errorf("Ann's family name on a = %q, want Lee", got)
	}
}

// A second record of one CRM for a person already linked to a record of
// that CRM in an earlier run is parked, not merged into the contact:
// the CRM holds the person twice.
func TestLaterDuplicateInOneCRMIsParked(t *testing.T) {
	h := newHarness(t, []string{"a", "b"})
	h.insert("a", map[string]string{"given_name": "Ann", "email": "ann@example.com"})
	h.sync()
	h.tick()
	h.insert("a", map[string]string{"given_name": "Ann (copy)", "email": "ANN@example.com"})
	rep := h.sync()
	if rep.Parked != 1 || rep.Connectors[0].Matched != 0 {
		t.Fatalf("parked %d, matched %d; want 1 and 0", rep.Parked, rep.Connectors[0].Matched)
	}
	st := h.status()
	if len(st.Parked) != 1 || !strings.Contains(st.Parked[0].Reason, "already linked to a record") {
		t.Fatalf("parked: %+v", st.Parked)
	}
	if st.Entities != 1 {
		t.Errorf("%d contacts, want 1", st.Entities)
	}
	for _, v := range h.canonicalRows("b") {
		if v["given_name"] != "Ann" {
			t.Errorf("b holds %v, want Ann's values only", v)
		}
	}
}
