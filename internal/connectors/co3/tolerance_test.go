package co3

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/connectors/co3/co3test"
	"github.com/syncd/syncd/internal/connectors/contract"
)

func seedVaried(e *env, n int) {
	for i := range n {
		e.emu.Seed(map[string]string{
			"contact_firstname":           fmt.Sprintf("Given%03d", i),
			"contact_lastname":            "Šimůnek",
			"contact_phone":               fmt.Sprintf("42060%07d", i),
			"contact_postal_address":      "01234",
			"contact_importance":          fmt.Sprint(i % 5),
			"contact_newsletter":          fmt.Sprint(i % 2),
			"custom_fields.size":          fmt.Sprint(40 + i),
			"custom_fields.hobbies.node0": "x",
		})
	}
}

// Replies with numbers as strings, strings as numbers, or no response
// wrapper give the same records as the plain shape.
func TestToleratedReplyShapes(t *testing.T) {
	quirks := map[string]co3test.Quirks{
		"numbers-as-strings": {NumbersAsStrings: true},
		"strings-as-numbers": {StringsAsNumbers: true},
		"no-wrapper":         {NoWrapper: true},
		"all":                {NumbersAsStrings: true, StringsAsNumbers: true, NoWrapper: true},
	}
	for _, f := range []Format{JSON, XML} {
		for name, q := range quirks {
			t.Run(string(f)+"/"+name, func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				e := newEnv(t, envOptions{format: f, pageSize: 4, record: true})
				seedVaried(e, 10)
				plain, _, _ := contract.PullAll(t, e.conn, connectors.PullOptions{Full: true})
				plainOne, err := e.conn.Get(ctx, "3")
				if err != nil {
					t.Fatal(err)
				}
				e.emu.SetQuirks(q)
				e.emu.ExpireSessions() // authenticate's reply in the odd shape too
				odd, pages, _ := contract.PullAll(t, e.conn, connectors.PullOptions{Full: true})
				if pages != 3 || len(odd) != len(plain) {
					t.Fatalf("pages=%d records=%d, want 3 and %d", pages, len(odd), len(plain))
				}
				for i := range plain {
					if odd[i].ID != plain[i].ID || !maps.Equal(odd[i].Fields, plain[i].Fields) {
						t.Errorf("record %d differs:\n%v\n%v", i, odd[i], plain[i])
					}
				}
				one, err := e.conn.Get(ctx, "3")
				if err != nil || !maps.Equal(one.Fields, plainOne.Fields) {
					t.Errorf("Get = %v, %v", one, err)
				}
				id, err := e.conn.Create(ctx, map[string]string{"contact_firstname": "New"})
				if err != nil || id != "11" {
					t.Errorf("Create = %q, %v", id, err)
				}
				var ids []string
				err = e.conn.ListIDs(ctx, func(_ context.Context, b []string) error { ids = append(ids, b...); return nil })
				if err != nil || len(ids) != 11 {
					t.Errorf("ListIDs = %v, %v", ids, err)
				}
				_, reps, _ := e.wire.all()
				last := reps[len(reps)-1]
				if f == JSON && q.NoWrapper && strings.Contains(last, `"response"`) {
					t.Errorf("quirk not applied: %s", last)
				}
			})
		}
	}
}

// A reply cut short is ErrMalformed naming the method, and is not
// retried (the pacer retries only temporary failures).
func TestTruncatedReply(t *testing.T) {
	for _, f := range []Format{JSON, XML} {
		for _, m := range []string{co3test.MethodGetContactList, co3test.MethodGetContact, co3test.MethodGetContacts, co3test.MethodAuthenticate} {
			t.Run(string(f)+"/"+m, func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				e := newEnv(t, envOptions{format: f})
				seedVaried(e, 3)
				e.emu.TruncateNext(m, 1)
				var err error
				switch m {
				case co3test.MethodGetContact:
					_, err = e.conn.Get(ctx, "1")
				case co3test.MethodGetContacts:
					err = e.conn.ListIDs(ctx, func(context.Context, []string) error { return nil })
				default:
					err = e.conn.Pull(ctx, connectors.PullOptions{}, func(context.Context, connectors.Page) error { return nil })
				}
				if !errors.Is(err, connectors.ErrMalformed) {
					t.Fatalf("err = %v, want ErrMalformed", err)
				}
				for _, want := range []string{"co3: " + m + ":", "truncated"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}
			})
		}
	}
}
