package co3

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Format is the wire format of requests and replies.
type Format string

const (
	JSON Format = "json"
	XML  Format = "xml"
)

// param is one request parameter: a string, a number, or an object of
// further parameters (custom_fields and its node objects).
type param struct {
	name   string
	value  string
	number bool
	object bool
	kids   []param
}

func str(name, value string) param { return param{name: name, value: value} }

func num(name string, v int) param {
	return param{name: name, value: strconv.Itoa(v), number: true}
}

// errUnsendable is returned (wrapped in ErrRejected) for values the chosen
// format cannot carry.
var errUnsendable = errors.New("cannot be sent")

// encodeCommand writes the command envelope
// {"command":{"<method>":{…}}} or <command><method>…</method></command>.
func encodeCommand(f Format, method string, params []param) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(256)
	if f == XML {
		buf.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n<command><")
		buf.WriteString(method)
		buf.WriteByte('>')
		if err := writeXMLParams(&buf, params); err != nil {
			return nil, err
		}
		buf.WriteString("</")
		buf.WriteString(method)
		buf.WriteString("></command>")
		return buf.Bytes(), nil
	}
	buf.WriteString(`{"command":{`)
	buf.Write(appendJSONString(nil, method))
	buf.WriteByte(':')
	writeJSONParams(&buf, params)
	buf.WriteString("}}")
	return buf.Bytes(), nil
}

func writeJSONParams(buf *bytes.Buffer, params []param) {
	buf.WriteByte('{')
	for i, p := range params {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(appendJSONString(buf.AvailableBuffer(), p.name))
		buf.WriteByte(':')
		switch {
		case p.object:
			writeJSONParams(buf, p.kids)
		case p.number:
			buf.WriteString(p.value)
		default:
			buf.Write(appendJSONString(buf.AvailableBuffer(), p.value))
		}
	}
	buf.WriteByte('}')
}

func writeXMLParams(buf *bytes.Buffer, params []param) error {
	for _, p := range params {
		if !isXMLName(p.name) {
			return fmt.Errorf("field name %q %w as an XML element name", p.name, errUnsendable)
		}
		buf.WriteByte('<')
		buf.WriteString(p.name)
		buf.WriteByte('>')
		switch {
		case p.object:
			if err := writeXMLParams(buf, p.kids); err != nil {
				return err
			}
		case p.number:
			buf.WriteString(p.value)
		default:
			if err := writeCDATA(buf, p.value); err != nil {
				return fmt.Errorf("value of %s: %w", p.name, err)
			}
		}
		buf.WriteString("</")
		buf.WriteString(p.name)
		buf.WriteByte('>')
	}
	return nil
}

// writeCDATA writes s as CDATA; "]]>" inside s is split over two sections.
func writeCDATA(buf *bytes.Buffer, s string) error {
	if !isXMLText(s) {
		return fmt.Errorf("a character XML 1.0 %w", errUnsendable)
	}
	buf.WriteString("<![CDATA[")
	buf.WriteString(strings.ReplaceAll(s, "]]>", "]]]]><![CDATA[>"))
	buf.WriteString("]]>")
	return nil
}

// isXMLText reports whether s is valid UTF-8 made only of characters XML
// 1.0 allows.
func isXMLText(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == 0xFFFE || r == 0xFFFF {
			return false
		}
		i += size
	}
	return true
}

// isXMLName reports whether s can be an element name (ASCII letters,
// digits, '_', '-', '.', and non-ASCII letters; not starting with a digit,
// '-' or '.'; no namespace colon).
func isXMLName(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	if c := s[0]; c == '-' || c == '.' || isDigit(c) {
		return false
	}
	if len(s) >= 3 && strings.EqualFold(s[:3], "xml") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameByte(s[i]) || s[i] == ':' {
			return false
		}
	}
	return true
}

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes
// U+FFFD, as encoding/json does.
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
