package co3

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/connectors/co3/co3test"
)

// benchContact is a typical contact: most fields filled, some custom
// fields, non-Latin text.
func benchContact(i int) map[string]string {
	return map[string]string{
		"contact_type":                "0",
		"contact_prefix":              "Ing.",
		"contact_firstname":           fmt.Sprintf("Zoë%05d", i),
		"contact_lastname":            "Šimůnek",
		"contact_firm":                "Łódź & Brno s.r.o.",
		"contact_address":             "Piotrkowska 1, 90-001 Łódź",
		"contact_phone":               fmt.Sprintf("+420 601 %06d", i),
		"contact_email":               fmt.Sprintf("zoe.%d@example.com", i),
		"contact_owner":               "jana",
		"contact_job":                 "Head of <Sales>",
		"contact_importance":          fmt.Sprint(i % 5),
		"contact_status":              "active",
		"contact_note":                "Met at the fair; prefers e-mail.",
		"contact_birthday":            "1990-02-28",
		"contact_newsletter":          "1",
		"custom_fields.colour":        "green",
		"custom_fields.hobbies.node0": "chess",
		"custom_fields.hobbies.node1": "reading",
	}
}

// pageBody fetches one 50-contact getContactList reply in format f.
func pageBody(b *testing.B, f Format) []byte {
	e := newEnv(b, envOptions{format: f, record: true})
	for i := range 50 {
		e.emu.Seed(benchContact(i))
	}
	err := e.conn.Pull(context.Background(), connectors.PullOptions{Full: true}, func(context.Context, connectors.Page) error { return nil })
	if err != nil {
		b.Fatal(err)
	}
	// Replay the page request: the recorder may not have stored the
	// reply yet when Pull returns.
	reqs, _, types := e.wire.all()
	resp, err := http.Post(e.url+"/crm", types[len(types)-1], strings.NewReader(reqs[len(reqs)-1]))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	return body
}

func BenchmarkDecodePage(b *testing.B) {
	for _, f := range []Format{JSON, XML} {
		b.Run(string(f), func(b *testing.B) {
			body := pageBody(b, f)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				payload, err := decodeReply(f, body)
				if err != nil {
					b.Fatal(err)
				}
				page, err := contactPageOf(&payload)
				if err != nil || len(page.Contacts) != 50 {
					b.Fatal(err, len(page.Contacts))
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/50, "ns/contact")
		})
	}
}

// BenchmarkFullScan pulls 100,000 contacts (2,000 pages of 50) from the
// emulator over loopback.
func BenchmarkFullScan(b *testing.B) {
	const total = 100_000
	for _, f := range []Format{JSON, XML} {
		b.Run(string(f), func(b *testing.B) {
			e := newEnv(b, envOptions{format: f, pageSize: 50})
			for i := range total {
				e.emu.Seed(benchContact(i))
			}
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				n := 0
				err := e.conn.Pull(context.Background(), connectors.PullOptions{Full: true}, func(_ context.Context, p connectors.Page) error {
					n += len(p.Records)
					return nil
				})
				if err != nil || n != total {
					b.Fatalf("pulled %d: %v", n, err)
				}
			}
			b.ReportMetric(float64(total*b.N)/time.Since(start).Seconds(), "contacts/s")
			if calls := e.emu.Calls(co3test.MethodGetContactList); calls < 2000 {
				b.Fatalf("only %d page calls", calls)
			}
		})
	}
}
