package config

import (
	"cmp"
	"encoding"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// decoder stores a parsed TOML document into Go values one key at a time,
// so that a value of the wrong type or an unknown key becomes one problem
// with its path while every other key is still decoded and validated.
// Leaf values go through the TOML library; only tables and lists are
// walked here.
type decoder struct {
	md toml.MetaData
	v  *validator
	// order is each key's first position in the file (array indices
	// left out), so that problems are listed in the order they are written.
	order map[string]int
}

func newDecoder(md toml.MetaData, v *validator) *decoder {
	d := &decoder{md: md, v: v, order: map[string]int{}}
	for i, k := range md.Keys() {
		if _, seen := d.order[k.String()]; !seen {
			d.order[k.String()] = i
		}
	}
	return d
}

// loc is where a value sits: path as messages write it
// ("connectors[0].rate") and key as the TOML library does, without array
// indices. secret values are never written in messages.
type loc struct {
	path   string
	key    toml.Key
	secret bool
}

func (l loc) child(name string) loc {
	p := toml.Key{name}.String()
	if l.path != "" {
		p = l.path + "." + p
	}
	return loc{path: p, key: append(slices.Clip(l.key), name), secret: l.secret}
}

func (l loc) index(i int) loc {
	return loc{path: fmt.Sprintf("%s[%d]", l.path, i), key: l.key, secret: l.secret}
}

var (
	primitiveType       = reflect.TypeFor[toml.Primitive]()
	durationType        = reflect.TypeFor[Duration]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	tomlUnmarshalerType = reflect.TypeFor[toml.Unmarshaler]()
	timeType            = reflect.TypeFor[time.Time]()
)

// decode stores prim into rv, which must be settable. It reports false,
// leaving rv as it was, when the value's type does not fit at all; a table
// with some bad keys is still stored.
func (d *decoder) decode(prim toml.Primitive, rv reflect.Value, at loc) bool {
	t := rv.Type()
	if t == primitiveType {
		rv.Set(reflect.ValueOf(prim))
		return true
	}
	pt := reflect.PointerTo(t)
	if pt.Implements(textUnmarshalerType) || pt.Implements(tomlUnmarshalerType) {
		return d.selfDecoding(prim, rv, at)
	}
	switch t.Kind() {
	case reflect.Pointer:
		if !rv.IsNil() {
			return d.decode(prim, rv.Elem(), at)
		}
		elem := reflect.New(t.Elem())
		if !d.decode(prim, elem.Elem(), at) {
			return false
		}
		rv.Set(elem)
		return true
	case reflect.Struct:
		return d.table(prim, rv, at)
	case reflect.Map:
		items, ok := d.tableKeys(prim)
		if !ok || t.Key().Kind() != reflect.String {
			d.wrongType(prim, t, at)
			return false
		}
		if rv.IsNil() {
			rv.Set(reflect.MakeMapWithSize(t, len(items)))
		}
		for _, k := range d.inFileOrder(items, at.key) {
			elem := reflect.New(t.Elem()).Elem()
			if d.decode(items[k], elem, at.child(k)) {
				rv.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), elem)
			}
		}
		return true
	case reflect.Slice:
		var items []toml.Primitive
		if d.md.PrimitiveDecode(prim, &items) != nil {
			d.wrongType(prim, t, at)
			return false
		}
		s := reflect.MakeSlice(t, len(items), len(items))
		for i, item := range items {
			// A bad element keeps its place (as a zero value) so that
			// later elements keep their indices.
			d.decode(item, s.Index(i), at.index(i))
		}
		rv.Set(s)
		return true
	}
	if err := d.md.PrimitiveDecode(prim, rv.Addr().Interface()); err != nil {
		d.wrongType(prim, t, at)
		return false
	}
	return true
}

// selfDecoding stores a value whose type parses its own text (Duration):
// the type's own message says what is wrong with the text, but a value
// that is not text at all is a wrong type.
func (d *decoder) selfDecoding(prim toml.Primitive, rv reflect.Value, at loc) bool {
	if _, isText := d.raw(prim).(string); !isText && rv.Type() != timeType &&
		reflect.PointerTo(rv.Type()).Implements(textUnmarshalerType) {
		d.wrongType(prim, rv.Type(), at)
		return false
	}
	elem := reflect.New(rv.Type())
	if err := d.md.PrimitiveDecode(prim, elem.Interface()); err != nil {
		msg := err.Error()
		var pe toml.ParseError
		if errors.As(err, &pe) {
			msg = pe.Message
		}
		d.v.bad(at.path, "%s", msg)
		return false
	}
	rv.Set(elem.Elem())
	return true
}

// table stores a TOML table into the struct rv, key by key; a key with no
// field is unknown.
func (d *decoder) table(prim toml.Primitive, rv reflect.Value, at loc) bool {
	keys, ok := d.tableKeys(prim)
	if !ok {
		d.wrongType(prim, rv.Type(), at)
		return false
	}
	d.fields(keys, rv, at)
	return true
}

// raw returns prim as the library decodes it into any: string, int64,
// float64, bool, time.Time, []any, map[string]any, []map[string]any, or
// nil for a key that is not in the file.
func (d *decoder) raw(prim toml.Primitive) any {
	if reflect.ValueOf(prim).IsZero() {
		return nil
	}
	var raw any
	if err := d.md.PrimitiveDecode(prim, &raw); err != nil {
		return nil
	}
	return raw
}

