package co3

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// decodeXML parses a whole XML document into its root element's name and
// value. It reads the subset of XML that data replies use: elements,
// attributes (skipped), text with the predefined and numeric character
// references, CDATA sections, comments and processing instructions.
// Document type declarations are refused (no entity expansion). Namespace
// prefixes are dropped from element names.
//
// An element with child elements becomes an object (its text between the
// children, indentation, is ignored); an element without children becomes
// a string, its text and CDATA joined. encoding/xml is several times
// slower on the 100,000-contact scan, which is why this exists.
func decodeXML(body []byte) (string, node, error) {
	p := xmlParser{s: string(body)}
	p.s = strings.TrimPrefix(p.s, "\uFEFF")
	if err := p.misc(); err != nil {
		return "", node{}, err
	}
	if p.i >= len(p.s) {
		return "", node{}, p.errorf("root element expected")
	}
	if p.s[p.i] != '<' {
		return "", node{}, p.errorf("root element expected")
	}
	name, root, err := p.element(0)
	if err != nil {
		return "", node{}, err
	}
	if err := p.misc(); err != nil {
		return "", node{}, err
	}
	if p.i < len(p.s) {
		return "", node{}, p.errorf("data after the root element")
	}
	return name, root, nil
}

type xmlParser struct {
	s string
	i int
	// keys and kids are scratch stacks (see jsonParser).
	keys []string
	kids []node
}

func (p *xmlParser) errorf(format string, args ...any) error {
	if p.i >= len(p.s) {
		return fmt.Errorf("XML: %w after %d bytes", errTruncated, len(p.s))
	}
	return fmt.Errorf("XML: byte %d: %s", p.i, fmt.Sprintf(format, args...))
}

func (p *xmlParser) space() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// misc skips white space, comments and processing instructions outside
// the root element.
func (p *xmlParser) misc() error {
	for {
		p.space()
		switch {
		case strings.HasPrefix(p.s[p.i:], "<?"):
			if err := p.skipPast("?>"); err != nil {
				return err
			}
		case strings.HasPrefix(p.s[p.i:], "<!--"):
			if err := p.skipPast("-->"); err != nil {
				return err
			}
		case strings.HasPrefix(p.s[p.i:], "<!"):
			if strings.HasPrefix("<!--", p.s[p.i:]) {
				p.i = len(p.s)
			}
			return p.errorf("document type declarations are not accepted")
		default:
			return nil
		}
	}
}

func (p *xmlParser) skipPast(end string) error {
	j := strings.Index(p.s[p.i:], end)
	if j < 0 {
		p.i = len(p.s)
		return p.errorf("%q expected", end)
	}
	p.i += j + len(end)
	return nil
}

// name reads an element or attribute name and returns it without its
// namespace prefix.
func (p *xmlParser) name() (string, error) {
	start := p.i
	for p.i < len(p.s) && isNameByte(p.s[p.i]) {
		p.i++
	}
	if p.i == start {
		return "", p.errorf("name expected")
	}
	if c := p.s[start]; c == '-' || c == '.' || isDigit(c) {
		return "", p.errorf("a name cannot start with %q", c)
	}
	n := p.s[start:p.i]
	if j := strings.LastIndexByte(n, ':'); j >= 0 && j < len(n)-1 {
		n = n[j+1:]
	}
	return n, nil
}

// isNameByte accepts the ASCII name characters and every byte of a
// multi-byte UTF-8 sequence (non-Latin element names are legal XML).
func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || isDigit(c) ||
		c == '_' || c == '-' || c == '.' || c == ':' || c >= 0x80
}

