package vcardmap

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The field scheme. Values are unescaped text; absent or empty properties
// are left out of the map.
//
//	N.family N.given N.additional N.prefix N.suffix   components of N
//	FN                                                 formatted name
//	EMAIL, EMAIL.2        the most preferred EMAIL and the next one (PREF=n
//	                      or TYPE=pref first, then card order)
//	TEL.cell TEL.work TEL.home TEL.fax   the most preferred TEL of each
//	                      kind: a TEL typed fax is fax, else cell, else work,
//	                      else home; a "tel:" URI prefix is removed
//	TEL                   the most preferred TEL of none of those kinds
//	ADR.po_box ADR.extended ADR.street ADR.locality ADR.region
//	ADR.postal_code ADR.country   components of the most preferred ADR
//	ORG, ORG.unit         organisation name and first unit
//	TITLE NOTE URL        first of each
//	BDAY                  first BDAY; a basic-format date (19800517) or a
//	                      date-time is read as YYYY-MM-DD; other forms
//	                      (--0517, free text) pass through
//
// Writes (Apply) change only the properties or components named; an empty
// value removes the property (or clears the component, removing an ADR or
// ORG left empty). Every other property stays byte for byte.
var FieldNames = []string{
	"N.family", "N.given", "N.additional", "N.prefix", "N.suffix",
	"FN",
	"EMAIL", "EMAIL.2",
	"TEL", "TEL.cell", "TEL.work", "TEL.home", "TEL.fax",
	"ADR.po_box", "ADR.extended", "ADR.street", "ADR.locality", "ADR.region", "ADR.postal_code", "ADR.country",
	"ORG", "ORG.unit",
	"TITLE", "BDAY", "URL", "NOTE",
}

var nParts = []string{"family", "given", "additional", "prefix", "suffix"}

var adrParts = []string{"po_box", "extended", "street", "locality", "region", "postal_code", "country"}

// telKinds in order of precedence when a TEL has several types.
var telKinds = []string{"fax", "cell", "work", "home"}

// IsField reports whether name is in FieldNames.
func IsField(name string) bool { return slices.Contains(FieldNames, name) }

// prefRank orders properties: PREF=1 first, then TYPE=pref, then the rest.
func prefRank(p *Prop) int {
	if v := p.Param("PREF"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 1 {
			return n
		}
	}
	if p.HasType("pref") {
		return 1
	}
	return 101
}

// byPreference returns props ordered by preference, card order within a
// rank.
func byPreference(props []*Prop) []*Prop {
	out := slices.Clone(props)
	slices.SortStableFunc(out, func(a, b *Prop) int { return prefRank(a) - prefRank(b) })
	return out
}

// telKind names the kind of a TEL: fax, cell, work, home or "".
func telKind(p *Prop) string {
	types := p.Types()
	for _, k := range telKinds {
		if slices.Contains(types, k) {
			return k
		}
	}
	return ""
}

func (c *Card) tels(kind string) []*Prop {
	var out []*Prop
	for _, p := range c.Props {
		if p.Name == "TEL" && telKind(p) == kind {
			out = append(out, p)
		}
	}
	return byPreference(out)
}

func first(props []*Prop) *Prop {
	if len(props) == 0 {
		return nil
	}
	return props[0]
}

