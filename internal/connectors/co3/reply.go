package co3

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/syncd/syncd/internal/connectors"
)

// replyError is CO3's {"error":{"code":…,"message":…}}.
type replyError struct {
	Code, Message string
}

// decodeReply parses body in format f and returns the payload: the value
// inside the "response" wrapper, or the whole reply when the wrapper is
// missing. In XML the root element is the wrapper whatever its name
// (<response> in the note); a root holding only text becomes an object with
// one member named like the root (<session_key>…</session_key>).
//
// A body in the other format is refused with a message saying so, rather
// than being read as whatever it happens to parse as.
func decodeReply(f Format, body []byte) (node, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n\uFEFF")
	if len(trimmed) == 0 {
		return node{}, fmt.Errorf("%w: empty reply", connectors.ErrMalformed)
	}
	looksXML := trimmed[0] == '<'
	if f == XML {
		if !looksXML {
			return node{}, fmt.Errorf("%w: expected an XML reply, got %s", connectors.ErrMalformed, describe(trimmed))
		}
		name, root, err := decodeXML(body)
		if err != nil {
			return node{}, fmt.Errorf("%w: %w", connectors.ErrMalformed, err)
		}
		if root.kind == kindObject {
			return root, nil
		}
		return node{kind: kindObject, keys: []string{name}, kids: []node{root}}, nil
	}
	if looksXML {
		return node{}, fmt.Errorf("%w: expected a JSON reply, got %s", connectors.ErrMalformed, describe(trimmed))
	}
	root, err := decodeJSON(body)
	if err != nil {
		return node{}, fmt.Errorf("%w: %w", connectors.ErrMalformed, err)
	}
	if inner, ok := root.get("response"); ok {
		return *inner, nil
	}
	return root, nil
}

// describe names what a body in the wrong format looks like, briefly.
func describe(b []byte) string {
	switch {
	case b[0] == '<':
		return "XML or HTML"
	case b[0] == '{' || b[0] == '[':
		return "JSON"
	}
	if len(b) > 40 {
		b = b[:40]
	}
	return strconv.Quote(string(b))
}

// errorOf returns the error a payload reports, if any.
func errorOf(payload *node) (replyError, bool) {
	e, ok := payload.get("error")
	if !ok {
		return replyError{}, false
	}
	if s, ok := e.scalar(); ok {
		return replyError{Message: s}, true
	}
	var re replyError
	if c, ok := e.get("code"); ok {
		re.Code, _ = c.scalar()
	}
	if m, ok := e.get("message"); ok {
		re.Message, _ = m.scalar()
	}
	return re, true
}

// sessionKeyOf reads authenticate's reply: {"session_key":"…"}, or the key
// itself as the whole payload (the documentation says "the reply is the
// session key").
func sessionKeyOf(payload *node) (string, error) {
	v := payload
	if k, ok := payload.get("session_key"); ok {
		v = k
	} else if r, ok := payload.get("response"); ok {
		v = r
	}
	if v.kind != kindString && v.kind != kindNumber {
		return "", fmt.Errorf("%w: no session_key in the reply", connectors.ErrMalformed)
	}
	if v.text == "" {
		return "", fmt.Errorf("%w: empty session_key", connectors.ErrMalformed)
	}
	return v.text, nil
}

// contactPage is getContactList's reply.
type contactPage struct {
	// Pages is the page count, or -1 when the reply does not say.
	Pages    int
	Contacts []connectors.Record
}

func contactPageOf(payload *node) (contactPage, error) {
	out := contactPage{Pages: -1}
	if p, ok := payload.get("pages"); ok {
		n, ok := p.integer()
		if !ok {
			return out, fmt.Errorf("%w: pages is not a number", connectors.ErrMalformed)
		}
		out.Pages = n
	}
	list, ok := payload.get("contacts")
	if !ok {
		if out.Pages >= 0 {
			return out, nil // a page past the end may come without a list
		}
		return out, fmt.Errorf("%w: no contacts in the reply", connectors.ErrMalformed)
	}
	items, ok := list.items()
	if !ok {
		return out, fmt.Errorf("%w: contacts is a %s, not a list", connectors.ErrMalformed, list.kind)
	}
	out.Contacts = make([]connectors.Record, 0, len(items))
	for i := range items {
		rec, err := contactOf(&items[i])
		if err != nil {
			return out, fmt.Errorf("contact %d: %w", i, err)
		}
		out.Contacts = append(out.Contacts, rec)
	}
	return out, nil
}

// contactIDsOf reads getContacts' reply. An item may be an object with
// contact_id or a bare id.
func contactIDsOf(payload *node) ([]string, error) {
	list, ok := payload.get("contacts")
	if !ok {
		return nil, fmt.Errorf("%w: no contacts in the reply", connectors.ErrMalformed)
	}
	items, ok := list.items()
	if !ok {
		return nil, fmt.Errorf("%w: contacts is a %s, not a list", connectors.ErrMalformed, list.kind)
	}
	ids := make([]string, 0, len(items))
	for i := range items {
		it := &items[i]
		if idNode, ok := it.get("contact_id"); ok {
			it = idNode
		}
		id, err := idText(it)
		if err != nil {
			return nil, fmt.Errorf("contact %d: %w", i, err)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// singleContactOf reads getContact's reply: {"contact":{…}}, or the
// contact's fields directly.
func singleContactOf(payload *node) (connectors.Record, error) {
	c, ok := payload.get("contact")
	if !ok {
		if _, hasID := payload.get("contact_id"); !hasID {
			return connectors.Record{}, fmt.Errorf("%w: no contact in the reply", connectors.ErrMalformed)
		}
		c = payload
	}
	return contactOf(c)
}

// createdIDOf reads setContact's reply: {"contact_id":21}.
func createdIDOf(payload *node) (string, error) {
	v, ok := payload.get("contact_id")
	if !ok {
		if c, isContact := payload.get("contact"); isContact {
			v, ok = c.get("contact_id")
		}
	}
	if !ok {
		return "", fmt.Errorf("%w: no contact_id in the reply", connectors.ErrMalformed)
	}
	return idText(v)
}

func idText(v *node) (string, error) {
	if v.kind != kindString && v.kind != kindNumber {
		return "", fmt.Errorf("%w: contact_id is a %s", connectors.ErrMalformed, v.kind)
	}
	if v.text == "" {
		return "", fmt.Errorf("%w: empty contact_id", connectors.ErrMalformed)
	}
	return v.text, nil
}
