package co3

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/syncd/syncd/internal/connectors"
)

// Field naming.
//
// A contact's fields are returned under CO3's own names. The custom_fields
// object is flattened with dots: a scalar custom field is
// "custom_fields.<name>"; a radio button or checkbox, which CO3 sends as an
// object {"node0":…,"node1":…}, becomes one field per node,
// "custom_fields.<name>.node0", "custom_fields.<name>.node1" and so on.
// That form is reversible without escaping, whatever the values hold, and
// its key shape alone tells a write to rebuild the node object. A node
// object with no nodes (nothing ticked) is "custom_fields.<name>" = "", the
// same as XML's empty element. Any other nested value is flattened the same
// way (objects by member name, arrays by index).
//
// Values: strings as sent; numbers as their literal (21, not 21.0 or
// 2.1e1, so the same contact always gives the same map and the same content
// hash); booleans as "1"/"0"; null as "". contact_id is the record's ID and
// not repeated among the fields.
const customPrefix = "custom_fields."

// integerFields are sent as numbers when their value is an integer.
var integerFields = map[string]bool{
	"contact_type": true, "contact_importance": true, "contact_newsletter": true,
}

// contactOf converts a contact object into a record.
func contactOf(c *node) (connectors.Record, error) {
	if c.kind != kindObject {
		return connectors.Record{}, fmt.Errorf("%w: a contact is a %s, not an object", connectors.ErrMalformed, c.kind)
	}
	idNode, ok := c.get("contact_id")
	if !ok {
		return connectors.Record{}, fmt.Errorf("%w: contact without contact_id", connectors.ErrMalformed)
	}
	id, err := idText(idNode)
	if err != nil {
		return connectors.Record{}, err
	}
	fields := make(map[string]string, len(c.keys)+4)
	for i, k := range c.keys {
		if k == "contact_id" {
			continue
		}
		v := &c.kids[i]
		if k == "custom_fields" && isEmpty(v) {
			continue // no custom fields at all: nothing to say
		}
		flatten(fields, k, v)
	}
	return connectors.Record{ID: id, Fields: fields}, nil
}

func isEmpty(v *node) bool {
	switch v.kind {
	case kindObject, kindArray:
		return len(v.kids) == 0
	case kindNull:
		return true
	case kindString:
		return strings.TrimSpace(v.text) == ""
	}
	return false
}

func flatten(fields map[string]string, key string, v *node) {
	switch v.kind {
	case kindObject:
		if len(v.kids) == 0 {
			fields[key] = ""
			return
		}
		for i, k := range v.keys {
			flatten(fields, key+"."+k, &v.kids[i])
		}
	case kindArray:
		if len(v.kids) == 0 {
			fields[key] = ""
			return
		}
		for i := range v.kids {
			flatten(fields, key+"."+strconv.Itoa(i), &v.kids[i])
		}
	default:
		s, _ := v.scalar()
		fields[key] = s
	}
}

// nodeKey splits "custom_fields.<name>.node<N>" into name and node; ok is
// false for any other key.
func nodeKey(key string) (name, nodeName string, ok bool) {
	rest, found := strings.CutPrefix(key, customPrefix)
	if !found {
		return "", "", false
	}
	dot := strings.LastIndexByte(rest, '.')
	if dot <= 0 {
		return "", "", false
	}
	nodeName = rest[dot+1:]
	digits, isNode := strings.CutPrefix(nodeName, "node")
	if !isNode || digits == "" {
		return "", "", false
	}
	for i := 0; i < len(digits); i++ {
		if !isDigit(digits[i]) {
			return "", "", false
		}
	}
	return rest[:dot], nodeName, true
}

// writeParams turns record fields into setContact parameters, in a stable
// order: plain fields sorted by name, then custom_fields. Node fields are
// gathered into their node objects; a node whose value is "" is left out
// (unticked). currentNodes, when given, holds the stored nodes of the
// custom fields being written, so that changing one node keeps the others:
// CO3 replaces a custom field as a whole.
func writeParams(fields map[string]string, currentNodes map[string]map[string]string) []param {
	var plain []param
	custom := map[string]*param{}
	nodes := map[string]map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		v := fields[k]
		if k == "contact_id" || k == "custom_fields" {
			continue
		}
		if name, nodeName, ok := nodeKey(k); ok {
			if nodes[name] == nil {
				nodes[name] = maps.Clone(currentNodes[name])
				if nodes[name] == nil {
					nodes[name] = map[string]string{}
				}
			}
			nodes[name][nodeName] = v
			continue
		}
		if name, ok := strings.CutPrefix(k, customPrefix); ok {
			p := str(name, v)
			custom[name] = &p
			continue
		}
		if integerFields[k] {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				plain = append(plain, num(k, n))
				continue
			}
		}
		plain = append(plain, str(k, v))
	}
	for name, ns := range nodes {
		obj := param{name: name, object: true, kids: []param{}}
		for _, n := range slices.SortedFunc(maps.Keys(ns), compareNodes) {
			if ns[n] != "" {
				obj.kids = append(obj.kids, str(n, ns[n]))
			}
		}
		custom[name] = &obj
	}
	if len(custom) > 0 {
		cf := param{name: "custom_fields", object: true}
		for _, name := range slices.Sorted(maps.Keys(custom)) {
			cf.kids = append(cf.kids, *custom[name])
		}
		plain = append(plain, cf)
	}
	return plain
}

// compareNodes orders node0, node1, …, node10 numerically.
func compareNodes(a, b string) int {
	na, _ := strconv.Atoi(strings.TrimPrefix(a, "node"))
	nb, _ := strconv.Atoi(strings.TrimPrefix(b, "node"))
	if na != nb {
		return na - nb
	}
	return strings.Compare(a, b)
}

// touchedNodeFields returns the names of the node custom fields among
// fields.
func touchedNodeFields(fields map[string]string) []string {
	var names []string
	for k := range fields {
		if name, _, ok := nodeKey(k); ok && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// nodesOf collects the stored nodes of the named custom fields from a
// record's fields.
func nodesOf(fields map[string]string, names []string) map[string]map[string]string {
	out := map[string]map[string]string{}
	for k, v := range fields {
		if name, nodeName, ok := nodeKey(k); ok && slices.Contains(names, name) {
			if out[name] == nil {
				out[name] = map[string]string{}
			}
			out[name][nodeName] = v
		}
	}
	return out
}