// Fields flattens the card under the scheme of FieldNames.
func (c *Card) Fields() map[string]string {
	f := make(map[string]string, 12)
	put := func(k, v string) {
		if v != "" {
			f[k] = v
		}
	}
	if p := c.Get("N"); p != nil {
		parts := SplitComponents(p.Value)
		for i, name := range nParts {
			if i < len(parts) {
				put("N."+name, strings.TrimSpace(parts[i]))
			}
		}
	}
	if p := c.Get("FN"); p != nil {
		put("FN", UnescapeText(p.Value))
	}
	emails := byPreference(c.All("EMAIL"))
	for i, p := range emails[:min(2, len(emails))] {
		put(emailKey(i), UnescapeText(p.Value))
	}
	for _, kind := range append(slices.Clone(telKinds), "") {
		if p := first(c.tels(kind)); p != nil {
			put(telKey(kind), telValue(p.Value))
		}
	}
	if p := first(byPreference(c.All("ADR"))); p != nil {
		parts := SplitComponents(p.Value)
		for i, name := range adrParts {
			if i < len(parts) {
				put("ADR."+name, parts[i])
			}
		}
	}
	if p := c.Get("ORG"); p != nil {
		parts := SplitComponents(p.Value)
		put("ORG", parts[0])
		if len(parts) > 1 {
			put("ORG.unit", parts[1])
		}
	}
	for _, name := range []string{"TITLE", "NOTE"} {
		if p := c.Get(name); p != nil {
			put(name, UnescapeText(p.Value))
		}
	}
	if p := c.Get("URL"); p != nil {
		put("URL", unescapeURI(p.Value))
	}
	if p := c.Get("BDAY"); p != nil {
		put("BDAY", readDate(UnescapeText(p.Value)))
	}
	return f
}

func emailKey(i int) string {
	if i == 0 {
		return "EMAIL"
	}
	return "EMAIL." + strconv.Itoa(i+1)
}

func telKey(kind string) string {
	if kind == "" {
		return "TEL"
	}
	return "TEL." + kind
}

func telValue(raw string) string {
	v := strings.TrimSpace(UnescapeText(raw))
	if len(v) > 4 && strings.EqualFold(v[:4], "tel:") {
		v = v[4:]
	}
	return v
}

