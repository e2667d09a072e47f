package co3

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/connectors/co3/co3test"
	"github.com/syncd/syncd/internal/connectors/contract"
)

// awkward holds values that XML and JSON escaping must both carry intact.
var awkward = map[string]string{
	"contact_firstname":           "Zoë",
	"contact_lastname":            "Šimůnek <&> \"quoted\" 'apos'",
	"contact_firm":                "Brno & Łódź s.r.o. ]]> <![CDATA[x]]>",
	"contact_address":             "Łódź, ul. Piotrkowska 1\nline two\ttabbed",
	"contact_email":               "zoe@example.com",
	"contact_phone":               "420123456789",
	"contact_note":                "日本語 текст ελληνικά 🙂 \\ backslash",
	"contact_importance":          "3",
	"contact_newsletter":          "1",
	"contact_birthday":            "1990-02-28",
	"custom_fields.colour":        "zelená & <modrá>",
	"custom_fields.hobbies.node0": "šachy",
	"custom_fields.hobbies.node1": "čtení",
}

func TestRoundTripEveryMethod(t *testing.T) {
	for _, f := range []Format{JSON, XML} {
		t.Run(string(f), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e := newEnv(t, envOptions{format: f, record: true, owner: "jana"})

			// setContact (create), then getContact.
			id, err := e.conn.Create(ctx, awkward)
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			stored, _ := e.emu.Fields(id)
			want := maps.Clone(awkward)
			want["contact_owner"] = "jana"
			if !maps.Equal(stored, want) {
				t.Errorf("emulator stored\n%v\nwant\n%v", stored, want)
			}
			got, err := e.conn.Get(ctx, id)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if got.ID != id {
				t.Errorf("Get id = %q, want %q", got.ID, id)
			}
			assertFields(t, got.Fields, want)
			// Every documented field is present, unset ones empty.
			if v, ok := got.Fields["contact_fax"]; !ok || v != "" {
				t.Errorf("contact_fax = %q, %v; want present and empty", v, ok)
			}

			// getContactList.
			other := e.emu.Seed(map[string]string{"contact_firstname": "Ola", "contact_lastname": "Nowak"})
			recs, _, _ := contract.PullAll(t, e.conn, connectors.PullOptions{Full: true})
			if len(recs) != 2 {
				t.Fatalf("pulled %d records, want 2", len(recs))
			}
			assertFields(t, recs[0].Fields, want)
			if recs[1].ID != other || recs[1].Fields["contact_lastname"] != "Nowak" {
				t.Errorf("second record = %+v", recs[1])
			}

			// getContacts.
			var ids []string
			if err := e.conn.ListIDs(ctx, func(_ context.Context, batch []string) error {
				ids = append(ids, batch...)
				return nil
			}); err != nil {
				t.Fatalf("ListIDs: %v", err)
			}
			if !slices.Equal(ids, []string{id, other}) {
				t.Errorf("ListIDs = %v, want [%s %s]", ids, id, other)
			}

			// setContact (update): one plain field and one node; the
			// other node and every other field keep their values.
			if err := e.conn.Update(ctx, id, map[string]string{
				"contact_lastname":            "Nováková & <Co>",
				"custom_fields.hobbies.node1": "",
				"custom_fields.hobbies.node2": "běh",
			}); err != nil {
				t.Fatalf("Update: %v", err)
			}
			want["contact_lastname"] = "Nováková & <Co>"
			delete(want, "custom_fields.hobbies.node1")
			want["custom_fields.hobbies.node2"] = "běh"
			stored, _ = e.emu.Fields(id)
			if !maps.Equal(stored, want) {
				t.Errorf("after update emulator has\n%v\nwant\n%v", stored, want)
			}
			got, err = e.conn.Get(ctx, id)
			if err != nil {
				t.Fatalf("Get after update: %v", err)
			}
			assertFields(t, got.Fields, want)
			if _, ok := got.Fields["custom_fields.hobbies.node1"]; ok {
				t.Errorf("unticked node still reported: %v", got.Fields)
			}

			// What went over the wire.
			reqs, reps, types := e.wire.all()
			for _, m := range []string{"authenticate", "getContactList", "getContacts", "getContact", "setContact"} {
				if e.emu.Calls(m) == 0 {
					t.Errorf("method %s never called", m)
				}
			}
			for i, req := range reqs {
				if f == XML {
					if !strings.Contains(types[i], "xml") || !strings.HasPrefix(req, "<?xml") || !strings.HasPrefix(strings.TrimSpace(reps[i]), "<?xml") {
						t.Errorf("exchange %d is not XML both ways: %s -> %.80s", i, types[i], reps[i])
					}
				} else if !strings.Contains(types[i], "json") || req[0] != '{' || reps[i][0] != '{' {
					t.Errorf("exchange %d is not JSON both ways: %s -> %.80s", i, types[i], reps[i])
				}
			}
			if f == XML {
				all := strings.Join(reqs, "\n") + strings.Join(reps, "\n")
				for _, s := range []string{"<![CDATA[Zoë]]>", "<![CDATA[Šimůnek <&> \"quoted\" 'apos']]>", "]]]]><![CDATA[>"} {
					if !strings.Contains(all, s) {
						t.Errorf("wire lacks %q", s)
					}
				}
			}
		})
	}
}