// tableKeys splits a table into its keys; ok is false when prim is not a
// table. (The library decodes any value into a map without complaint.)
func (d *decoder) tableKeys(prim toml.Primitive) (keys map[string]toml.Primitive, ok bool) {
	raw := d.raw(prim)
	if _, isTable := raw.(map[string]any); raw != nil && !isTable {
		return nil, false
	}
	if err := d.md.PrimitiveDecode(prim, &keys); err != nil {
		return nil, false
	}
	return keys, true
}

func (d *decoder) fields(keys map[string]toml.Primitive, rv reflect.Value, at loc) {
	fields := tomlFields(rv.Type())
	for _, k := range d.inFileOrder(keys, at.key) {
		sub := at.child(k)
		f, ok := lookupField(fields, k)
		if !ok {
			d.v.add(sub.path, "unknown key")
			continue
		}
		sub.secret = sub.secret || f.secret
		d.decode(keys[k], rv.FieldByIndex(f.index), sub)
	}
}

func (d *decoder) inFileOrder(keys map[string]toml.Primitive, parent toml.Key) []string {
	pos := func(k string) int {
		if i, ok := d.order[append(slices.Clip(parent), k).String()]; ok {
			return i
		}
		return math.MaxInt
	}
	return slices.SortedFunc(maps.Keys(keys), func(a, b string) int {
		return cmp.Or(cmp.Compare(pos(a), pos(b)), strings.Compare(a, b))
	})
}

// wrongType reports a value whose TOML type does not fit the Go type t.
func (d *decoder) wrongType(prim toml.Primitive, t reflect.Type, at loc) {
	raw := d.raw(prim)
	got := written(raw)
	if at.secret {
		got = kindOf(raw)
	}
	d.v.bad(at.path, "must be %s (got %s)", expectation(t, at.key), got)
}

type tomlField struct {
	name   string
	index  []int
	secret bool
}

// tomlFields lists the keys a struct takes, as the TOML library names them:
// the toml tag, else the field name; untagged embedded structs add theirs.
// A field tagged config:"secret" holds values never written in messages.
func tomlFields(t reflect.Type) []tomlField {
	var out []tomlField
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for _, sub := range tomlFields(f.Type) {
				sub.index = append([]int{i}, sub.index...)
				out = append(out, sub)
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, tomlField{name: name, index: []int{i}, secret: f.Tag.Get("config") == "secret"})
	}
	return out
}

// lookupField matches a key exactly, else ignoring case, as the TOML
// library does.
func lookupField(fields []tomlField, key string) (tomlField, bool) {
	for _, f := range fields {
		if f.name == key {
			return f, true
		}
	}
	for _, f := range fields {
		if strings.EqualFold(f.name, key) {
			return f, true
		}
	}
	return tomlField{}, false
}

// expectation says in plain words what a value of Go type t is written as;
// key names the value, for lists of tables.
func expectation(t reflect.Type, key toml.Key) string {
	if t == durationType {
		return `a duration like "30s" or "5m"`
	}
	switch t.Kind() {
	case reflect.Pointer:
		return expectation(t.Elem(), key)
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.Struct:
		if t == timeType {
			return "a date-time"
		}
		return "a table"
	case reflect.Map:
		return "a table of " + plural(t.Elem())
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Struct && len(key) > 0 {
			return fmt.Sprintf("a list of [[%s]] tables", key)
		}
		return "a list of " + plural(t.Elem())
	}
	return "a " + t.String()
}

func plural(t reflect.Type) string {
	switch e := expectation(t, nil); {
	case e == "true or false":
		return "true or false values"
	case strings.HasPrefix(e, "a list"):
		return "lists"
	case strings.HasPrefix(e, "a table"):
		return "tables"
	default:
		noun, rest, _ := strings.Cut(strings.TrimPrefix(e, "a "), " like ")
		if rest != "" {
			return noun + "s like " + rest
		}
		return noun + "s"
	}
}

// written writes a decoded TOML value as it appears in the file; a table
// is named rather than written out.
func written(v any) string {
	switch x := v.(type) {
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "a list of tables"
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			if _, isTable := e.(map[string]any); isTable {
				parts[i] = "{…}"
			} else {
				parts[i] = written(e)
			}
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case string:
		return strconv.Quote(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		switch {
		case math.IsNaN(x):
			return "nan"
		case math.IsInf(x, 1):
			return "inf"
		case math.IsInf(x, -1):
			return "-inf"
		}
		s := strconv.FormatFloat(x, 'g', -1, 64)
		if !strings.ContainsAny(s, ".e") {
			s += ".0" // 2.0 is not the whole number 2 in TOML
		}
		return s
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		switch x.Location().String() {
		case "date-local":
			return x.Format(time.DateOnly)
		case "time-local":
			return x.Format("15:04:05.999999999")
		case "datetime-local":
			return x.Format("2006-01-02T15:04:05.999999999")
		}
		return x.Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}

// kindOf names a value's TOML type, for values that must not be written.
func kindOf(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "a whole number"
	case float64:
		return "a number"
	case bool:
		return "a true or false value"
	case time.Time:
		return "a date-time"
	case map[string]any:
		return "a table"
	}
	return "a list"
}
