// Package vcardmap reads and writes vCards (RFC 2426 3.0, RFC 6350 4.0) and
// flattens them into the field names the vcarddir and carddav connectors
// report (see Fields).
//
// The codec keeps every property as it was read: an update re-encodes only
// the properties it changes and writes every other line back byte for byte
// (unfolded and re-folded at 75 octets). General-purpose vCard libraries
// decode escapes in every value and cannot re-encode "\;" or tell a list
// comma from an escaped one, so an update through them would corrupt
// properties syncd never touched (CATEGORIES, escaped semicolons in a
// NOTE). Values are therefore kept escaped, and unescaped only where a
// field is read.
package vcardmap

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxCardBytes bounds one card; a larger one is malformed.
const MaxCardBytes = 1 << 20

// ErrMalformed is wrapped by every parse error.
var ErrMalformed = errors.New("malformed vCard")

// Param is one property parameter. Values are as written (quotes removed,
// RFC 6868 caret sequences left encoded), split on commas outside quotes.
// A vCard 2.1 bare type is read as a TYPE value up to the next ';' or ':'
// and may therefore hold a DQUOTE or a comma.
type Param struct {
	Name   string // upper case
	Values []string
}

// Prop is one content line.
type Prop struct {
	Group  string
	Name   string // upper case
	Params []Param
	// Value is the raw (still escaped) value.
	Value string
	// raw is the unfolded original line; empty once the property changed.
	raw string
}

// Types returns the lower-cased TYPE values of the property (TYPE=a,b and
// repeated TYPE parameters alike, and vCard 2.1 bare types).
func (p *Prop) Types() []string {
	var out []string
	for _, pa := range p.Params {
		if pa.Name == "TYPE" {
			for _, v := range pa.Values {
				// TYPE="work,voice" (vCard 4 quoted list).
				for t := range strings.SplitSeq(v, ",") {
					out = append(out, strings.ToLower(strings.TrimSpace(t)))
				}
			}
		}
	}
	return out
}

// HasType reports whether TYPE includes t (lower case).
func (p *Prop) HasType(t string) bool {
	for _, v := range p.Types() {
		if v == t {
			return true
		}
	}
	return false
}

// Param returns the first value of parameter name, or "".
func (p *Prop) Param(name string) string {
	for _, pa := range p.Params {
		if pa.Name == name && len(pa.Values) > 0 {
			return pa.Values[0]
		}
	}
	return ""
}

// setValue replaces the raw value and drops the VALUE parameter, which
// described the old value's type.
func (p *Prop) setValue(raw string) {
	p.Value = raw
	p.raw = ""
	kept := p.Params[:0]
	for _, pa := range p.Params {
		if pa.Name != "VALUE" {
			kept = append(kept, pa)
		}
	}
	p.Params = kept
}

// Card is one vCard as an ordered list of properties (VERSION included,
// BEGIN and END not).
type Card struct {
	Props []*Prop
}

// Parse reads the first vCard of data. Line endings may be CRLF or LF;
// folded lines are unfolded. Anything outside BEGIN:VCARD ... END:VCARD is
// ignored; a nested card (vCard 2.1 AGENT) is kept as raw lines.
func Parse(data []byte) (*Card, error) {
	if len(data) > MaxCardBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrMalformed, MaxCardBytes)
	}
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("%w: not UTF-8", ErrMalformed)
	}
	c := &Card{}
	depth := 0
	ended := false
	lineNo := 0
	for len(data) > 0 && !ended {
		var line string
		line, data, lineNo = nextLine(data, lineNo)
		if strings.TrimSpace(line) == "" {
			continue
		}
		name := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case name == "BEGIN:VCARD":
			depth++
			if depth == 1 {
				continue
			}
		case name == "END:VCARD":
			if depth == 0 {
				return nil, fmt.Errorf("%w: line %d: END without BEGIN", ErrMalformed, lineNo)
			}
			depth--
			if depth == 0 {
				ended = true
				continue
			}
		}
		if depth == 0 {
			continue
		}
		p, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrMalformed, lineNo, err)
		}
		c.Props = append(c.Props, p)
	}
	if !ended {
		if depth == 0 {
			return nil, fmt.Errorf("%w: no BEGIN:VCARD", ErrMalformed)
		}
		return nil, fmt.Errorf("%w: no END:VCARD", ErrMalformed)
	}
	return c, nil
}

