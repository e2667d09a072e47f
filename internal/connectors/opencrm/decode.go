package opencrm

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// The reply decoders. OpenCRM's replies are loose (PHP output): lists may
// come as arrays or as objects keyed by index, ids as numbers or strings,
// errors as objects, JSON strings or bare text. A small purpose-built JSON
// reader flattens each record straight into map[string]string (nested
// values under dotted keys), which is both tolerant and fast enough for
// 100,000-contact pulls.

// errSyntax marks a reply that is not the JSON it claims to be.
var errSyntax = errors.New("invalid JSON")

// maxDepth bounds nesting so hostile replies cannot exhaust the stack.
const maxDepth = 64

// reader reads JSON from a string: values without escapes are substrings
// of the reply, so a page costs one copy of the body instead of one
// allocation per value.
type reader struct {
	b string
	i int
}

func (r *reader) skipSpace() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

func (r *reader) fail(what string) error {
	return fmt.Errorf("%w: %s at offset %d", errSyntax, what, r.i)
}

// value reads one JSON value and stores its flattened form in out under
// name: scalars as text (true "1", false "0", null ""), objects and arrays
// as name.key and name.index; an empty container stores name = "".
func (r *reader) value(name string, out map[string]string, depth int) error {
	if depth > maxDepth {
		return r.fail("nesting too deep")
	}
	r.skipSpace()
	if r.i >= len(r.b) {
		return r.fail("unexpected end")
	}
	switch c := r.b[r.i]; {
	case c == '{':
		return r.object(name, out, depth)
	case c == '[':
		r.i++
		r.skipSpace()
		if r.i < len(r.b) && r.b[r.i] == ']' {
			r.i++
			out[name] = ""
			return nil
		}
		for n := 0; ; n++ {
			if err := r.value(join(name, strconv.Itoa(n)), out, depth+1); err != nil {
				return err
			}
			r.skipSpace()
			if r.i >= len(r.b) {
				return r.fail("unterminated array")
			}
			if r.b[r.i] == ',' {
				r.i++
				continue
			}
			if r.b[r.i] == ']' {
				r.i++
				return nil
			}
			return r.fail("expected , or ]")
		}
	case c == '"':
		s, err := r.str()
		if err != nil {
			return err
		}
		out[name] = s
		return nil
	default:
		s, err := r.scalar()
		if err != nil {
			return err
		}
		out[name] = s
		return nil
	}
}

// object reads an object; its members go to out under name.key (or key
// at the top level, where name is "").
func (r *reader) object(name string, out map[string]string, depth int) error {
	r.i++ // {
	r.skipSpace()
	if r.i < len(r.b) && r.b[r.i] == '}' {
		r.i++
		if name != "" {
			out[name] = ""
		}
		return nil
	}
	for {
		r.skipSpace()
		if r.i >= len(r.b) || r.b[r.i] != '"' {
			return r.fail("expected a member name")
		}
		key, err := r.str()
		if err != nil {
			return err
		}
		r.skipSpace()
		if r.i >= len(r.b) || r.b[r.i] != ':' {
			return r.fail("expected :")
		}
		r.i++
		if err := r.value(join(name, key), out, depth+1); err != nil {
			return err
		}
		r.skipSpace()
		if r.i >= len(r.b) {
			return r.fail("unterminated object")
		}
		if r.b[r.i] == ',' {
			r.i++
			continue
		}
		if r.b[r.i] == '}' {
			r.i++
			return nil
		}
		return r.fail("expected , or }")
	}
}

func join(name, key string) string {
	if name == "" {
		return key
	}
	return name + "." + key
}

// scalar reads a number, true, false or null.
func (r *reader) scalar() (string, error) {
	rest := r.b[r.i:]
	for _, lit := range [...]struct{ word, val string }{{"true", "1"}, {"false", "0"}, {"null", ""}} {
		if strings.HasPrefix(rest, lit.word) {
			r.i += len(lit.word)
			return lit.val, nil
		}
	}
	start := r.i
	if r.i < len(r.b) && r.b[r.i] == '-' {
		r.i++
	}
	intStart := r.i
	if !r.digits() {
		return "", r.fail("expected a value")
	}
	if r.b[intStart] == '0' && r.i-intStart > 1 {
		return "", r.fail("leading zero")
	}
	if r.i < len(r.b) && r.b[r.i] == '.' {
		r.i++
		if !r.digits() {
			return "", r.fail("bad number")
		}
	}
	if r.i < len(r.b) && (r.b[r.i] == 'e' || r.b[r.i] == 'E') {
		r.i++
		if r.i < len(r.b) && (r.b[r.i] == '+' || r.b[r.i] == '-') {
			r.i++
		}
		if !r.digits() {
			return "", r.fail("bad number")
		}
	}
	return r.b[start:r.i], nil
}

