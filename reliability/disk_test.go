package reliability

import (
	"context"
	"errors"
	"flag"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/syncd/syncd/internal/state"
)

var flagDiskPeople = flag.Int("disk-people", 200, "sample people of the full-disk test")

// diskTrial is one first sync whose state database was capped at a
// number of pages.
type diskTrial struct {
	w      *world
	cap    int
	err    error
	writes int
}

// TestFullDisk fills the state database's "disk" during a first sync, by
// capping the database at a number of pages (SQLite's max_page_count, as
// a full disk or quota would stop it), once while the pulled records are
// being stored and once while the outcomes of the first pushes are being
// recorded (the CRMs then hold contacts the database may not know about
// yet). Each time the run must stop with an error that names the
// database and says it is full, leave the database intact, and the next
// runs with room again must converge with no duplicate and nobody
// missing.
//
// The two caps are found by bisection, since the database's size at each
// moment of a sync moves with the schema: the smallest cap at which some
// write reached a CRM fills up while recording the first pushes, the
// cap below it before any push.
func TestFullDisk(t *testing.T) {
	ctx := t.Context()
	people, seed := *flagDiskPeople, *flagSeed
	trial := func(cap int) diskTrial {
		w := newWorld(t, people, seed, rand.New(rand.NewPCG(seed, 1<<35)), nil)
		var tot inProcess
		_, err := w.runInProcessWith(ctx, 1, &tot, state.Options{MaxPageCount: cap})
		return diskTrial{w: w, cap: cap, err: err, writes: w.writes()}
	}

	calm := trial(0)
	if calm.err != nil {
		t.Fatalf("first sync without a cap: %v", calm.err)
	}
	full := pageCount(t, calm.w.db)
	// lo fails before any write, hi lets some write through.
	lo, hi := trial(full/2), trial(full*9/8)
	if lo.err == nil || lo.writes != 0 {
		t.Fatalf("a database capped at %d of %d pages did not fill before the pushes (%d writes, err %v)", lo.cap, full, lo.writes, lo.err)
	}
	if hi.err != nil || hi.writes == 0 {
		t.Fatalf("a database capped at %d pages: %d writes, err %v", hi.cap, hi.writes, hi.err)
	}
	for hi.cap-lo.cap > 1 {
		mid := trial((lo.cap + hi.cap) / 2)
		if mid.writes == 0 {
			lo = mid
		} else {
			hi = mid
		}
	}
	if hi.err == nil {
		t.Fatalf("the database does not grow while the pushes are recorded: capped at %d pages, the first sync of %d people ends well (%d pages uncapped)", hi.cap, people, full)
	}
	t.Logf("first sync of %d people: %d pages; %d pages fill before the pushes, %d while recording them (%d of %d writes made)",
		people, full, lo.cap, hi.cap, hi.writes, calm.writes)

	for _, tc := range []struct {
		name string
		tr   diskTrial
	}{{"before_pushes", lo}, {"recording_pushes", hi}} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := tc.tr.w, tc.tr.err
			w.t = t
			if !errors.Is(err, state.ErrFull) {
				t.Errorf("the run's error is not state.ErrFull: %v", err)
			}
			if msg := err.Error(); !strings.Contains(msg, w.db+": database or disk is full") || strings.Contains(msg, "INSERT") || strings.Contains(msg, "UPDATE") {
				t.Errorf("the error does not say plainly that %s is full: %v", w.db, msg)
			}
			checkIntegrity(ctx, t, w.db)

			// Still no room: the next run stops the same way.
			var tot inProcess
			_, err = w.runInProcessWith(ctx, 1, &tot, state.Options{MaxPageCount: tc.tr.cap})
			if !errors.Is(err, state.ErrFull) {
				t.Errorf("a run on the still full disk: err = %v, want state.ErrFull", err)
			}
			checkIntegrity(ctx, t, w.db)

			// Room again: the runs resume and converge.
			for i := 1; ; i++ {
				if i > 3 {
					t.Fatalf("no run wrote nothing within 3 runs after the disk had room again")
				}
				before := w.writes()
				rep := w.runInProcess(ctx, 1, &tot)
				if rep.ExitCode() == 0 && w.writes() == before {
					break
				}
			}
			w.report(w.verify(ctx))
		})
	}
}

// pageCount is the number of pages of the database at path.
func pageCount(t *testing.T, path string) int {
	t.Helper()
	st, err := state.Open(t.Context(), path, state.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var n int
	if err := st.ReadDB.QueryRowContext(t.Context(), "PRAGMA page_count").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// checkIntegrity fails the test unless SQLite finds the database at path
// intact, its foreign keys included.
func checkIntegrity(ctx context.Context, t *testing.T, path string) {
	t.Helper()
	st, err := state.Open(ctx, path, state.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var res string
	if err := st.ReadDB.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&res); err != nil || res != "ok" {
		t.Errorf("integrity_check of %s: %q, %v", path, res, err)
	}
	rows, err := st.ReadDB.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if rows.Next() {
		t.Errorf("foreign_key_check of %s finds rows that point nowhere", path)
	}
}