// unescapeURI undoes the text escapes some writers apply to URIs
// ("http\://"): a URI never contains a backslash.
func unescapeURI(raw string) string {
	if !strings.Contains(raw, `\`) {
		return raw
	}
	return UnescapeText(raw)
}

// escapeURI writes a URI as it is, since commas in it are not list
// separators, unless it holds a backslash or a line break: those only
// survive as text escapes, which unescapeURI then decodes.
func escapeURI(v string) string {
	if !strings.ContainsAny(v, "\\\r\n") {
		return v
	}
	return EscapeText(v)
}

// readDate turns 19800517 and date-times into 1980-05-17.
func readDate(v string) string {
	v = strings.TrimSpace(v)
	if t := strings.IndexByte(v, 'T'); t == 8 || t == 10 {
		v = v[:t]
	}
	if len(v) == 8 && allDigits(v) {
		return v[:4] + "-" + v[4:6] + "-" + v[6:]
	}
	return v
}

// writeDate writes YYYY-MM-DD in the basic form vCard 4 requires.
func writeDate(v string, v4 bool) string {
	if v4 && len(v) == 10 && v[4] == '-' && v[7] == '-' && allDigits(v[:4]+v[5:7]+v[8:]) {
		return v[:4] + v[5:7] + v[8:]
	}
	return v
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// Apply writes the given fields into the card, leaving every other
// property as it was. An unknown field name is an error and nothing is
// changed.
func (c *Card) Apply(fields map[string]string) error {
	for k, v := range fields {
		if !IsField(k) {
			return fmt.Errorf("unknown vCard field %q (known: %s)", k, strings.Join(FieldNames, ", "))
		}
		// A vCard is UTF-8 text (RFC 6350 3.1); other bytes would make a
		// file that other tools refuse.
		if !utf8.ValidString(v) {
			return fmt.Errorf("vCard field %s: value %q is not valid UTF-8", k, v)
		}
	}
	v4 := c.IsV4()
	oldFN := formatName(c.Fields())
	nChanged := false
	for _, k := range sortedKeys(fields) {
		v := strings.TrimSpace(fields[k])
		head, part, _ := strings.Cut(k, ".")
		switch head {
		case "N":
			c.setComponent(c.Get("N"), "N", nParts, part, v, false)
			nChanged = true
		case "ADR":
			c.setComponent(first(byPreference(c.All("ADR"))), "ADR", adrParts, part, v, true)
		case "ORG":
			idx := "name"
			if part == "unit" {
				idx = "unit"
			}
			c.setComponent(c.Get("ORG"), "ORG", []string{"name", "unit"}, idx, v, true)
		case "EMAIL":
			rank := 0
			if part == "2" {
				rank = 1
			}
			emails := byPreference(c.All("EMAIL"))
			var p *Prop
			if rank < len(emails) {
				p = emails[rank]
			}
			c.setSimple(p, "EMAIL", EscapeText(v), v == "", nil)
		case "TEL":
			var params []Param
			if part != "" {
				params = []Param{{Name: "TYPE", Values: []string{part}}}
			}
			if v4 {
				params = append(params, Param{Name: "VALUE", Values: []string{"text"}})
			}
			p := first(c.tels(part))
			c.setSimple(p, "TEL", EscapeText(v), v == "", params)
			if p != nil && v4 && v != "" {
				p.Params = append(p.Params, Param{Name: "VALUE", Values: []string{"text"}})
			}
		case "BDAY":
			// A date holds nothing to escape; free text may.
			c.setSimple(c.Get("BDAY"), "BDAY", EscapeText(writeDate(v, v4)), v == "", nil)
		case "URL":
			c.setSimple(c.Get("URL"), "URL", escapeURI(v), v == "", nil)
		default: // FN TITLE NOTE
			c.setSimple(c.Get(head), head, EscapeText(v), v == "", nil)
		}
	}
	if _, given := fields["FN"]; nChanged && !given {
		cur := c.Get("FN")
		if cur == nil || UnescapeText(cur.Value) == oldFN || strings.TrimSpace(cur.Value) == "" {
			c.setSimple(cur, "FN", EscapeText(formatName(c.Fields())), false, nil)
		}
	}
	return nil
}

// EnsureFN gives a card without a formatted name one built from N, ORG or
// EMAIL: both vCard versions require FN.
func (c *Card) EnsureFN() {
	if p := c.Get("FN"); p != nil && strings.TrimSpace(p.Value) != "" {
		return
	}
	f := c.Fields()
	name := formatName(f)
	if name == "" {
		name = f["ORG"]
	}
	if name == "" {
		name = f["EMAIL"]
	}
	c.setSimple(c.Get("FN"), "FN", EscapeText(name), false, nil)
}

// formatName is "prefix given additional family suffix", skipping blanks.
func formatName(f map[string]string) string {
	var parts []string
	for _, k := range []string{"N.prefix", "N.given", "N.additional", "N.family", "N.suffix"} {
		if v := f[k]; v != "" {
			parts = append(parts, v)
		}
	}
	return strings.Join(parts, " ")
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// setSimple sets, adds or (remove) drops a single-valued property.
func (c *Card) setSimple(p *Prop, name, raw string, remove bool, params []Param) {
	switch {
	case remove:
		if p != nil {
			c.Remove(p)
		}
	case p != nil:
		p.setValue(raw)
	default:
		c.Add(name, raw, params...)
	}
}

// setComponent sets one component of a structured property, adding the
// property when missing. With dropEmpty, a property whose components are
// all empty afterwards is removed.
func (c *Card) setComponent(p *Prop, name string, parts []string, part, v string, dropEmpty bool) {
	idx := slices.Index(parts, part)
	if p == nil {
		if v == "" {
			return
		}
		p = c.Add(name, strings.Repeat(";", len(parts)-1))
	}
	comps := splitRawComponents(p.Value)
	for len(comps) <= idx {
		comps = append(comps, "")
	}
	comps[idx] = EscapeText(v)
	if dropEmpty {
		empty := true
		for _, s := range comps {
			if s != "" {
				empty = false
			}
		}
		if empty {
			c.Remove(p)
			return
		}
	}
	p.setValue(strings.Join(comps, ";"))
}