func (r *reader) digits() bool {
	start := r.i
	for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
		r.i++
	}
	return r.i > start
}

// str reads a JSON string. Invalid UTF-8 and lone surrogates become U+FFFD,
// as encoding/json does.
func (r *reader) str() (string, error) {
	r.i++ // opening quote
	start := r.i
	// Fast path: no escapes, plain ASCII or valid UTF-8.
	for r.i < len(r.b) {
		c := r.b[r.i]
		if c == '"' {
			s := r.b[start:r.i]
			r.i++
			if utf8.ValidString(s) {
				return s, nil
			}
			return strings.ToValidUTF8(s, "\uFFFD"), nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", r.fail("control character in string")
		}
		r.i++
	}
	var sb strings.Builder
	sb.WriteString(r.b[start:r.i])
	for r.i < len(r.b) {
		c := r.b[r.i]
		switch {
		case c == '"':
			r.i++
			return strings.ToValidUTF8(sb.String(), "\uFFFD"), nil
		case c < 0x20:
			return "", r.fail("control character in string")
		case c != '\\':
			sb.WriteByte(c)
			r.i++
			continue
		}
		r.i++
		if r.i >= len(r.b) {
			break
		}
		e := r.b[r.i]
		r.i++
		switch e {
		case '"', '\\', '/':
			sb.WriteByte(e)
		case 'b':
			sb.WriteByte('\b')
		case 'f':
			sb.WriteByte('\f')
		case 'n':
			sb.WriteByte('\n')
		case 'r':
			sb.WriteByte('\r')
		case 't':
			sb.WriteByte('\t')
		case 'u':
			ru, ok := r.hex4()
			if !ok {
				return "", r.fail("bad \\u escape")
			}
			if utf16.IsSurrogate(ru) {
				ru2 := rune(utf8.RuneError)
				save := r.i
				if r.i+1 < len(r.b) && r.b[r.i] == '\\' && r.b[r.i+1] == 'u' {
					r.i += 2
					if lo, ok := r.hex4(); ok {
						ru2 = lo
					} else {
						return "", r.fail("bad \\u escape")
					}
				}
				if dec := utf16.DecodeRune(ru, ru2); dec != utf8.RuneError {
					ru = dec
				} else {
					ru = utf8.RuneError
					r.i = save // the second escape stands on its own
				}
			}
			sb.WriteRune(ru)
		default:
			return "", r.fail("bad escape")
		}
	}
	return "", r.fail("unterminated string")
}

