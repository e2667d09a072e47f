package co3

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/connectors/co3/co3test"
)

// Without a page count in the replies, the scan ends on the first page
// without contacts: one list call more than there are pages of contacts,
// every contact once, and the empty page is the Done page.
func TestEndOfListWithoutPageCount(t *testing.T) {
	cases := []struct {
		contacts, wantCalls int
	}{
		{0, 1},
		{3, 2},
		{10, 3}, // two full pages, then an empty one
		{12, 4},
	}
	for _, f := range []Format{JSON, XML} {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/%d", f, tc.contacts), func(t *testing.T) {
				t.Parallel()
				e := newEnv(t, envOptions{format: f, pageSize: 5, record: true})
				var want []string
				for i := range tc.contacts {
					want = append(want, e.emu.Seed(map[string]string{"contact_firstname": fmt.Sprintf("P%02d", i)}))
				}
				e.emu.SetQuirks(co3test.Quirks{NoPageCount: true})
				var got, cursors []string
				var last connectors.Page
				err := e.conn.Pull(context.Background(), connectors.PullOptions{Full: true}, func(_ context.Context, p connectors.Page) error {
					if last.Done {
						return errors.New("page after the Done page")
					}
					for _, r := range p.Records {
						got = append(got, r.ID)
					}
					cursors = append(cursors, p.Cursor)
					last = p
					return nil
				})
				if err != nil {
					t.Fatalf("Pull: %v", err)
				}
				if !slices.Equal(got, want) {
					t.Errorf("ids = %v, want %v", got, want)
				}
				if !last.Done || len(last.Records) != 0 || last.Cursor != "complete" {
					t.Errorf("last page: Done=%v, %d records, cursor %q; want the empty page as Done with cursor complete", last.Done, len(last.Records), last.Cursor)
				}
				if n := e.emu.Calls(co3test.MethodGetContactList); n != tc.wantCalls || len(cursors) != tc.wantCalls {
					t.Errorf("getContactList called %d times for %d pages, want %d", n, len(cursors), tc.wantCalls)
				}
				for i, c := range cursors[:len(cursors)-1] {
					if want := fmt.Sprintf("page:%d", i+1); c != want {
						t.Errorf("cursor of page %d = %q, want %q", i, c, want)
					}
				}
				_, reps, _ := e.wire.all()
				for _, r := range reps {
					if strings.Contains(r, "pages") {
						t.Fatalf("quirk not applied, a reply holds a page count: %s", r)
					}
				}
			})
		}
	}
}

// A server that answers every page with the first one would make the
// scan loop for ever (no page count) or miss every contact after the
// first page (with one); the connector stops at the second call with
// ErrMalformed, having passed on the first page only.
func TestRepeatedPageStopsTheScan(t *testing.T) {
	for _, f := range []Format{JSON, XML} {
		for _, tc := range []struct {
			contacts    int
			noPageCount bool
		}{{3, true}, {5, true}, {12, true}, {12, false}, {6, false}} {
			t.Run(fmt.Sprintf("%s/%d/no-page-count=%v", f, tc.contacts, tc.noPageCount), func(t *testing.T) {
				t.Parallel()
				e := newEnv(t, envOptions{format: f, pageSize: 5})
				for i := range tc.contacts {
					e.emu.Seed(map[string]string{"contact_firstname": fmt.Sprintf("P%02d", i)})
				}
				e.emu.SetQuirks(co3test.Quirks{NoPageCount: tc.noPageCount, IgnorePage: true})
				pages := 0
				err := e.conn.Pull(context.Background(), connectors.PullOptions{Full: true}, func(_ context.Context, p connectors.Page) error {
					pages++
					switch {
					case p.Done:
						return errors.New("a repeated page was taken for the end of the list")
					case pages > 10:
						return errors.New("the scan does not stop on a repeated page")
					}
					return nil
				})
				if !errors.Is(err, connectors.ErrMalformed) || !strings.Contains(err.Error(), "page 1 repeats page 0") {
					t.Fatalf("err = %v, want ErrMalformed saying page 1 repeats page 0", err)
				}
				if pages != 1 {
					t.Errorf("%d pages passed on, want 1", pages)
				}
				if n := e.emu.Calls(co3test.MethodGetContactList); n != 2 {
					t.Errorf("getContactList called %d times, want 2", n)
				}
			})
		}
	}
}

// A scan from the first page tells progress how many contacts to expect:
// the page count times the page length while it runs, the exact number
// on its last page; without a page count, only the last page knows.
func TestPullReportsTotalForProgress(t *testing.T) {
	for _, tc := range []struct {
		name  string
		quirk co3test.Quirks
		want  []int
	}{
		{"page count", co3test.Quirks{}, []int{15, 15, 12}},
		{"no page count", co3test.Quirks{NoPageCount: true}, []int{-1, -1, -1, 12}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{format: JSON, pageSize: 5})
			for i := range 12 {
				e.emu.Seed(map[string]string{"contact_firstname": fmt.Sprintf("P%02d", i)})
			}
			e.emu.SetQuirks(tc.quirk)
			var got []int
			if err := e.conn.Pull(context.Background(), connectors.PullOptions{Full: true}, func(_ context.Context, p connectors.Page) error {
				got = append(got, p.Total)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("totals by page = %v, want %v", got, tc.want)
			}
		})
	}
}
