package opencrm

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/connectors/opencrm/opencrmtest"
)

// fullContact is a contact with the fields a real account fills in.
func fullContact(i int) map[string]string {
	n := itoa(i)
	return map[string]string{
		"salutationtype": "Ms.", "firstname": "Given" + n, "lastname": "Family" + n,
		"title": "Engineer", "department": "R&D", "email": "person" + n + "@example.com",
		"phone": "+44 20 7946 " + n, "mobile": "07700 900" + n, "accountid": "88",
		"mailingstreet": n + " High Street", "mailingcity": "London", "mailingzip": "SW1A 1AA",
		"mailingcountry": "United Kingdom", "birthday": "1984-03-29", "description": "Met at the \"expo\"\nfollow up",
		"assigned_user_id": "17", "cf_601": "1",
	}
}

// pageBody is one get_contact_list_full reply of n contacts, as the
// emulator writes it.
func pageBody(tb testing.TB, n int) []byte {
	emu := opencrmtest.New(opencrmtest.Config{Key: testKey, Passkey: testPasskey})
	for i := range n {
		emu.Table.Insert(fullContact(i))
	}
	srv := httptest.NewServer(emu)
	defer srv.Close()
	form := url.Values{"key": {testKey}, "passkey": {testPasskey}, "limit_start": {"0"}, "limit_end": {itoa(n)}}
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/rest/get_contact_list_full/"+formatSegments, strings.NewReader(form.Encode()))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "syncd/"+connectors.Version) // past the emulator's firewall
	resp, err := srv.Client().Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// BenchmarkDecodePage decodes a 1,000-contact page into Records.
func BenchmarkDecodePage(b *testing.B) {
	body := pageBody(b, 1000)
	london, _ := time.LoadLocation("Europe/London")
	c := &Client{loc: london}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		rows, err := decodeList(body)
		if err != nil {
			b.Fatal(err)
		}
		for _, row := range rows {
			if _, _, err := c.record(row, ""); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "contacts/s")
}

// BenchmarkFullPull pulls 100,000 contacts from the emulator over
// loopback. held-MB is what the pull holds when its last page arrives
// (the live heap then, less the live heap before the pull): it must not
// grow with the number of contacts pulled.
func BenchmarkFullPull(b *testing.B) {
	const total = 100_000
	e := newEnv(b, envConfig{})
	for i := range total {
		e.emu.Table.Insert(fullContact(i))
	}
	liveHeap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	b.ReportAllocs()
	var held uint64
	for b.Loop() {
		b.StopTimer()
		before := liveHeap()
		b.StartTimer()
		n := 0
		if err := e.c.Pull(context.Background(), connectors.PullOptions{Full: true}, func(_ context.Context, p connectors.Page) error {
			n += len(p.Records)
			if p.Done {
				b.StopTimer()
				if h := liveHeap(); h > before {
					held = max(held, h-before)
				}
				b.StartTimer()
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		if n != total {
			b.Fatalf("pulled %d", n)
		}
	}
	b.ReportMetric(float64(b.N)*total/b.Elapsed().Seconds(), "contacts/s")
	b.ReportMetric(float64(held)/(1<<20), "held-MB")
}

// BenchmarkIncremental finds one change among 100,000 contacts.
func BenchmarkIncremental(b *testing.B) {
	e := newEnv(b, envConfig{})
	incrementalCost(b, e, 100_000)
	b.ResetTimer()
	calls := 0
	for b.Loop() {
		e.emu.ResetCalls()
		if err := e.c.Pull(context.Background(), connectors.PullOptions{Cursor: "2026-01-05T11:00:00Z"}, func(context.Context, connectors.Page) error { return nil }); err != nil {
			b.Fatal(err)
		}
		calls = e.emu.Calls(MethodListFull)
	}
	b.ReportMetric(float64(calls), "list-calls/pull")
}
