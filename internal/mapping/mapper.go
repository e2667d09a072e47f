package mapping

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// Options holds settings shared by every connector's mapping.
type Options struct {
	// DefaultRegion is the ISO 3166 region ("GB") of phone numbers written
	// without a country code.
	DefaultRegion string
}

// Mapper translates one connector's records between CRM fields and
// canonical values. It is immutable after Compile and safe for concurrent
// use.
type Mapper struct {
	fields []compiledField
	// canonicals is the sorted set of mapped canonical fields.
	canonicals []string
	// compared is the sorted set of canonical fields in change detection.
	compared       []string
	createDefaults map[string]string
	opts           Options
}

// compiledField is one Field with its transforms parsed.
type compiledField struct {
	canonical string
	remote    string
	steps     []step
	// values maps lower-cased CRM values to canonical values.
	values map[string]string
	// reverse maps canonical values to CRM values for writes;
	// reverseFold the same by lower-cased canonical value, for values
	// another connector wrote in another case.
	reverse, reverseFold map[string]string
	def                  string
	compared             bool
	// nameGiven and nameFamily name the canonical fields joined into the
	// remote field when it holds a full name split into parts.
	nameGiven, nameFamily string
	// namePart is set when a given_name/family_name step is present.
	namePart bool
	// normalized is set when the last transform already yields the
	// canonical normal form (phone on a phone field, date on birthday),
	// which spares parsing the value twice.
	normalized bool
}