// nextLine returns the next unfolded line and the rest of data.
func nextLine(data []byte, lineNo int) (string, []byte, int) {
	var b strings.Builder
	for first := true; ; first = false {
		i := bytes.IndexByte(data, '\n')
		var seg []byte
		if i < 0 {
			seg, data = data, nil
		} else {
			seg, data = data[:i], data[i+1:]
		}
		lineNo++
		seg = bytes.TrimSuffix(seg, []byte{'\r'})
		if !first {
			seg = seg[1:] // the folding space or tab
		}
		b.Write(seg)
		if len(data) == 0 || (data[0] != ' ' && data[0] != '\t') {
			return b.String(), data, lineNo
		}
	}
}

// parseLine splits "group.NAME;P=v,w;Q="x":value".
func parseLine(line string) (*Prop, error) {
	p := &Prop{raw: line}
	i := strings.IndexAny(line, ";:")
	if i <= 0 {
		return nil, errors.New("no property name")
	}
	name := line[:i]
	if dot := strings.LastIndexByte(name, '.'); dot >= 0 {
		p.Group, name = name[:dot], name[dot+1:]
	}
	if name == "" || strings.ContainsAny(name, " \t\"") {
		return nil, fmt.Errorf("bad property name %q", shorten(line[:i]))
	}
	p.Name = strings.ToUpper(name)
	rest := line[i:]
	for rest != "" && rest[0] == ';' {
		rest = rest[1:]
		pa, tail, err := parseParam(rest)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", p.Name, err)
		}
		p.Params = append(p.Params, pa)
		rest = tail
	}
	if rest == "" || rest[0] != ':' {
		return nil, fmt.Errorf("%s: no value", p.Name)
	}
	p.Value = rest[1:]
	return p, nil
}

// parseParam reads one parameter up to the next ';' or ':' outside quotes.
func parseParam(s string) (Param, string, error) {
	i := strings.IndexAny(s, "=;:")
	if i < 0 {
		return Param{}, "", errors.New("unterminated parameter")
	}
	if s[i] != '=' {
		// vCard 2.1 bare type ("TEL;WORK;VOICE:").
		if i == 0 {
			return Param{}, "", errors.New("empty parameter")
		}
		return Param{Name: "TYPE", Values: []string{s[:i]}}, s[i:], nil
	}
	pa := Param{Name: strings.ToUpper(strings.TrimSpace(s[:i]))}
	if pa.Name == "" {
		return Param{}, "", errors.New("empty parameter name")
	}
	s = s[i+1:]
	for {
		var v string
		if s != "" && s[0] == '"' {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				return Param{}, "", fmt.Errorf("parameter %s: unterminated quote", pa.Name)
			}
			v, s = s[1:1+end], s[2+end:]
		} else {
			end := strings.IndexAny(s, ",;:")
			if end < 0 {
				return Param{}, "", fmt.Errorf("parameter %s: no value follows", pa.Name)
			}
			v, s = s[:end], s[end:]
		}
		pa.Values = append(pa.Values, v)
		if s == "" {
			return Param{}, "", fmt.Errorf("parameter %s: no value follows", pa.Name)
		}
		if s[0] != ',' {
			return pa, s, nil
		}
		s = s[1:]
	}
}

