package opencrm

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestDecodeList(t *testing.T) {
	cases := []struct {
		body string
		want []map[string]string
		bad  bool
	}{
		{body: ``, want: nil},
		{body: `null`, want: nil},
		{body: ` [ ] `, want: nil},
		{body: `{}`, want: nil},
		{body: `[{"id":"1","a":"x"},{"id":2,"b":null,"c":true,"d":false,"e":1.5e3}]`, want: []map[string]string{
			{"id": "1", "a": "x"}, {"id": "2", "b": "", "c": "1", "d": "0", "e": "1.5e3"},
		}},
		{body: `{"0":{"id":"1"},"5":{"id":"6"}}`, want: []map[string]string{{"id": "1"}, {"id": "6"}}},
		{body: `[{"id":"1","custom_fields":{"colour":"red","tags":["a","b"],"none":[]}}]`, want: []map[string]string{
			{"id": "1", "custom_fields.colour": "red", "custom_fields.tags.0": "a", "custom_fields.tags.1": "b", "custom_fields.none": ""},
		}},
		{body: `[{"s":"\u00e9\ud83d\ude00\n\"\\\/"}]`, want: []map[string]string{{"s": "é😀\n\"\\/"}}},
		{body: `[1,2]`, bad: true},
		{body: `[{"id":"1"}`, bad: true},
		{body: `[{"id":"1"}] x`, bad: true},
		{body: `{"id":"1"}`, bad: true},
		{body: `<html></html>`, bad: true},
		{body: `[{"a":01}]`, bad: true},
	}
	for _, tc := range cases {
		got, err := decodeList([]byte(tc.body))
		if tc.bad {
			if err == nil {
				t.Errorf("%s: no error", tc.body)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.body, err)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s: %v, want %v", tc.body, got, tc.want)
			continue
		}
		for i := range got {
			if !equalFields(got[i], tc.want[i]) {
				t.Errorf("%s: row %d = %v, want %v", tc.body, i, got[i], tc.want[i])
			}
		}
	}
}

func TestReplyError(t *testing.T) {
	cases := []struct {
		body, msg string
		ok        bool
	}{
		{`{"error":"Unauthorized"}`, "Unauthorized", true},
		{`"Invalid User Details - AUTHENTICATION FAILED"`, "Invalid User Details - AUTHENTICATION FAILED", true},
		{`Invalid User Details - AUTHENTICATION FAILED`, "Invalid User Details - AUTHENTICATION FAILED", true},
		{`{"error":{"code":7,"message":"Unauthorized"}}`, "Unauthorized", true},
		{`{"error":false,"id":"1"}`, "", false},
		{`[{"error":"x"}]`, "", false},
		{`{"firstname":"Ann"}`, "", false},
		{`123`, "", false},
		{`"abc123"`, "", false},
	}
	for _, tc := range cases {
		msg, ok := replyError([]byte(tc.body))
		if ok != tc.ok || tc.msg != "" && msg != tc.msg {
			t.Errorf("%s: (%q, %v), want (%q, %v)", tc.body, msg, ok, tc.msg, tc.ok)
		}
	}
}

func TestDecodeIDAndLogin(t *testing.T) {
	ids := map[string]string{`123456`: "123456", `"42"`: "42", `{"crmid":"7"}`: "7", `{"record_id":8}`: "8", `{"id":"9"}`: "9", " 10\n": "10", `[{"crmid":11}]`: "11"}
	for body, want := range ids {
		if got, err := decodeID([]byte(body)); err != nil || got != want {
			t.Errorf("decodeID(%s) = %q, %v", body, got, err)
		}
	}
	for _, body := range []string{``, `0`, `-3`, `abc`, `{"x":1}`, `1.5`, `"12a"`, `true`, `99999999999999999999`} {
		if got, err := decodeID([]byte(body)); err == nil {
			t.Errorf("decodeID(%s) = %q, want error", body, got)
		}
	}
	logins := []string{`{"ab12cd"}`, `"ab12cd"`, `ab12cd`, `{"accesskey":"ab12cd"}`, `{"accesscode":"ab12cd"}`, " ab12cd\n"}
	for _, body := range logins {
		if got, err := decodeLogin([]byte(body)); err != nil || got != "ab12cd" {
			t.Errorf("decodeLogin(%s) = %q, %v", body, got, err)
		}
	}
	for _, body := range []string{``, `{}`, `""`, `<html>no</html>`, `two words`, `{"a":"b"}`, `{"x":{"accesskey":"k"}}`} {
		if got, err := decodeLogin([]byte(body)); err == nil {
			t.Errorf("decodeLogin(%s) = %q, want error", body, got)
		}
	}
}

