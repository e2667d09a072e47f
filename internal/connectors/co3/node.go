package co3

import (
	"errors"
	"strconv"
	"strings"
)

// kind is the type of a decoded value.
type kind uint8

const (
	kindNull kind = iota
	kindString
	kindNumber
	kindBool
	kindObject
	kindArray
)

// node is one decoded reply value. The JSON and XML decoders both produce
// nodes, so that everything after decoding is shared by the two formats.
// XML carries no types: its text elements are strings and its elements
// with children are objects (a list is an object whose keys repeat).
type node struct {
	kind kind
	// text is the value of a string, the literal of a number, or
	// "true"/"false".
	text string
	// keys are an object's member names in document order; kids are the
	// member values (object) or the items (array).
	keys []string
	kids []node
}

// maxDepth bounds nesting: CO3 replies nest four levels deep; anything far
// deeper is hostile or broken, and bounding it keeps the recursive
// decoders' stacks small.
const maxDepth = 64

// errTruncated marks a reply that ended in the middle of a value.
var errTruncated = errors.New("reply ends in the middle of a value (truncated)")

// get returns the value of an object's member, the last one when a name
// repeats (like encoding/json).
func (n *node) get(name string) (*node, bool) {
	if n.kind != kindObject {
		return nil, false
	}
	for i := len(n.keys) - 1; i >= 0; i-- {
		if n.keys[i] == name {
			return &n.kids[i], true
		}
	}
	return nil, false
}

// scalar returns the text of a string, number, boolean or null. Booleans
// become "1" and "0", the way CO3 writes its flags (contact_newsletter).
func (n *node) scalar() (string, bool) {
	switch n.kind {
	case kindString, kindNumber:
		return n.text, true
	case kindBool:
		if n.text == "true" {
			return "1", true
		}
		return "0", true
	case kindNull:
		return "", true
	}
	return "", false
}

// integer reads a number sent as a number or as a string ("3", " 3 ",
// "3.0").
func (n *node) integer() (int, bool) {
	s, ok := n.scalar()
	if !ok {
		return 0, false
	}
	s = strings.TrimSpace(s)
	if v, err := strconv.Atoi(s); err == nil {
		return v, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != float64(int(f)) {
		return 0, false
	}
	return int(f), true
}

// items returns the elements of a list: a JSON array, or the children of an
// XML wrapper element whatever their names. An empty string or null (an
// empty XML wrapper, a JSON null) is an empty list.
func (n *node) items() ([]node, bool) {
	switch n.kind {
	case kindArray, kindObject:
		return n.kids, true
	case kindNull:
		return nil, true
	case kindString:
		return nil, strings.TrimSpace(n.text) == ""
	}
	return nil, false
}

func (k kind) String() string {
	switch k {
	case kindNull:
		return "null"
	case kindString:
		return "string"
	case kindNumber:
		return "number"
	case kindBool:
		return "boolean"
	case kindObject:
		return "object"
	case kindArray:
		return "array"
	}
	return "unknown"
}
