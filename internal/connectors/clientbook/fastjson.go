package clientbook

import (
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// fastList decodes the common shape of a clients/list reply —
// {"data":[{"k":"v",…},…],"total":n} with scalar values only — several
// times faster than encoding/json. It gives up (ok=false) on anything else,
// valid or not, and decodeList then takes the general path; so it only has
// to be right about what it accepts, which FuzzDecodeList checks against
// encoding/json.
func fastList(b []byte) (data []map[string]string, total int, ok bool) {
	p := fastParser{b: b}
	total = -1
	sawData := false
	if !p.byte('{') {
		return nil, 0, false
	}
	if p.peek() == '}' {
		return nil, 0, false
	}
	for {
		key, ok := p.str()
		if !ok || !p.byte(':') {
			return nil, 0, false
		}
		switch key {
		case "data":
			if sawData {
				return nil, 0, false
			}
			sawData = true
			switch p.peek() {
			case 'n':
				if !p.lit("null") {
					return nil, 0, false
				}
				data = nil
			case '[':
				if data, ok = p.objects(); !ok {
					return nil, 0, false
				}
			default:
				return nil, 0, false
			}
		case "total":
			if p.peek() == '"' {
				return nil, 0, false // the general path reads it verbatim
			}
			v, isNull, ok := p.scalar()
			if !ok {
				return nil, 0, false
			}
			total = -1
			if !isNull {
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 {
					return nil, 0, false
				}
				total = n
			}
		default:
			// encoding/json matches field names without regard to case.
			if strings.EqualFold(key, "data") || strings.EqualFold(key, "total") {
				return nil, 0, false
			}
			if _, _, ok := p.scalar(); !ok {
				return nil, 0, false
			}
		}
		switch p.next() {
		case ',':
			continue
		case '}':
			p.ws()
			if p.i != len(p.b) || !sawData {
				return nil, 0, false
			}
			return data, total, true
		default:
			return nil, 0, false
		}
	}
}

type fastParser struct {
	b []byte
	i int
}

func (p *fastParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte without consuming it (0 at end).
func (p *fastParser) peek() byte {
	p.ws()
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

// next consumes and returns the next non-space byte (0 at end).
func (p *fastParser) next() byte {
	c := p.peek()
	if c != 0 {
		p.i++
	}
	return c
}

func (p *fastParser) byte(c byte) bool { return p.next() == c }

func (p *fastParser) lit(s string) bool {
	if len(p.b)-p.i >= len(s) && string(p.b[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return false
}

// objects reads a list of flat objects.
func (p *fastParser) objects() ([]map[string]string, bool) {
	p.i++ // '['
	out := make([]map[string]string, 0, 64)
	if p.peek() == ']' {
		p.i++
		return out, true
	}
	for {
		m, ok := p.object()
		if !ok {
			return nil, false
		}
		out = append(out, m)
		switch p.next() {
		case ',':
		case ']':
			return out, true
		default:
			return nil, false
		}
	}
}

func (p *fastParser) object() (map[string]string, bool) {
	if !p.byte('{') {
		return nil, false
	}
	m := make(map[string]string, 32)
	if p.peek() == '}' {
		p.i++
		return m, true
	}
	for {
		k, ok := p.str()
		if !ok || !p.byte(':') {
			return nil, false
		}
		v, _, ok := p.scalar()
		if !ok {
			return nil, false
		}
		m[k] = v
		switch p.next() {
		case ',':
		case '}':
			return m, true
		default:
			return nil, false
		}
	}
}

// scalar reads a string, number, true, false or null as text (null: "").
func (p *fastParser) scalar() (v string, isNull bool, ok bool) {
	switch c := p.peek(); {
	case c == '"':
		v, ok = p.str()
		return v, false, ok
	case c == 'n':
		return "", true, p.lit("null")
	case c == 't':
		return "true", false, p.lit("true")
	case c == 'f':
		return "false", false, p.lit("false")
	case c == '-' || c >= '0' && c <= '9':
		v, ok = p.number()
		return v, false, ok
	}
	return "", false, false
}

// number reads a JSON number by its grammar and returns its text.
func (p *fastParser) number() (string, bool) {
	start := p.i
	b := p.b
	digits := func() int {
		n := 0
		for p.i < len(b) && b[p.i] >= '0' && b[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if p.i < len(b) && b[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(b) && b[p.i] == '0':
		p.i++
	case digits() == 0:
		return "", false
	}
	if p.i < len(b) && b[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return "", false
		}
	}
	if p.i < len(b) && (b[p.i] == 'e' || b[p.i] == 'E') {
		p.i++
		if p.i < len(b) && (b[p.i] == '+' || b[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return "", false
		}
	}
	return string(b[start:p.i]), true
}

// str reads a JSON string. It gives up on invalid UTF-8 and lone
// surrogates, which encoding/json replaces rather than rejects.
func (p *fastParser) str() (string, bool) {
	if p.next() != '"' {
		return "", false
	}
	b := p.b
	start := p.i
	for p.i < len(b) {
		c := b[p.i]
		switch {
		case c == '"':
			s := b[start:p.i]
			p.i++
			if !utf8.Valid(s) {
				return "", false
			}
			return string(s), true
		case c == '\\':
			return p.escaped(start)
		case c < 0x20:
			return "", false
		}
		p.i++
	}
	return "", false
}

// escaped finishes a string that contains escapes.
func (p *fastParser) escaped(start int) (string, bool) {
	b := p.b
	out := make([]byte, 0, p.i-start+16)
	out = append(out, b[start:p.i]...)
	for p.i < len(b) {
		c := b[p.i]
		switch {
		case c == '"':
			p.i++
			if !utf8.Valid(out) {
				return "", false
			}
			return string(out), true
		case c < 0x20:
			return "", false
		case c != '\\':
			out = append(out, c)
			p.i++
			continue
		}
		if p.i+1 >= len(b) {
			return "", false
		}
		e := b[p.i+1]
		p.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", false
			}
			if utf16.IsSurrogate(r) {
				if !p.lit(`\u`) {
					return "", false
				}
				r2, ok := p.hex4()
				if !ok {
					return "", false
				}
				r = utf16.DecodeRune(r, r2)
				if r == utf8.RuneError {
					return "", false
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", false
		}
	}
	return "", false
}

func (p *fastParser) hex4() (rune, bool) {
	if len(p.b)-p.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range p.b[p.i : p.i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	p.i += 4
	return r, true
}
