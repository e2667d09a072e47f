package co3

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/syncd/syncd/internal/connectors"
)

// interpret runs every reply reader over a payload; none may panic, and
// every failure must be ErrMalformed.
func interpret(t *testing.T, payload node) {
	check := func(what string, err error) {
		if err != nil && !errors.Is(err, connectors.ErrMalformed) {
			t.Fatalf("%s: error %v does not wrap ErrMalformed", what, err)
		}
	}
	errorOf(&payload)
	_, err := sessionKeyOf(&payload)
	check("sessionKeyOf", err)
	_, err = contactPageOf(&payload)
	check("contactPageOf", err)
	_, err = contactIDsOf(&payload)
	check("contactIDsOf", err)
	_, err = singleContactOf(&payload)
	check("singleContactOf", err)
	_, err = createdIDOf(&payload)
	check("createdIDOf", err)
}

// FuzzDecodeJSON: no input panics, every bad input is ErrMalformed, and
// the decoder accepts exactly the documents encoding/json accepts.
func FuzzDecodeJSON(f *testing.F) {
	f.Add([]byte(`{"response":{"page":0,"pages":1,"contacts":[{"contact_id":1,"custom_fields":{"h":{"node0":"a"}}}]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		_, rawErr := decodeJSON(body)
		deep := rawErr != nil && strings.Contains(rawErr.Error(), "nested deeper")
		if valid := json.Valid(body); !deep && valid != (rawErr == nil) {
			t.Fatalf("json.Valid = %v but decodeJSON error = %v", valid, rawErr)
		}
		payload, err := decodeReply(JSON, body)
		if err != nil {
			if !errors.Is(err, connectors.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		interpret(t, payload)
	})
}

// FuzzDecodeXML: no input panics and every bad input is ErrMalformed.
func FuzzDecodeXML(f *testing.F) {
	f.Add([]byte(`<response><page>0</page><pages>1</pages><contacts><contact><contact_id>1</contact_id></contact></contacts></response>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		payload, err := decodeReply(XML, body)
		if err != nil {
			if !errors.Is(err, connectors.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		interpret(t, payload)
	})
}

// FuzzStringRoundTrip: what the encoders write, the decoders read back.
func FuzzStringRoundTrip(f *testing.F) {
	for _, s := range []string{"", "Zoë Šimůnek", "Łódź <&>", "]]>", "a]]]>b", "\x00\x7f", "\"\\/\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		body, err := encodeCommand(JSON, "m", []param{str("v", s)})
		if err != nil {
			t.Fatal(err)
		}
		root, err := decodeJSON(body)
		if err != nil {
			t.Fatalf("JSON %q: %v", body, err)
		}
		cmd, _ := root.get("command")
		m, _ := cmd.get("m")
		v, _ := m.get("v")
		if want := strings.ToValidUTF8(s, "\uFFFD"); v.text != want && utf8.ValidString(s) {
			t.Fatalf("JSON round trip %q -> %q", s, v.text)
		}
		body, err = encodeCommand(XML, "m", []param{str("v", s)})
		if !isXMLText(s) {
			if err == nil {
				t.Fatalf("XML accepted %q", s)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		_, xroot, err := decodeXML(body)
		if err != nil {
			t.Fatalf("XML %q: %v", body, err)
		}
		m, _ = xroot.get("m")
		v, _ = m.get("v")
		if v.text != s {
			t.Fatalf("XML round trip %q -> %q", s, v.text)
		}
	})
}