func TestNormalise(t *testing.T) {
	london, _ := time.LoadLocation("Europe/London")
	cases := map[string]string{
		"29-03-1984":                "1984-03-29",
		"1984-03-29":                "1984-03-29",
		"0000-00-00":                "",
		"00-00-0000":                "",
		"31-02-1984":                "31-02-1984",
		"2015-08-04 15:04:01":       "2015-08-04T14:04:01Z",
		"2015-08-04T15:04:01+01:00": "2015-08-04T14:04:01Z",
		"2015-01-04T15:04:01+0000":  "2015-01-04T15:04:01Z",
		"0000-00-00 00:00:00":       "",
		"12345678901":               "12345678901",
		"Ann":                       "Ann",
		"2015-08-04 is a date":      "2015-08-04 is a date",
	}
	for in, want := range cases {
		if got := normalise(in, london); got != want {
			t.Errorf("normalise(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzListReply: no panic; the decoder accepts exactly the valid JSON
// arrays of objects (and the documented empty and keyed forms), and every
// row it returns has valid UTF-8.
func FuzzListReply(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		rows, err := decodeList(body)
		trimmed := bytes.TrimSpace(body)
		var std []map[string]any
		stdErr := json.Unmarshal(trimmed, &std)
		if err == nil {
			if !isEmptyReply(trimmed) && !json.Valid(trimmed) {
				t.Fatalf("accepted invalid JSON %q", body)
			}
			if stdErr == nil && len(rows) != len(std) {
				t.Fatalf("%d rows, encoding/json %d", len(rows), len(std))
			}
			for _, r := range rows {
				for k, v := range r {
					if !utf8.ValidString(k) || !utf8.ValidString(v) {
						t.Fatalf("invalid UTF-8 in %q=%q", k, v)
					}
				}
			}
		} else if stdErr == nil && len(trimmed) > 0 && trimmed[0] == '[' && !hasNull(std) && depth(trimmed) < maxDepth {
			t.Fatalf("rejected a valid list %q: %v", body, err)
		}
	})
}

func hasNull(rows []map[string]any) bool {
	for _, r := range rows {
		if r == nil {
			return true
		}
	}
	return false
}

func depth(b []byte) int {
	d, m := 0, 0
	for _, c := range b {
		switch c {
		case '[', '{':
			d++
			m = max(m, d)
		case ']', '}':
			d--
		}
	}
	return m
}

// FuzzRecordReply: no panic; a found record comes from a valid object.
func FuzzRecordReply(f *testing.F) {
	london, _ := time.LoadLocation("Europe/London")
	c := &Client{loc: london}
	f.Fuzz(func(t *testing.T, body []byte) {
		row, found, err := decodeObject(body)
		if err != nil || !found {
			return
		}
		if !json.Valid(bytes.TrimSpace(body)) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		rec, _, err := c.record(row, "5")
		if err != nil {
			t.Fatalf("record with a fallback id: %v", err)
		}
		if _, ok := parseID(rec.ID); !ok {
			t.Fatalf("bad id %q", rec.ID)
		}
	})
}

// FuzzIDReply: no panic; an accepted id is a positive decimal integer.
func FuzzIDReply(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		id, err := decodeID(body)
		if err != nil {
			return
		}
		if id == "" || strings.TrimLeft(id, "0123456789") != "" || id[0] == '0' {
			t.Fatalf("decodeID(%q) = %q", body, id)
		}
	})
}

// FuzzLoginReply: no panic; an accepted key is printable, without quotes,
// braces or spaces.
func FuzzLoginReply(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		key, err := decodeLogin(body)
		if err != nil {
			if !errors.Is(err, errSyntax) {
				t.Fatalf("error %v does not wrap errSyntax", err)
			}
			return
		}
		if !validAccessKey(key) {
			t.Fatalf("decodeLogin(%q) = %q", body, key)
		}
	})
}

// FuzzReplyError: no panic; the documented messages are always found.
func FuzzReplyError(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		msg, ok := replyError(body)
		if ok && msg == "" {
			t.Fatalf("error without a message for %q", body)
		}
		low := strings.ToLower(strings.TrimSpace(string(body)))
		if !ok && len(low) < 1000 && utf8.ValidString(low) && !strings.HasPrefix(low, "[") && !strings.HasPrefix(low, "{") && !strings.HasPrefix(low, `"`) &&
			(strings.Contains(low, msgAuthFailed) || strings.Contains(low, msgUnauthorized)) {
			t.Fatalf("missed an error in %q", body)
		}
	})
}

func TestDecodeCount(t *testing.T) {
	counts := map[string]int{`123`: 123, `0`: 0, " 7\n": 7, `"42"`: 42, `{"count":"5"}`: 5, `{"total":6}`: 6}
	for body, want := range counts {
		if got, err := decodeCount([]byte(body)); err != nil || got != want {
			t.Errorf("decodeCount(%s) = %d, %v; want %d", body, got, err, want)
		}
	}
	for _, body := range []string{``, `-1`, `abc`, `1.5`, `{"x":1}`, `true`, `<html>busy</html>`} {
		if got, err := decodeCount([]byte(body)); err == nil || !errors.Is(err, errSyntax) {
			t.Errorf("decodeCount(%s) = %d, %v; want a syntax error", body, got, err)
		}
	}
}
