package clientbook

import (
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/connectors"
)

// FuzzDecodeList: no input panics, every rejected input is ErrMalformed,
// and every accepted client has an id.
func FuzzDecodeList(f *testing.F) {
	f.Add([]byte(`{"data":[{"client_id":"1","client_first_name":"Ann","update_date":"2026-01-02 03:04:05"}],"total":1}`))
	loc := time.FixedZone("X", 3600)
	f.Fuzz(func(t *testing.T, body []byte) {
		rep, err := decodeList(body, loc)
		if err != nil {
			if !errors.Is(err, connectors.ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		for _, c := range rep.clients {
			if c.id == "" || c.fields == nil {
				t.Fatalf("accepted a client without id: %+v", c)
			}
		}
		// The fast path must agree with encoding/json on what it accepts.
		if _, _, ok := fastList(body); ok {
			gen, err := decodeListGeneral(body, loc)
			if err != nil {
				t.Fatalf("fast path accepted what encoding/json rejects: %v", err)
			}
			if gen.total != rep.total || len(gen.clients) != len(rep.clients) {
				t.Fatalf("fast %d/%d, general %d/%d", rep.total, len(rep.clients), gen.total, len(gen.clients))
			}
			for i := range gen.clients {
				if !maps.Equal(gen.clients[i].fields, rep.clients[i].fields) || !gen.clients[i].updated.Equal(rep.clients[i].updated) {
					t.Fatalf("client %d: fast %v, general %v", i, rep.clients[i].fields, gen.clients[i].fields)
				}
			}
		}
	})
}

// FuzzDecodeRecord covers the single-client and create replies.
func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte(`{"data":{"client_id":"5","client_tags":["a","b"]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := decodeRecord(body, time.UTC)
		if err == nil && c.id == "" {
			t.Fatalf("accepted a client without id")
		}
		if err != nil && !errors.Is(err, connectors.ErrMalformed) && !errors.Is(err, errNoClient) {
			t.Fatalf("unexpected error class: %v", err)
		}
		id, err := decodeCreated(body)
		if err == nil && id == "" {
			t.Fatalf("accepted an empty new id")
		}
		if err != nil && !errors.Is(err, connectors.ErrMalformed) {
			t.Fatalf("unexpected error class: %v", err)
		}
	})
}