func shorten(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// Get returns the first property called name (upper case), or nil.
func (c *Card) Get(name string) *Prop {
	for _, p := range c.Props {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// All returns the properties called name in card order.
func (c *Card) All(name string) []*Prop {
	var out []*Prop
	for _, p := range c.Props {
		if p.Name == name {
			out = append(out, p)
		}
	}
	return out
}

// Add appends a property with a raw value.
func (c *Card) Add(name, raw string, params ...Param) *Prop {
	p := &Prop{Name: name, Value: raw, Params: params}
	c.Props = append(c.Props, p)
	return p
}

// Remove drops one property.
func (c *Card) Remove(p *Prop) {
	for i, q := range c.Props {
		if q == p {
			c.Props = append(c.Props[:i], c.Props[i+1:]...)
			return
		}
	}
}

// UID returns the card's UID (unescaped; a urn:uuid: prefix is kept).
func (c *Card) UID() string {
	if p := c.Get("UID"); p != nil {
		return UnescapeText(p.Value)
	}
	return ""
}

// Version returns the VERSION value ("3.0", "4.0"; "" when missing).
func (c *Card) Version() string {
	if p := c.Get("VERSION"); p != nil {
		return strings.TrimSpace(p.Value)
	}
	return ""
}

// IsV4 reports whether the card is vCard 4.
func (c *Card) IsV4() bool { return strings.HasPrefix(c.Version(), "4") }

// New returns an empty card of version ("3.0" or "4.0") with a UID and a
// PRODID.
func New(uid, version string) *Card {
	c := &Card{}
	c.Add("VERSION", version)
	c.Add("PRODID", "-//syncd//syncd//EN")
	c.Add("UID", EscapeText(uid))
	return c
}

// Encode writes the card with CRLF line ends, folding lines at 75 octets.
func (c *Card) Encode() []byte {
	return c.AppendEncoded(make([]byte, 0, 512))
}

// AppendEncoded appends the encoded card to buf.
func (c *Card) AppendEncoded(buf []byte) []byte {
	buf = append(buf, "BEGIN:VCARD\r\n"...)
	v4 := c.IsV4()
	for _, p := range c.Props {
		buf = appendFolded(buf, p.line(v4))
	}
	return append(buf, "END:VCARD\r\n"...)
}

// line returns the unfolded content line of p; v4 selects how a DQUOTE
// in a parameter value is written (see appendParamValue).
func (p *Prop) line(v4 bool) string {
	if p.raw != "" {
		return p.raw
	}
	var b strings.Builder
	if p.Group != "" {
		b.WriteString(p.Group)
		b.WriteByte('.')
	}
	b.WriteString(p.Name)
	for _, pa := range p.Params {
		b.WriteByte(';')
		b.WriteString(pa.Name)
		b.WriteByte('=')
		for i, v := range pa.Values {
			if i > 0 {
				b.WriteByte(',')
			}
			appendParamValue(&b, v, v4)
		}
	}
	b.WriteByte(':')
	b.WriteString(p.Value)
	return b.String()
}

// appendParamValue writes one parameter value so that Parse reads it back:
// in double quotes when it holds ',', ';' or ':'. Neither vCard version
// allows a DQUOTE inside a parameter value, quoted or not, yet a bare type
// can carry one (EMAIL;":x); it is written as RFC 6868's ^' in vCard 4,
// which readers decode back to the DQUOTE, and as ' in vCard 3, which has
// no escape for it. Other characters, '^' included, are kept as read:
// values are held as written, so a caret sequence is already encoded.
func appendParamValue(b *strings.Builder, v string, v4 bool) {
	if strings.IndexByte(v, '"') >= 0 {
		dquote := "'"
		if v4 {
			dquote = "^'"
		}
		v = strings.ReplaceAll(v, `"`, dquote)
	}
	if !strings.ContainsAny(v, ",;:") {
		b.WriteString(v)
		return
	}
	b.WriteByte('"')
	b.WriteString(v)
	b.WriteByte('"')
}

// appendFolded appends line folded at 75 octets without splitting a UTF-8
// sequence, then CRLF.
func appendFolded(buf []byte, line string) []byte {
	const limit = 75
	width := limit
	for len(line) > width {
		cut := width
		for cut > 0 && !utf8.RuneStart(line[cut]) {
			cut--
		}
		if cut == 0 {
			cut = width
		}
		buf = append(buf, line[:cut]...)
		buf = append(buf, "\r\n "...)
		line = line[cut:]
		width = limit - 1
	}
	buf = append(buf, line...)
	return append(buf, "\r\n"...)
}

// UnescapeText decodes a TEXT value: \n \N \, \; \\ (an unknown escape
// keeps its character).
func UnescapeText(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch != '\\' || i+1 == len(s) {
			b.WriteByte(ch)
			continue
		}
		i++
		switch s[i] {
		case 'n', 'N':
			b.WriteByte('\n')
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

var textEscaper = strings.NewReplacer(`\`, `\\`, "\r\n", `\n`, "\n", `\n`, "\r", `\n`, ",", `\,`, ";", `\;`)

// EscapeText encodes a TEXT value or component.
func EscapeText(s string) string { return textEscaper.Replace(s) }

// SplitComponents splits a structured value (N, ADR, ORG) on unescaped
// semicolons and unescapes each component.
func SplitComponents(raw string) []string {
	var out []string
	start := 0
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case '\\':
			i++
		case ';':
			out = append(out, UnescapeText(raw[start:i]))
			start = i + 1
		}
	}
	return append(out, UnescapeText(raw[start:]))
}

// splitRawComponents splits on unescaped semicolons, keeping escapes.
func splitRawComponents(raw string) []string {
	var out []string
	start := 0
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case '\\':
			i++
		case ';':
			out = append(out, raw[start:i])
			start = i + 1
		}
	}
	return append(out, raw[start:])
}