// Compile builds a Mapper for one connector. exclude lists CRM field names
// (or path.Match patterns such as "custom_fields.*") left out of change
// detection in addition to fields with compare=false; createDefaults are
// CRM field values sent on every create.
func Compile(fields []Field, exclude []string, createDefaults map[string]string, opts Options) (*Mapper, error) {
	var errs []error
	if opts.DefaultRegion != "" && phonenumbers.GetCountryCodeForRegion(opts.DefaultRegion) == 0 {
		errs = append(errs, fmt.Errorf("default_region: unknown region (got %q)", opts.DefaultRegion))
	}
	m := &Mapper{opts: opts, createDefaults: maps.Clone(createDefaults)}
	canon := map[string]bool{}
	compared := map[string]bool{}
	for i, f := range fields {
		for _, err := range f.Validate() {
			errs = append(errs, fmt.Errorf("fields[%d].%w", i, err))
		}
		cf := compiledField{canonical: f.Canonical, remote: f.Remote, def: f.Default}
		for _, t := range f.Transforms {
			s, err := parseStep(t)
			if err != nil {
				continue // reported by Validate
			}
			cf.steps = append(cf.steps, s)
			if s.kind == stepGivenName || s.kind == stepFamilyName {
				cf.namePart = true
			}
		}
		if len(f.Values) > 0 {
			cf.values = make(map[string]string, len(f.Values))
			cf.reverse = make(map[string]string, len(f.Values))
			cf.reverseFold = make(map[string]string, len(f.Values))
			// Several CRM values may map to one canonical value ("m" and
			// "male"); the write uses the first in sorted order, so the
			// choice never depends on map order.
			for _, k := range slices.Sorted(maps.Keys(f.Values)) {
				cf.values[strings.ToLower(strings.TrimSpace(k))] = f.Values[k]
				if _, dup := cf.reverse[f.Values[k]]; !dup {
					cf.reverse[f.Values[k]] = k
				}
				if _, dup := cf.reverseFold[strings.ToLower(f.Values[k])]; !dup {
					cf.reverseFold[strings.ToLower(f.Values[k])] = k
				}
			}
		}
		if n := len(cf.steps); n > 0 {
			last := cf.steps[n-1].kind
			switch f.Canonical {
			case "phone", "mobile", "fax":
				cf.normalized = last == stepPhone && len(f.Values) == 0
			case "birthday":
				cf.normalized = last == stepDate && len(f.Values) == 0
			}
		}
		cf.compared = (f.Compare == nil || *f.Compare) && !excluded(f.Remote, exclude)
		if f.Canonical != "" {
			canon[f.Canonical] = true
			if cf.compared {
				compared[f.Canonical] = true
			}
		}
		m.fields = append(m.fields, cf)
	}
	// A remote field holding a full name is written from both parts.
	for i := range m.fields {
		f := &m.fields[i]
		if !f.namePart {
			continue
		}
		f.nameGiven, f.nameFamily = "given_name", "family_name"
		for _, g := range m.fields {
			if g.remote != f.remote {
				continue
			}
			for _, s := range g.steps {
				switch s.kind {
				case stepGivenName:
					f.nameGiven = g.canonical
				case stepFamilyName:
					f.nameFamily = g.canonical
				}
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	m.canonicals = slices.Sorted(maps.Keys(canon))
	m.compared = slices.Sorted(maps.Keys(compared))
	return m, nil
}

// excluded reports whether remote is listed in exclude, by name or pattern.
func excluded(remote string, exclude []string) bool {
	for _, e := range exclude {
		if e == remote {
			return true
		}
		if strings.ContainsAny(e, "*?[") {
			if ok, err := path.Match(e, remote); err == nil && ok {
				return true
			}
		}
	}
	return false
}

// ToCanonical maps a CRM record's fields to normalised canonical values.
// Only mapped canonical fields appear; a mapped field whose CRM value is
// missing or empty maps to "". When two CRM fields map to one canonical
// field, the first non-empty one in config order wins.
func (m *Mapper) ToCanonical(remote map[string]string) map[string]string {
	out := make(map[string]string, len(m.canonicals))
	for i := range m.fields {
		f := &m.fields[i]
		if out[f.canonical] != "" {
			continue
		}
		out[f.canonical] = m.read(f, remote[f.remote])
	}
	return out
}

// read runs one field's transforms and value map, then Normalize.
func (m *Mapper) read(f *compiledField, v string) string {
	if v == "" {
		return ""
	}
	for _, s := range f.steps {
		v = s.read(v, m.opts.DefaultRegion)
	}
	if f.values != nil {
		if c, ok := f.values[strings.ToLower(strings.TrimSpace(v))]; ok {
			v = c
		}
	}
	if f.normalized {
		return v
	}
	return Normalize(f.canonical, v, m.opts)
}

// write produces one field's CRM value from the canonical values.
func (m *Mapper) write(f *compiledField, full map[string]string) string {
	v := full[f.canonical]
	if f.reverse != nil {
		if r, ok := f.reverse[v]; ok {
			v = r
		} else if r, ok := f.reverseFold[strings.ToLower(v)]; ok {
			v = r
		}
	}
	for i := len(f.steps) - 1; i >= 0; i-- {
		s := f.steps[i]
		switch s.kind {
		case stepGivenName, stepFamilyName:
			v = joinName(full[f.nameGiven], full[f.nameFamily])
		default:
			v = s.write(v, m.opts.DefaultRegion)
		}
	}
	return v
}

// ToRemote returns the CRM fields to send so that the record holds the
// canonical values of changed; full is the entity's complete canonical
// value set (a full-name field is rebuilt from both name parts). An empty
// value clears the CRM field. When two mappings share a CRM field (other
// than name parts), the first in config order that changed is written.
func (m *Mapper) ToRemote(changed []string, full map[string]string) map[string]string {
	out := make(map[string]string, len(changed))
	for i := range m.fields {
		f := &m.fields[i]
		if !slices.Contains(changed, f.canonical) {
			continue
		}
		if _, done := out[f.remote]; done {
			continue
		}
		out[f.remote] = m.write(f, full)
	}
	return out
}

// CreateFields returns the CRM fields for a create from the full
// canonical values. Empty values are left out unless the field has a
// Default (written as given, in the CRM's form); createDefaults fill CRM
// fields the mapping left empty.
func (m *Mapper) CreateFields(full map[string]string) map[string]string {
	out := make(map[string]string, len(m.fields)+len(m.createDefaults))
	for i := range m.fields {
		f := &m.fields[i]
		if out[f.remote] != "" {
			continue
		}
		v := m.write(f, full)
		if v == "" {
			v = f.def
		}
		if v != "" {
			out[f.remote] = v
		}
	}
	for k, v := range m.createDefaults {
		if out[k] == "" && v != "" {
			out[k] = v
		}
	}
	return out
}

// Canonicals lists the canonical fields this connector maps, sorted.
func (m *Mapper) Canonicals() []string { return slices.Clone(m.canonicals) }

// Compared reports whether a canonical field takes part in change
// detection and merging for this connector: false when it is not mapped,
// or every Field mapping it has compare=false or an excluded remote field.
func (m *Mapper) Compared(canonical string) bool {
	_, ok := slices.BinarySearch(m.compared, canonical)
	return ok
}

// Hash returns a stable content hash (hex SHA-256) of the compared
// canonical values of one record, as returned by ToCanonical. Empty and
// missing values hash alike, so mapping one more field does not change
// the hash of records that leave it empty.
func (m *Mapper) Hash(canonical map[string]string) string {
	var buf [512]byte
	b := buf[:0]
	for _, c := range m.compared {
		v := canonical[c]
		if v == "" {
			continue
		}
		b = binary.AppendUvarint(b, uint64(len(c)))
		b = append(b, c...)
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Normalize returns the canonical normal form of a value of a canonical
// field, whatever the connector: email/email2 lower-cased and trimmed;
// phone/mobile/fax E.164 (opts.DefaultRegion for national numbers;
// unparseable text kept, trimmed); birthday YYYY-MM-DD (from ISO or
// DD-MM-YYYY; an all-zero date is empty); notes with line breaks kept but
// spaces collapsed within lines; everything else trimmed with internal
// white space collapsed. Non-Latin text is otherwise untouched.
func Normalize(canonical, value string, opts Options) string {
	switch canonical {
	case "email", "email2":
		return strings.ToLower(collapseSpace(value))
	case "phone", "mobile", "fax":
		return normalizePhone(value, opts.DefaultRegion)
	case "birthday":
		return normalizeDate(value, "")
	case "notes":
		return normalizeNotes(value)
	}
	return collapseSpace(value)
}

// IdentityKey returns the identity-matching key of a canonical value: for
// email/email2 the normalised address (only if it holds an "@"), for
// phone/mobile/fax the E.164 number (only if it parses as a possible
// number), for any other field its non-empty normal form. "" means the
// value cannot identify anyone. The key does not name the field, so an
// address in email on one side matches the same address in email2 on
// another; callers wanting separate spaces prefix the field kind.
func IdentityKey(canonical, value string, opts Options) string {
	v := Normalize(canonical, value, opts)
	switch canonical {
	case "email", "email2":
		if !strings.Contains(v, "@") {
			return ""
		}
	case "phone", "mobile", "fax":
		if !strings.HasPrefix(v, "+") {
			return ""
		}
		if i := strings.IndexByte(v, ';'); i >= 0 {
			v = v[:i] // an extension reaches the same line
		}
	}
	return v
}
