package clientapi

import (
	"errors"
	"testing"

	"github.com/syncd/syncd/internal/connectors"
)

// FuzzDecodeDetails: no input panics; every rejection is ErrMalformed or
// ErrAuth; every accepted record has an id.
func FuzzDecodeDetails(f *testing.F) {
	f.Add(200, "application/json", []byte(`{"status":"success","message":"ok","data":{"id":"1","firstname":"A","lastlogin":"2026-01-02 03:04:05"}}`))
	f.Fuzz(func(t *testing.T, status int, contentType string, body []byte) {
		rec, err := decodeDetails(status, contentType, body)
		if err != nil {
			if !errors.Is(err, connectors.ErrMalformed) && !errors.Is(err, connectors.ErrAuth) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		if rec.ID == "" || rec.ID != rec.Fields["id"] {
			t.Fatalf("accepted a record without id: %+v", rec)
		}
	})
}