func assertFields(t *testing.T, got, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestErrorsClassified(t *testing.T) {
	for _, f := range []Format{JSON, XML} {
		t.Run(string(f), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e := newEnv(t, envOptions{format: f})
			id := e.emu.Seed(map[string]string{"contact_firstname": "A"})

			_, err := e.conn.Get(ctx, "424242")
			if !errors.Is(err, connectors.ErrNotFound) || !strings.Contains(err.Error(), "co3: getContact:") {
				t.Errorf("missing contact: %v", err)
			}
			err = e.conn.Update(ctx, id, map[string]string{"contact_birthday": "28.2.1990"})
			if !errors.Is(err, connectors.ErrRejected) || !strings.Contains(err.Error(), "YYYY-MM-DD") {
				t.Errorf("bad birthday: %v, want ErrRejected with the CRM's message", err)
			}
			_, err = e.conn.Create(ctx, map[string]string{"contact_email": "x@example.com"})
			if !errors.Is(err, connectors.ErrRejected) || !strings.Contains(err.Error(), "needs a first name") {
				t.Errorf("nameless create: %v", err)
			}
			body := `{"response":{"error":{"code":"quota_exceeded","message":"monthly quota used up"}}}`
			if f == XML {
				body = `<response><error><code>quota_exceeded</code><message><![CDATA[monthly quota used up]]></message></error></response>`
			}
			e.emu.FailNext(co3test.MethodGetContact, 1, faultBody(body, f))
			_, err = e.conn.Get(ctx, id)
			if err == nil || !strings.Contains(err.Error(), "quota_exceeded") || !strings.Contains(err.Error(), "monthly quota used up") {
				t.Errorf("unknown code: %v", err)
			}
			if connectors.Classify(err) != "other" {
				t.Errorf("unknown code classified %q", connectors.Classify(err))
			}
			e.emu.FailNext(co3test.MethodGetContact, 1, faultBody(`<html>oops</html>`, JSON))
			if _, err = e.conn.Get(ctx, id); f == JSON && (!errors.Is(err, connectors.ErrMalformed) || !strings.Contains(err.Error(), "expected a JSON reply")) {
				t.Errorf("HTML for JSON: %v", err)
			}
			e.emu.FailNext(co3test.MethodGetContact, 2, faultStatus(500))
			if _, err = e.conn.Get(ctx, id); err != nil {
				t.Errorf("two 500s then success: %v", err)
			}
		})
	}
}

func TestWrongCredentialsSaySo(t *testing.T) {
	cases := []struct {
		name, apiKey, password, want string
	}{
		{"key", "not-the-key", "", "invalid API key"},
		{"password", "", "wrong-password", "invalid username or password"},
	}
	for _, f := range []Format{JSON, XML} {
		for _, c := range cases {
			t.Run(string(f)+"/"+c.name, func(t *testing.T) {
				e := newEnv(t, envOptions{format: f, apiKey: c.apiKey, password: c.password})
				_, err := e.conn.Get(context.Background(), "1")
				if !errors.Is(err, connectors.ErrAuth) || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("err = %v, want ErrAuth saying %q", err, c.want)
				}
				if n := e.emu.Calls("*"); n != 1 {
					t.Errorf("%d calls, want 1 (no retry of wrong credentials)", n)
				}
			})
		}
	}
}
