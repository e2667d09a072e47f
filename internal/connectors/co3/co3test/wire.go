package co3test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"
)

// value is one request parameter: text, null, or an object (custom_fields
// and its node objects).
type value struct {
	text string
	null bool
	obj  map[string]value
	keys []string // obj's names in request order
}

type params map[string]value

func (p params) text(name string) string { return p[name].text }

// parseCommand reads {"command":{"<method>":{…}}} or
// <command><method>…</method></command> with the standard library, so that
// the emulator does not share the connector's decoders.
func parseCommand(isXML bool, body []byte) (string, params, error) {
	var root value
	var err error
	if isXML {
		root, err = parseXML(body)
	} else {
		root, err = parseJSON(body)
	}
	if err != nil {
		return "", nil, err
	}
	cmd, ok := root.obj["command"]
	if !ok || cmd.obj == nil || len(cmd.keys) != 1 {
		return "", nil, errors.New("expected a command holding one method")
	}
	method := cmd.keys[0]
	ps := cmd.obj[method]
	if ps.obj == nil {
		if ps.null || strings.TrimSpace(ps.text) == "" {
			return method, params{}, nil
		}
		return "", nil, fmt.Errorf("parameters of %s must be an object", method)
	}
	return method, params(ps.obj), nil
}

func parseJSON(body []byte) (value, error) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return value{}, err
	}
	if _, err := d.Token(); err != io.EOF {
		return value{}, errors.New("data after the JSON value")
	}
	return fromJSON(v)
}

func fromJSON(v any) (value, error) {
	switch t := v.(type) {
	case nil:
		return value{null: true}, nil
	case string:
		return value{text: t}, nil
	case json.Number:
		return value{text: t.String()}, nil
	case bool:
		if t {
			return value{text: "1"}, nil
		}
		return value{text: "0"}, nil
	case map[string]any:
		out := value{obj: map[string]value{}}
		for k, kv := range t {
			cv, err := fromJSON(kv)
			if err != nil {
				return value{}, err
			}
			out.obj[k] = cv
			out.keys = append(out.keys, k)
		}
		return out, nil
	}
	return value{}, errors.New("lists are not accepted as parameters")
}

// parseXML reads the document into values: an element with child elements
// is an object, any other its text.
func parseXML(body []byte) (value, error) {
	d := xml.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := d.Token()
		if err != nil {
			return value{}, err
		}
		if se, ok := tok.(xml.StartElement); ok {
			v, err := readElement(d, 0)
			if err != nil {
				return value{}, err
			}
			return value{obj: map[string]value{se.Name.Local: v}, keys: []string{se.Name.Local}}, nil
		}
	}
}

func readElement(d *xml.Decoder, depth int) (value, error) {
	if depth > 16 {
		return value{}, errors.New("nested too deep")
	}
	var text strings.Builder
	var out value
	for {
		tok, err := d.Token()
		if err != nil {
			return value{}, err
		}
		switch t := tok.(type) {
		case xml.CharData:
			text.Write(t)
		case xml.StartElement:
			child, err := readElement(d, depth+1)
			if err != nil {
				return value{}, err
			}
			if out.obj == nil {
				out.obj = map[string]value{}
			}
			if _, dup := out.obj[t.Name.Local]; !dup {
				out.keys = append(out.keys, t.Name.Local)
			}
			out.obj[t.Name.Local] = child
		case xml.EndElement:
			if out.obj == nil {
				out.text = text.String()
			}
			return out, nil
		}
	}
}

// out writes a reply in JSON or XML.
type out struct {
	xml   bool
	q     Quirks
	buf   []byte
	stack []frame
}

type frame struct {
	list, started bool
}

func (o *out) begin() {
	if o.xml {
		o.buf = append(o.buf, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"...)
		o.buf = append(o.buf, '<')
		o.buf = append(o.buf, o.root()...)
		o.buf = append(o.buf, '>')
		return
	}
	if o.q.NoWrapper {
		o.buf = append(o.buf, '{')
	} else {
		o.buf = append(o.buf, `{"response":{`...)
	}
	o.stack = append(o.stack, frame{})
}

func (o *out) end() {
	if o.xml {
		o.buf = append(o.buf, "</"...)
		o.buf = append(o.buf, o.root()...)
		o.buf = append(o.buf, ">\n"...)
		return
	}
	if o.q.NoWrapper {
		o.buf = append(o.buf, "}\n"...)
	} else {
		o.buf = append(o.buf, "}}\n"...)
	}
}

func (o *out) root() string {
	if o.q.NoWrapper {
		return "result"
	}
	return "response"
}

// key starts a member (JSON) or an element (XML).
func (o *out) key(name string) {
	if o.xml {
		o.buf = append(o.buf, '<')
		o.buf = append(o.buf, name...)
		o.buf = append(o.buf, '>')
		return
	}
	top := &o.stack[len(o.stack)-1]
	if top.started {
		o.buf = append(o.buf, ',')
	}
	top.started = true
	if !top.list {
		o.buf = appendJSONString(o.buf, name)
		o.buf = append(o.buf, ':')
	}
}

func (o *out) closeElem(name string) {
	o.buf = append(o.buf, "</"...)
	o.buf = append(o.buf, name...)
	o.buf = append(o.buf, '>')
}

func (o *out) openObj(name string) {
	o.key(name)
	if !o.xml {
		o.buf = append(o.buf, '{')
		o.stack = append(o.stack, frame{})
	}
}

func (o *out) closeObj(name string) {
	if o.xml {
		o.closeElem(name)
		return
	}
	o.buf = append(o.buf, '}')
	o.stack = o.stack[:len(o.stack)-1]
}

func (o *out) openList(name string) {
	o.key(name)
	if !o.xml {
		o.buf = append(o.buf, '[')
		o.stack = append(o.stack, frame{list: true})
	}
}

func (o *out) closeList(name string) {
	if o.xml {
		o.closeElem(name)
		return
	}
	o.buf = append(o.buf, ']')
	o.stack = o.stack[:len(o.stack)-1]
}

var plainInteger = regexp.MustCompile(`^-?[1-9][0-9]{0,14}$`)

// str writes a string value (CDATA in XML).
func (o *out) str(name, v string) {
	o.key(name)
	if o.xml {
		o.buf = append(o.buf, "<![CDATA["...)
		o.buf = append(o.buf, strings.ReplaceAll(v, "]]>", "]]]]><![CDATA[>")...)
		o.buf = append(o.buf, "]]>"...)
		o.closeElem(name)
		return
	}
	if o.q.StringsAsNumbers && len(v) > 0 && v[0] != '0' && plainInteger.MatchString(v) {
		o.buf = append(o.buf, v...)
		return
	}
	o.buf = appendJSONString(o.buf, v)
}

// num writes a number value.
func (o *out) num(name, v string) {
	o.key(name)
	if o.xml {
		o.buf = append(o.buf, v...)
		o.closeElem(name)
		return
	}
	if o.q.NumbersAsStrings {
		o.buf = appendJSONString(o.buf, v)
		return
	}
	o.buf = append(o.buf, v...)
}

func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
