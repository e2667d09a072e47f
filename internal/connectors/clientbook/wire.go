package clientbook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/syncd/syncd/internal/connectors"
)

// client is one decoded client.
type client struct {
	id     string
	fields map[string]string
	// updated is update_date as an instant; zero when missing or
	// unparseable (such a client sorts as the oldest).
	updated time.Time
}

// listReply is a decoded clients/list reply.
type listReply struct {
	clients []client
	// total is the reply's total, or -1 when it has none.
	total int
}

// decodeList decodes `{"data":[client…],"total":n}`. Tolerated variants:
// `data` as null (no clients) or as an object keyed by id (PHP's encoding
// of an array with gaps; its order is kept), `client_id` and `total` as
// numbers or strings, any value as a number, boolean or null.
func decodeList(body []byte, loc *time.Location) (listReply, error) {
	if data, total, ok := fastList(body); ok {
		return fromFlat(data, listReply{total: total}, loc)
	}
	return decodeListGeneral(body, loc)
}

// decodeListGeneral is decodeList by encoding/json, for every shape.
func decodeListGeneral(body []byte, loc *time.Location) (listReply, error) {
	var env struct {
		Data  json.RawMessage `json:"data"`
		Total json.RawMessage `json:"total"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return listReply{}, fmt.Errorf("%w: not a JSON object: %s", connectors.ErrMalformed, jsonProblem(err))
	}
	out := listReply{total: -1}
	if t := bytes.TrimSpace(env.Total); len(t) > 0 && !bytes.Equal(t, []byte("null")) {
		n, err := strconv.Atoi(strings.Trim(string(t), `"`))
		if err != nil || n < 0 {
			return listReply{}, fmt.Errorf("%w: total is not a count (got %.40s)", connectors.ErrMalformed, t)
		}
		out.total = n
	}
	data := bytes.TrimSpace(env.Data)
	if len(data) == 0 {
		return listReply{}, fmt.Errorf("%w: reply has no data", connectors.ErrMalformed)
	}
	var raws []map[string]json.RawMessage
	switch data[0] {
	case 'n':
		if !bytes.Equal(data, []byte("null")) {
			return listReply{}, fmt.Errorf("%w: data is not a list", connectors.ErrMalformed)
		}
	case '[':
		if err := json.Unmarshal(data, &raws); err != nil {
			return listReply{}, fmt.Errorf("%w: data is not a list of clients: %s", connectors.ErrMalformed, jsonProblem(err))
		}
	case '{':
		var err error
		if raws, err = orderedObjects(data); err != nil {
			return listReply{}, err
		}
	default:
		return listReply{}, fmt.Errorf("%w: data is not a list", connectors.ErrMalformed)
	}
	out.clients = make([]client, 0, len(raws))
	for i, raw := range raws {
		c, err := decodeClient(raw, loc)
		if err != nil {
			return listReply{}, fmt.Errorf("client %d: %w", i, err)
		}
		out.clients = append(out.clients, c)
	}
	return out, nil
}

// fromFlat builds clients from objects of strings.
func fromFlat(flat []map[string]string, out listReply, loc *time.Location) (listReply, error) {
	out.clients = make([]client, 0, len(flat))
	for i, f := range flat {
		if f == nil {
			return listReply{}, fmt.Errorf("client %d: %w: client is not an object", i, connectors.ErrMalformed)
		}
		c := client{id: f["client_id"], fields: f}
		if c.id == "" {
			return listReply{}, fmt.Errorf("client %d: %w: client without client_id", i, connectors.ErrMalformed)
		}
		c.updated = parseDate(f["update_date"], loc)
		out.clients = append(out.clients, c)
	}
	return out, nil
}

// orderedObjects reads an object of objects in document order.
func orderedObjects(data []byte) ([]map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("%w: data: %s", connectors.ErrMalformed, jsonProblem(err))
	}
	var out []map[string]json.RawMessage
	for dec.More() {
		if _, err := dec.Token(); err != nil {
			return nil, fmt.Errorf("%w: data: %s", connectors.ErrMalformed, jsonProblem(err))
		}
		var m map[string]json.RawMessage
		if err := dec.Decode(&m); err != nil || m == nil {
			return nil, fmt.Errorf("%w: data holds something other than clients", connectors.ErrMalformed)
		}
		out = append(out, m)
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("%w: data: %s", connectors.ErrMalformed, jsonProblem(err))
	}
	return out, nil
}

