// Package mapping translates between a CRM's fields and syncd's canonical
// contact. It is driven by the config's field tables and is the only place
// where values are normalised, on read and on write alike.
package mapping

import (
	"fmt"
	"slices"
	"strings"
)

// CanonicalFields is the shared vocabulary of a contact. Anything else is
// written "custom.<name>".
var CanonicalFields = []string{
	"prefix", "given_name", "family_name", "email", "email2", "phone",
	"mobile", "fax", "company", "job_title", "street", "city", "region",
	"postcode", "country", "birthday", "website", "notes",
}

// IsCanonical reports whether name is a canonical field or custom.<name>.
func IsCanonical(name string) bool {
	if rest, ok := strings.CutPrefix(name, "custom."); ok {
		return rest != "" && !strings.ContainsAny(rest, " \t")
	}
	return slices.Contains(CanonicalFields, name)
}

// Field maps one canonical field to one CRM field.
type Field struct {
	// Canonical is the canonical field name.
	Canonical string `toml:"canonical"`
	// Remote is the CRM's field name (dotted for nested values).
	Remote string `toml:"remote"`
	// Transforms are applied in order on read; their inverses on write:
	// trim, collapse, lower, upper (no inverse: the canonical value is
	// sent); phone (E.164 both ways) or phone:national (writes national
	// format for numbers of the default region); date:<layout> (the CRM's
	// layout as tokens like DD-MM-YYYY or in Go form like 02.01.2006;
	// reads also accept ISO and DD-MM-YYYY); given_name and family_name
	// (two mappings of one CRM full-name field: reads split it, writes
	// join both parts); full_name (the whole name, unsplit).
	Transforms []string `toml:"transforms"`
	// Values maps CRM values to canonical values ("male" = "M"), matched
	// case-insensitively after the transforms; writes use the reverse map.
	// Values not in the map pass through.
	Values map[string]string `toml:"values"`
	// Default is written on create when the canonical value is empty, in
	// the CRM's form (no transform applies).
	Default string `toml:"default"`
	// Compare false leaves the field out of change detection (a value the
	// server changes by itself).
	Compare *bool `toml:"compare"`
}

// Validate checks one field mapping. Problems are "key: what (got "v")".
func (f Field) Validate() []error {
	var errs []error
	if f.Canonical == "" {
		errs = append(errs, fmt.Errorf("canonical: missing"))
	} else if !IsCanonical(f.Canonical) {
		errs = append(errs, fmt.Errorf("canonical: unknown canonical field (got %q); use one of %s or custom.<name>", f.Canonical, strings.Join(CanonicalFields, ", ")))
	}
	if f.Remote == "" {
		errs = append(errs, fmt.Errorf("remote: missing"))
	}
	for i, t := range f.Transforms {
		if err := checkTransform(t); err != nil {
			errs = append(errs, fmt.Errorf("transforms[%d]: %v (got %q)", i, err, t))
		}
	}
	return errs
}