// element reads an element starting at '<'.
func (p *xmlParser) element(depth int) (string, node, error) {
	if depth > maxDepth {
		return "", node{}, p.errorf("nested deeper than %d levels", maxDepth)
	}
	p.i++ // <
	rawStart := p.i
	name, err := p.name()
	if err != nil {
		return "", node{}, err
	}
	raw := p.s[rawStart:p.i]
	// Attributes carry nothing CO3 uses; check their syntax and skip them.
	for {
		hadSpace := p.i < len(p.s) && isSpace(p.s[p.i])
		p.space()
		if p.i >= len(p.s) {
			return "", node{}, p.errorf("'>' expected")
		}
		if p.s[p.i] == '>' {
			p.i++
			break
		}
		if strings.HasPrefix(p.s[p.i:], "/>") {
			p.i += 2
			return name, node{kind: kindString}, nil
		}
		if !hadSpace {
			return "", node{}, p.errorf("space expected before an attribute")
		}
		if _, err := p.name(); err != nil {
			return "", node{}, err
		}
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != '=' {
			return "", node{}, p.errorf("'=' expected")
		}
		p.i++
		p.space()
		if p.i >= len(p.s) || (p.s[p.i] != '"' && p.s[p.i] != '\'') {
			return "", node{}, p.errorf("quoted attribute value expected")
		}
		q := p.s[p.i]
		p.i++
		j := strings.IndexByte(p.s[p.i:], q)
		if j < 0 {
			p.i = len(p.s)
			return "", node{}, p.errorf("attribute value not closed")
		}
		if strings.IndexByte(p.s[p.i:p.i+j], '<') >= 0 {
			return "", node{}, p.errorf("'<' in an attribute value")
		}
		p.i += j + 1
	}

	n := node{kind: kindString}
	mark := len(p.kids)
	defer func() { p.keys, p.kids = p.keys[:mark], p.kids[:mark] }()
	var text strings.Builder
	textParts := 0
	addText := func(s string) {
		switch textParts {
		case 0:
			n.text = s
		case 1:
			text.WriteString(n.text)
			text.WriteString(s)
		default:
			text.WriteString(s)
		}
		textParts++
	}
	for {
		if p.i >= len(p.s) {
			return "", node{}, p.errorf("</%s> expected", raw)
		}
		if p.s[p.i] != '<' {
			j := strings.IndexByte(p.s[p.i:], '<')
			if j < 0 {
				p.i = len(p.s)
				return "", node{}, p.errorf("</%s> expected", raw)
			}
			chunk := p.s[p.i : p.i+j]
			if strings.IndexByte(chunk, '&') >= 0 {
				dec, err := p.unescape(chunk)
				if err != nil {
					return "", node{}, err
				}
				chunk = dec
			}
			p.i += j
			addText(chunk)
			continue
		}
		rest := p.s[p.i:]
		switch {
		case strings.HasPrefix(rest, "</"):
			p.i += 2
			start := p.i
			for p.i < len(p.s) && isNameByte(p.s[p.i]) {
				p.i++
			}
			if p.s[start:p.i] != raw {
				if p.i >= len(p.s) {
					return "", node{}, p.errorf("</%s> expected", raw)
				}
				return "", node{}, p.errorf("</%s> expected, found </%s>", raw, p.s[start:p.i])
			}
			p.space()
			if p.i >= len(p.s) || p.s[p.i] != '>' {
				return "", node{}, p.errorf("'>' expected")
			}
			p.i++
			if n.kind == kindObject {
				n.text = ""
				n.keys = slices.Clone(p.keys[mark:])
				n.kids = slices.Clone(p.kids[mark:])
			} else if textParts > 1 {
				n.text = text.String()
			}
			return name, n, nil
		case strings.HasPrefix(rest, "<![CDATA["):
			p.i += len("<![CDATA[")
			j := strings.Index(p.s[p.i:], "]]>")
			if j < 0 {
				p.i = len(p.s)
				return "", node{}, p.errorf("CDATA section not closed")
			}
			addText(p.s[p.i : p.i+j])
			p.i += j + 3
		case strings.HasPrefix(rest, "<!--"):
			if err := p.skipPast("-->"); err != nil {
				return "", node{}, err
			}
		case strings.HasPrefix(rest, "<?"):
			if err := p.skipPast("?>"); err != nil {
				return "", node{}, err
			}
		case strings.HasPrefix(rest, "<!"):
			if strings.HasPrefix("<![CDATA[", rest) || strings.HasPrefix("<!--", rest) {
				p.i = len(p.s) // cut inside the opening of a section
			}
			return "", node{}, p.errorf("unexpected markup declaration")
		default:
			childName, child, err := p.element(depth + 1)
			if err != nil {
				return "", node{}, err
			}
			n.kind = kindObject
			p.keys = append(p.keys, childName)
			p.kids = append(p.kids, child)
		}
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// unescape replaces character and entity references in text.
func (p *xmlParser) unescape(s string) (string, error) {
	var b strings.Builder
	b.Grow(len(s))
	for {
		j := strings.IndexByte(s, '&')
		if j < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:j])
		s = s[j:]
		end := strings.IndexByte(s, ';')
		if end < 0 {
			return "", p.errorf("'&' not followed by a reference")
		}
		ref := s[1:end]
		s = s[end+1:]
		switch ref {
		case "lt":
			b.WriteByte('<')
		case "gt":
			b.WriteByte('>')
		case "amp":
			b.WriteByte('&')
		case "quot":
			b.WriteByte('"')
		case "apos":
			b.WriteByte('\'')
		default:
			if !strings.HasPrefix(ref, "#") {
				return "", p.errorf("unknown entity &%s;", ref)
			}
			num, base := ref[1:], 10
			if strings.HasPrefix(num, "x") {
				num, base = num[1:], 16
			}
			v, err := strconv.ParseUint(num, base, 32)
			if err != nil || num == "" || num[0] == '+' || !utf8.ValidRune(rune(v)) || v == 0 {
				return "", p.errorf("invalid character reference &%s;", ref)
			}
			b.WriteRune(rune(v))
		}
	}
}