// decodeRecord decodes `{"data":{client}}` (clients/view, clients/edit).
// A reply whose data is null, empty or an empty list means no such client.
func decodeRecord(body []byte, loc *time.Location) (client, error) {
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return client{}, fmt.Errorf("%w: not a JSON object: %s", connectors.ErrMalformed, jsonProblem(err))
	}
	data := bytes.TrimSpace(env.Data)
	switch string(data) {
	case "", "null", "[]", "{}", `""`, "false":
		return client{}, errNoClient
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return client{}, fmt.Errorf("%w: data is not a client: %s", connectors.ErrMalformed, jsonProblem(err))
	}
	return decodeClient(raw, loc)
}

// errNoClient is a well-formed reply without a client.
var errNoClient = errors.New("no client in reply")

// decodeCreated reads the new id from `{"data":{"client_id":"<id>"}}`.
func decodeCreated(body []byte) (string, error) {
	var env struct {
		Data map[string]json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return "", fmt.Errorf("%w: not a JSON object with data: %s", connectors.ErrMalformed, jsonProblem(err))
	}
	id, err := scalar(env.Data["client_id"])
	if err != nil || id == "" {
		return "", fmt.Errorf("%w: reply has no client_id", connectors.ErrMalformed)
	}
	return id, nil
}

func decodeClient(raw map[string]json.RawMessage, loc *time.Location) (client, error) {
	if raw == nil {
		return client{}, fmt.Errorf("%w: client is not an object", connectors.ErrMalformed)
	}
	c := client{fields: make(map[string]string, len(raw))}
	for k, v := range raw {
		if err := flatten(c.fields, k, v); err != nil {
			return client{}, fmt.Errorf("%w: field %q: %s", connectors.ErrMalformed, k, err)
		}
	}
	c.id = c.fields["client_id"]
	if c.id == "" {
		return client{}, fmt.Errorf("%w: client without client_id", connectors.ErrMalformed)
	}
	c.updated = parseDate(c.fields["update_date"], loc)
	return c, nil
}

// flatten stores a JSON value under key: scalars as text, objects with
// dotted keys, lists of scalars joined with ", " (how Client Book shows
// tags), other lists with dotted indexes.
func flatten(dst map[string]string, key string, v json.RawMessage) error {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return errors.New("empty value")
	}
	switch v[0] {
	case '{':
		var m map[string]json.RawMessage
		if err := json.Unmarshal(v, &m); err != nil {
			return err
		}
		for k, sub := range m {
			if err := flatten(dst, key+"."+k, sub); err != nil {
				return err
			}
		}
		return nil
	case '[':
		var list []json.RawMessage
		if err := json.Unmarshal(v, &list); err != nil {
			return err
		}
		texts := make([]string, 0, len(list))
		for _, e := range list {
			s, err := scalar(e)
			if err != nil {
				for i, e := range list {
					if err := flatten(dst, key+"."+strconv.Itoa(i), e); err != nil {
						return err
					}
				}
				return nil
			}
			texts = append(texts, s)
		}
		dst[key] = strings.Join(texts, ", ")
		return nil
	}
	s, err := scalar(v)
	if err != nil {
		return err
	}
	dst[key] = s
	return nil
}

// scalar returns the text of a JSON string, number, boolean or null.
func scalar(v json.RawMessage) (string, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "", errors.New("missing")
	}
	switch v[0] {
	case '"':
		if len(v) >= 2 && v[len(v)-1] == '"' {
			if in := v[1 : len(v)-1]; bytes.IndexByte(in, '\\') < 0 && utf8.Valid(in) {
				return string(in), nil
			}
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", err
		}
		return s, nil
	case 'n':
		if string(v) == "null" {
			return "", nil
		}
	case 't', 'f':
		if string(v) == "true" || string(v) == "false" {
			return string(v), nil
		}
	case '{', '[':
		return "", errors.New("not a scalar")
	default:
		var n json.Number
		if err := json.Unmarshal(v, &n); err == nil {
			return n.String(), nil
		}
	}
	return "", fmt.Errorf("not a JSON value (%.20q)", v)
}

// dateLayouts are the accepted forms of a Client Book date-time: the
// documented one first, then tolerated variants.
var dateLayouts = []string{"2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02"}

// parseDate reads a date-time in loc; zero for empty, "0000-00-00…" or
// unreadable values.
func parseDate(s string, loc *time.Location) time.Time {
	if s == "" || strings.HasPrefix(s, "0000") {
		return time.Time{}
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC()
	}
	for _, l := range dateLayouts {
		if t, err := time.ParseInLocation(l, s, loc); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// jsonProblem describes a decoding error without quoting the body, which
// may echo what was sent.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("unexpected %s at byte %d", te.Value, te.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "truncated"
	}
	return "invalid JSON"
}
