package co3

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// decodeJSON parses a whole JSON document into a node. It follows the JSON
// grammar exactly (what encoding/json accepts, the fuzz target checks it)
// and keeps number literals as text, so ids and phone numbers sent as
// numbers are never rounded. Unescaped strings share the memory of one copy
// of the body instead of costing an allocation each.
func decodeJSON(body []byte) (node, error) {
	p := jsonParser{s: string(body)}
	p.space()
	v, err := p.value(0)
	if err != nil {
		return node{}, err
	}
	p.space()
	if p.i < len(p.s) {
		return node{}, p.errorf("data after the JSON value")
	}
	return v, nil
}

type jsonParser struct {
	s string
	i int
	// keys and kids are scratch stacks: members collect here and move to
	// an exactly sized slice when their object or array closes, which
	// saves the repeated growth of appending to the node itself.
	keys []string
	kids []node
}

func (p *jsonParser) errorf(format string, args ...any) error {
	if p.i >= len(p.s) {
		return fmt.Errorf("JSON: %w after %d bytes", errTruncated, len(p.s))
	}
	return fmt.Errorf("JSON: byte %d: %s", p.i, fmt.Sprintf(format, args...))
}

func (p *jsonParser) space() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) value(depth int) (node, error) {
	if depth > maxDepth {
		return node{}, p.errorf("nested deeper than %d levels", maxDepth)
	}
	if p.i >= len(p.s) {
		return node{}, p.errorf("value expected")
	}
	switch c := p.s[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		s, err := p.str()
		return node{kind: kindString, text: s}, err
	case c == 't':
		return p.literal("true", kindBool)
	case c == 'f':
		return p.literal("false", kindBool)
	case c == 'n':
		return p.literal("null", kindNull)
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	default:
		return node{}, p.errorf("unexpected %q", c)
	}
}

func (p *jsonParser) literal(word string, k kind) (node, error) {
	end := p.i + len(word)
	if end > len(p.s) {
		if strings.HasPrefix(word, p.s[p.i:]) {
			p.i = len(p.s)
		}
		return node{}, p.errorf("%s expected", word)
	}
	if p.s[p.i:end] != word {
		return node{}, p.errorf("%s expected", word)
	}
	p.i = end
	if k == kindNull {
		return node{kind: kindNull}, nil
	}
	return node{kind: k, text: word}, nil
}

func (p *jsonParser) object(depth int) (node, error) {
	p.i++ // {
	p.space()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return node{kind: kindObject}, nil
	}
	mark := len(p.kids)
	defer func() { p.keys, p.kids = p.keys[:mark], p.kids[:mark] }()
	for {
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != '"' {
			return node{}, p.errorf("member name expected")
		}
		key, err := p.str()
		if err != nil {
			return node{}, err
		}
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return node{}, p.errorf("':' expected")
		}
		p.i++
		p.space()
		v, err := p.value(depth + 1)
		if err != nil {
			return node{}, err
		}
		p.keys = append(p.keys, key)
		p.kids = append(p.kids, v)
		p.space()
		if p.i >= len(p.s) {
			return node{}, p.errorf("',' or '}' expected")
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return node{kind: kindObject, keys: slices.Clone(p.keys[mark:]), kids: slices.Clone(p.kids[mark:])}, nil
		default:
			return node{}, p.errorf("',' or '}' expected")
		}
	}
}

func (p *jsonParser) array(depth int) (node, error) {
	p.i++ // [
	p.space()
	if p.i < len(p.s) && p.s[p.i] == ']' {
		p.i++
		return node{kind: kindArray}, nil
	}
	mark := len(p.kids)
	defer func() { p.keys, p.kids = p.keys[:mark], p.kids[:mark] }()
	for {
		p.space()
		v, err := p.value(depth + 1)
		if err != nil {
			return node{}, err
		}
		p.keys = append(p.keys, "")
		p.kids = append(p.kids, v)
		p.space()
		if p.i >= len(p.s) {
			return node{}, p.errorf("',' or ']' expected")
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return node{kind: kindArray, kids: slices.Clone(p.kids[mark:])}, nil
		default:
			return node{}, p.errorf("',' or ']' expected")
		}
	}
}

// number reads a number by the JSON grammar and keeps its literal.
func (p *jsonParser) number() (node, error) {
	start := p.i
	if p.s[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(p.s) && p.s[p.i] == '0':
		p.i++
	case p.i < len(p.s) && p.s[p.i] >= '1' && p.s[p.i] <= '9':
		p.digits()
	default:
		return node{}, p.errorf("digit expected")
	}
	if p.i < len(p.s) && p.s[p.i] == '.' {
		p.i++
		if p.i >= len(p.s) || !isDigit(p.s[p.i]) {
			return node{}, p.errorf("digit expected after '.'")
		}
		p.digits()
	}
	if p.i < len(p.s) && (p.s[p.i] == 'e' || p.s[p.i] == 'E') {
		p.i++
		if p.i < len(p.s) && (p.s[p.i] == '+' || p.s[p.i] == '-') {
			p.i++
		}
		if p.i >= len(p.s) || !isDigit(p.s[p.i]) {
			return node{}, p.errorf("digit expected in exponent")
		}
		p.digits()
	}
	return node{kind: kindNumber, text: p.s[start:p.i]}, nil
}

func (p *jsonParser) digits() {
	for p.i < len(p.s) && isDigit(p.s[p.i]) {
		p.i++
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// str reads a string at p.i (which is '"').
func (p *jsonParser) str() (string, error) {
	p.i++
	start := p.i
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			s := p.s[start:p.i]
			p.i++
			return s, nil
		case c == '\\':
			return p.escapedStr(start)
		case c < 0x20:
			return "", p.errorf("control character in string")
		}
		p.i++
	}
	return "", p.errorf("string not closed")
}

// escapedStr finishes a string holding escapes, starting over at start.
func (p *jsonParser) escapedStr(start int) (string, error) {
	var b strings.Builder
	b.Grow(p.i - start + 16)
	b.WriteString(p.s[start:p.i])
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return b.String(), nil
		case c < 0x20:
			return "", p.errorf("control character in string")
		case c != '\\':
			b.WriteByte(c)
			p.i++
			continue
		}
		p.i++
		if p.i >= len(p.s) {
			break
		}
		e := p.s[p.i]
		p.i++
		switch e {
		case '"', '\\', '/':
			b.WriteByte(e)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, err := p.hex4()
			if err != nil {
				return "", err
			}
			if utf16.IsSurrogate(r) {
				// A pair is two \u escapes; a lone half becomes U+FFFD,
				// as encoding/json does.
				if p.i+1 < len(p.s) && p.s[p.i] == '\\' && p.s[p.i+1] == 'u' {
					save := p.i
					p.i += 2
					r2, err := p.hex4()
					if err != nil {
						return "", err
					}
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						r = dec
					} else {
						r = utf8.RuneError
						p.i = save
					}
				} else {
					r = utf8.RuneError
				}
			}
			b.WriteRune(r)
		default:
			p.i--
			return "", p.errorf("invalid escape \\%c", e)
		}
	}
	return "", p.errorf("string not closed")
}

func (p *jsonParser) hex4() (rune, error) {
	var r rune
	for range 4 {
		if p.i >= len(p.s) {
			return 0, p.errorf("four hex digits expected after \\u")
		}
		c := p.s[p.i]
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, p.errorf("four hex digits expected after \\u")
		}
		r = r<<4 | rune(d)
		p.i++
	}
	return r, nil
}