func (r *reader) hex4() (rune, bool) {
	if r.i+4 > len(r.b) {
		return 0, false
	}
	var v rune
	for _, c := range r.b[r.i : r.i+4] {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			v = v<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	r.i += 4
	return v, true
}

// end checks that only white space follows the value.
func (r *reader) end() error {
	r.skipSpace()
	if r.i != len(r.b) {
		return r.fail("trailing data")
	}
	return nil
}

// Reply messages of the API (compared case-insensitively).
const (
	msgAuthFailed   = "authentication failed"
	msgUnauthorized = "unauthorized"
)

// replyError finds an error in a reply body: an object with an "error"
// member (any value), or a JSON string or bare text holding one of the
// documented messages. ok is false for every other body.
func replyError(body []byte) (msg string, ok bool) {
	t := bytes.TrimSpace(body)
	if len(t) == 0 {
		return "", false
	}
	switch t[0] {
	case '[':
		return "", false
	case '{':
		if !bytes.Contains(t, []byte(`"error"`)) && !bytes.Contains(t, []byte(`"Error"`)) {
			return "", false
		}
		top := map[string]string{}
		r := &reader{b: string(t)}
		if err := r.object("", top, 0); err != nil || r.end() != nil {
			return "", false
		}
		if v, ok := errorMember(top); ok {
			return v, true
		}
		return "", false
	case '"':
		r := &reader{b: string(t)}
		s, err := r.str()
		if err != nil || r.end() != nil {
			return "", false
		}
		t = []byte(s)
	}
	if len(t) > 1000 {
		return "", false
	}
	low := strings.ToLower(string(t))
	if strings.Contains(low, msgAuthFailed) || strings.Contains(low, msgUnauthorized) {
		return strings.TrimSpace(string(t)), true
	}
	return "", false
}

// errorMember finds the error of a flattened object: "error" (any case)
// holding a message, or a nested error object's message or first member.
// {"error":false} and {"error":""} are PHP ways of saying none.
func errorMember(top map[string]string) (string, bool) {
	var nested []string
	for k, v := range top {
		switch {
		case strings.EqualFold(k, "error"):
			switch v {
			case "", "0":
				return "", false
			case "1":
				if m := top["message"]; m != "" {
					return m, true
				}
				return "error", true
			}
			return v, true
		case len(k) > 6 && strings.EqualFold(k[:6], "error.") && v != "":
			nested = append(nested, k)
		}
	}
	if len(nested) == 0 {
		return "", false
	}
	slices.Sort(nested)
	for _, k := range nested {
		if strings.EqualFold(k[6:], "message") {
			return top[k], true
		}
	}
	return top[nested[0]], true
}

// decodeList reads a list reply into flattened rows. Accepted: an array of
// objects; an object whose members are all objects (PHP's encoding of an
// array with gaps); and, for an empty result, an empty body, null, false,
// "", [] or {}.
func decodeList(body []byte) ([]map[string]string, error) {
	t := bytes.TrimSpace(body)
	if isEmptyReply(t) {
		return nil, nil
	}
	r := &reader{b: string(t)}
	var rows []map[string]string
	switch t[0] {
	case '[':
		r.i++
		r.skipSpace()
		if r.i < len(r.b) && r.b[r.i] == ']' {
			r.i++
			return nil, r.end()
		}
		rows = make([]map[string]string, 0, 64)
		for {
			r.skipSpace()
			if r.i >= len(r.b) || r.b[r.i] != '{' {
				return nil, fmt.Errorf("%w: list element is not an object", errSyntax)
			}
			row := make(map[string]string, 24)
			if err := r.object("", row, 1); err != nil {
				return nil, err
			}
			rows = append(rows, row)
			r.skipSpace()
			if r.i >= len(r.b) {
				return nil, r.fail("unterminated array")
			}
			if r.b[r.i] == ',' {
				r.i++
				continue
			}
			if r.b[r.i] == ']' {
				r.i++
				break
			}
			return nil, r.fail("expected , or ]")
		}
	case '{':
		r.i++
		for {
			r.skipSpace()
			if r.i >= len(r.b) || r.b[r.i] != '"' {
				return nil, r.fail("expected a member name")
			}
			if _, err := r.str(); err != nil {
				return nil, err
			}
			r.skipSpace()
			if r.i >= len(r.b) || r.b[r.i] != ':' {
				return nil, r.fail("expected :")
			}
			r.i++
			r.skipSpace()
			if r.i >= len(r.b) || r.b[r.i] != '{' {
				return nil, fmt.Errorf("%w: expected a list, got an object", errSyntax)
			}
			row := make(map[string]string, 24)
			if err := r.object("", row, 1); err != nil {
				return nil, err
			}
			rows = append(rows, row)
			r.skipSpace()
			if r.i >= len(r.b) {
				return nil, r.fail("unterminated object")
			}
			if r.b[r.i] == ',' {
				r.i++
				continue
			}
			if r.b[r.i] == '}' {
				r.i++
				break
			}
			return nil, r.fail("expected , or }")
		}
	default:
		return nil, fmt.Errorf("%w: expected a list, got %s", errSyntax, describe(t))
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	return rows, nil
}

// decodeObject reads a single-record reply: one object, or an array
// holding exactly one object. found is false for the empty forms (empty
// body, null, false, "", [], {}), which a get of a missing record may
// produce.
func decodeObject(body []byte) (row map[string]string, found bool, err error) {
	t := bytes.TrimSpace(body)
	if isEmptyReply(t) {
		return nil, false, nil
	}
	switch t[0] {
	case '{':
		row = make(map[string]string, 32)
		r := &reader{b: string(t)}
		if err := r.object("", row, 0); err != nil {
			return nil, false, err
		}
		return row, true, r.end()
	case '[':
		rows, err := decodeList(t)
		if err != nil {
			return nil, false, err
		}
		if len(rows) != 1 {
			return nil, false, fmt.Errorf("%w: expected one record, got %d", errSyntax, len(rows))
		}
		return rows[0], true, nil
	}
	return nil, false, fmt.Errorf("%w: expected an object, got %s", errSyntax, describe(t))
}

func isEmptyReply(t []byte) bool {
	switch string(t) {
	case "", "null", "false", `""`, "[]", "{}":
		return true
	}
	if len(t) >= 2 && (t[0] == '[' && t[len(t)-1] == ']' || t[0] == '{' && t[len(t)-1] == '}') {
		return len(bytes.TrimSpace(t[1:len(t)-1])) == 0
	}
	return false
}

// describe names what a body looks like for an error message without
// quoting it (it might echo a credential).
func describe(t []byte) string {
	switch {
	case len(t) == 0:
		return "an empty reply"
	case t[0] == '"':
		return "a string"
	case t[0] == '<':
		return "HTML or XML"
	case t[0] == '-' || t[0] >= '0' && t[0] <= '9':
		return "a number"
	}
	return fmt.Sprintf("%d bytes of text", len(t))
}

// idKeys are the id members a record may carry, in order of preference.
var idKeys = [...]string{"id", "crmid", "record_id"}

// rowID returns the record id of a flattened row, or "" when none is a
// valid id.
func rowID(row map[string]string) string {
	for _, k := range idKeys {
		if v, ok := row[k]; ok {
			if id, ok := parseID(v); ok {
				return id
			}
		}
	}
	return ""
}

// parseID accepts a positive decimal integer (surrounding spaces allowed)
// and returns it without leading zeros.
func parseID(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 19 {
		return "", false
	}
	n, err := strconv.ParseUint(s, 10, 63)
	if err != nil || n == 0 {
		return "", false
	}
	if s[0] == '0' || s[0] == '+' {
		return strconv.FormatUint(n, 10), true
	}
	return s, true
}

// decodeID reads edit_contact's reply: a number, a numeric string, or an
// object with crmid, record_id or id.
func decodeID(body []byte) (string, error) {
	t := bytes.TrimSpace(body)
	if len(t) == 0 {
		return "", fmt.Errorf("%w: empty reply", errSyntax)
	}
	var s string
	switch t[0] {
	case '{', '[':
		row, found, err := decodeObject(t)
		if err != nil {
			return "", err
		}
		if !found {
			return "", fmt.Errorf("%w: no id in the reply", errSyntax)
		}
		for _, k := range [...]string{"crmid", "record_id", "id"} {
			if id, ok := parseID(row[k]); ok {
				return id, nil
			}
		}
		return "", fmt.Errorf("%w: no id in the reply", errSyntax)
	case '"':
		r := &reader{b: string(t)}
		v, err := r.str()
		if err != nil {
			return "", err
		}
		if err := r.end(); err != nil {
			return "", err
		}
		s = v
	default:
		s = string(t)
	}
	id, ok := parseID(s)
	if !ok {
		return "", fmt.Errorf("%w: expected a record id, got %s", errSyntax, describe(t))
	}
	return id, nil
}

// decodeCount reads get_contact_list_count's reply: a bare integer
// (documented), a numeric string, or an object with count or total.
func decodeCount(body []byte) (int, error) {
	t := bytes.TrimSpace(body)
	if len(t) == 0 {
		return 0, fmt.Errorf("%w: empty reply", errSyntax)
	}
	var s string
	switch t[0] {
	case '{', '[':
		row, found, err := decodeObject(t)
		if err != nil {
			return 0, err
		}
		if !found {
			return 0, fmt.Errorf("%w: no count in the reply", errSyntax)
		}
		for _, k := range [...]string{"count", "total"} {
			if v, ok := row[k]; ok {
				s = v
				break
			}
		}
	case '"':
		r := &reader{b: string(t)}
		v, err := r.str()
		if err != nil {
			return 0, err
		}
		if err := r.end(); err != nil {
			return 0, err
		}
		s = v
	default:
		s = string(t)
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: expected a record count, got %s", errSyntax, describe(t))
	}
	return n, nil
}

// decodeLogin reads login's reply: a JSON string, bare text, an object
// {"accesskey":"…"} (or accesscode, code, access_key), or the documented
// literal {"…"} form, which is not valid JSON.
func decodeLogin(body []byte) (string, error) {
	t := bytes.TrimSpace(body)
	var key string
	switch {
	case len(t) == 0:
		return "", fmt.Errorf("%w: empty login reply", errSyntax)
	case len(t) >= 4 && t[0] == '{' && t[1] == '"' && t[len(t)-2] == '"' && t[len(t)-1] == '}' &&
		!bytes.ContainsAny(t[2:len(t)-2], `":`):
		key = string(t[2 : len(t)-2])
	case t[0] == '{':
		row, found, err := decodeObject(t)
		if err != nil {
			return "", err
		}
		if found {
			for _, k := range [...]string{"accesskey", "accesscode", "code", "access_key"} {
				if v := row[k]; v != "" {
					key = v
					break
				}
			}
		}
		if key == "" {
			return "", fmt.Errorf("%w: no access key in the login reply", errSyntax)
		}
	case t[0] == '"':
		r := &reader{b: string(t)}
		v, err := r.str()
		if err != nil {
			return "", err
		}
		if err := r.end(); err != nil {
			return "", err
		}
		key = v
	default:
		key = string(t)
	}
	key = strings.TrimSpace(key)
	if !validAccessKey(key) {
		return "", fmt.Errorf("%w: login reply is not an access key", errSyntax)
	}
	return key, nil
}

// validAccessKey accepts printable ASCII without spaces, quotes or
// braces, up to 512 bytes: anything else is an HTML page or an error.
func validAccessKey(s string) bool {
	if s == "" || len(s) > 512 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == '{' || c == '}' || c == '<' || c == '>' || c == '\'' || c == '\\' {
			return false
		}
	}
	return true
}

// Time layouts: syncd asks for ISO 8601 (PHP "c") date-times and Y-m-d
// dates, and still reads OpenCRM's defaults.
const (
	layoutLocal     = "2006-01-02 15:04:05"
	layoutDate      = "2006-01-02"
	layoutDateDMY   = "02-01-2006"
	layoutISOOffset = "2006-01-02T15:04:05Z07:00"
)

// parseDateTime reads a date-time in ISO 8601 with an offset, or the
// default wall-clock form in loc.
func parseDateTime(s string, loc *time.Location) (time.Time, bool) {
	switch {
	case len(s) == 19 && s[4] == '-' && s[10] == ' ':
		t, err := time.ParseInLocation(layoutLocal, s, loc)
		return t, err == nil
	case len(s) == 19 && s[4] == '-' && s[10] == 'T':
		t, err := time.ParseInLocation("2006-01-02T15:04:05", s, loc)
		return t, err == nil
	case len(s) > 19 && s[4] == '-' && s[10] == 'T':
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t, err = time.Parse("2006-01-02T15:04:05Z0700", s)
		}
		return t, err == nil
	case len(s) == 19 && s[2] == '-' && s[5] == '-' && s[10] == ' ':
		t, err := time.ParseInLocation("02-01-2006 15:04:05", s, loc)
		return t, err == nil
	}
	return time.Time{}, false
}

// normalise rewrites date and date-time values to one form whatever output
// format the server used: dates as YYYY-MM-DD, date-times as RFC 3339 in
// UTC, MySQL zero dates as "". Any value that is exactly a date or a
// date-time is rewritten (custom date fields are cf_<n> and cannot be told
// apart by name); other text is left alone.
func normalise(v string, loc *time.Location) string {
	n := len(v)
	if n != 10 && (n < 19 || n > 35) {
		return v
	}
	if !isDigit(v[0]) || !isDigit(v[1]) {
		return v
	}
	if n == 10 {
		switch {
		case v == "0000-00-00" || v == "00-00-0000":
			return ""
		case v[4] == '-' && v[7] == '-':
			if _, err := time.Parse(layoutDate, v); err == nil {
				return v
			}
		case v[2] == '-' && v[5] == '-':
			if t, err := time.Parse(layoutDateDMY, v); err == nil {
				return t.Format(layoutDate)
			}
		}
		return v
	}
	if strings.HasPrefix(v, "0000-00-00") {
		return ""
	}
	if t, ok := parseDateTime(v, loc); ok {
		return t.UTC().Format(time.RFC3339)
	}
	return v
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
