package clientbook

import (
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/connectors"
)

func TestDecodeListVariants(t *testing.T) {
	cases := []struct {
		name    string
		body    string
		ids     []string
		total   int
		fields  map[string]string // of the first client
		wantErr error
	}{
		{"documented", `{"data":[{"client_id":"7","client_first_name":"Ann","update_date":"2026-01-02 03:04:05"}],"total":1}`,
			[]string{"7"}, 1, map[string]string{"client_first_name": "Ann"}, nil},
		{"numbers and null", `{"data":[{"client_id":7,"user_id":12,"store":null,"vip":true}],"total":"3"}`,
			[]string{"7"}, 3, map[string]string{"client_id": "7", "user_id": "12", "store": "", "vip": "true"}, nil},
		{"nested and tags", `{"data":[{"client_id":"1","client_tags":["vip","new"],"custom_fields":{"colour":"red"},"notes":[{"t":"a"}]}]}`,
			[]string{"1"}, -1, map[string]string{"client_tags": "vip, new", "custom_fields.colour": "red", "notes.0.t": "a"}, nil},
		{"escapes", `{"data":[{"client_id":"1","client_last_name":"\u0160im\u016fnek \"&\" <Co>"}],"total":1}`,
			[]string{"1"}, 1, map[string]string{"client_last_name": `Šimůnek "&" <Co>`}, nil},
		{"object keyed by id keeps order", `{"data":{"9":{"client_id":"9"},"3":{"client_id":"3"}},"total":2}`,
			[]string{"9", "3"}, 2, nil, nil},
		{"null data", `{"data":null,"total":0}`, nil, 0, nil, nil},
		{"empty list", `{"data":[],"total":0}`, nil, 0, nil, nil},
		{"no data", `{"total":0}`, nil, 0, nil, connectors.ErrMalformed},
		{"no id", `{"data":[{"client_first_name":"x"}]}`, nil, 0, nil, connectors.ErrMalformed},
		{"html", `<html>error</html>`, nil, 0, nil, connectors.ErrMalformed},
		{"truncated", `{"data":[{"client_id":"1"`, nil, 0, nil, connectors.ErrMalformed},
		{"data string", `{"data":"nope"}`, nil, 0, nil, connectors.ErrMalformed},
		{"bad total", `{"data":[],"total":-4}`, nil, 0, nil, connectors.ErrMalformed},
		{"list of numbers", `{"data":[1,2]}`, nil, 0, nil, connectors.ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := decodeList([]byte(tc.body), time.UTC)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, c := range rep.clients {
				ids = append(ids, c.id)
			}
			if strings.Join(ids, ",") != strings.Join(tc.ids, ",") || rep.total != tc.total {
				t.Errorf("ids %v total %d, want %v %d", ids, rep.total, tc.ids, tc.total)
			}
			if len(rep.clients) > 0 {
				got := rep.clients[0].fields
				for k, v := range tc.fields {
					if got[k] != v {
						t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
					}
				}
			}
		})
	}
}

func TestDecodeRecordAndCreated(t *testing.T) {
	if _, err := decodeRecord([]byte(`{"data":[]}`), time.UTC); !errors.Is(err, errNoClient) {
		t.Errorf("empty data: %v", err)
	}
	c, err := decodeRecord([]byte(`{"data":{"client_id":"5","update_date":"2026-01-02 03:04:05"}}`), time.UTC)
	if err != nil || c.id != "5" || !c.updated.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("record = %+v, %v", c, err)
	}
	if id, err := decodeCreated([]byte(`{"data":{"client_id":123}}`)); err != nil || id != "123" {
		t.Errorf("created = %q, %v", id, err)
	}
	if _, err := decodeCreated([]byte(`{"data":{}}`)); !errors.Is(err, connectors.ErrMalformed) {
		t.Errorf("created without id: %v", err)
	}
}

func TestParseDate(t *testing.T) {
	loc := time.FixedZone("X", -5*3600)
	want := time.Date(2026, 1, 2, 8, 4, 5, 0, time.UTC)
	for in, w := range map[string]time.Time{
		"2026-01-02 03:04:05":  want,
		"2026-01-02T03:04:05":  want,
		"2026-01-02T08:04:05Z": want,
		"2026-01-02":           time.Date(2026, 1, 2, 5, 0, 0, 0, time.UTC),
		"0000-00-00 00:00:00":  {},
		"":                     {},
		"yesterday":            {},
		"2026-13-45 99:00:00":  {},
	} {
		if got := parseDate(in, loc); !got.Equal(w) {
			t.Errorf("parseDate(%q) = %v, want %v", in, got, w)
		}
	}
}

func TestFlattenKeepsAllFields(t *testing.T) {
	rep, err := decodeList([]byte(`{"data":[{"client_id":"1","a":"x","b":{"c":{"d":"y"}}}]}`), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"client_id": "1", "a": "x", "b.c.d": "y"}
	if !maps.Equal(rep.clients[0].fields, want) {
		t.Errorf("fields = %v, want %v", rep.clients[0].fields, want)
	}
}
