package mapping

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

// stepKind is one compiled transform.
type stepKind uint8

const (
	stepTrim stepKind = iota
	stepCollapse
	stepLower
	stepUpper
	stepPhone
	stepDate
	stepGivenName
	stepFamilyName
	stepFullName
)

// step is a transform ready to run: its kind and parsed argument.
type step struct {
	kind stepKind
	// national writes phone numbers of the default region in national
	// format ("phone:national").
	national bool
	// layout is the CRM's date layout in Go reference form ("date:...").
	layout string
}

// checkTransform reports whether t names a known transform with a usable
// argument.
func checkTransform(t string) error {
	_, err := parseStep(t)
	return err
}

// parseStep compiles one transform name such as "date:DD-MM-YYYY".
func parseStep(t string) (step, error) {
	name, arg, hasArg := strings.Cut(t, ":")
	noArg := func(k stepKind) (step, error) {
		if hasArg {
			return step{}, fmt.Errorf("transform %s takes no argument", name)
		}
		return step{kind: k}, nil
	}
	switch name {
	case "trim":
		return noArg(stepTrim)
	case "collapse":
		return noArg(stepCollapse)
	case "lower":
		return noArg(stepLower)
	case "upper":
		return noArg(stepUpper)
	case "given_name":
		return noArg(stepGivenName)
	case "family_name":
		return noArg(stepFamilyName)
	case "full_name":
		return noArg(stepFullName)
	case "phone":
		switch {
		case !hasArg || arg == "e164":
			return step{kind: stepPhone}, nil
		case arg == "national":
			return step{kind: stepPhone, national: true}, nil
		}
		return step{}, fmt.Errorf("phone format must be e164 or national, as in \"phone:national\"")
	case "date":
		if arg == "" {
			return step{}, fmt.Errorf("date needs the CRM's layout, as in \"date:DD-MM-YYYY\" or \"date:2006-01-02\"")
		}
		layout := dateLayout(arg)
		// A layout that cannot write and read back a date loses data.
		probe := time.Date(1984, 3, 29, 0, 0, 0, 0, time.UTC)
		back, err := time.Parse(layout, probe.Format(layout))
		if err != nil || !back.Equal(probe) {
			return step{}, fmt.Errorf("date layout must hold year, month and day, as in \"date:DD-MM-YYYY\" or \"date:2006-01-02\"")
		}
		return step{kind: stepDate, layout: layout}, nil
	}
	return step{}, fmt.Errorf("unknown transform")
}

// dateLayout turns a token layout ("DD-MM-YYYY", "MM/DD/YYYY") into Go's
// reference form; a layout without tokens is taken as Go reference form.
func dateLayout(s string) string {
	if !strings.Contains(s, "YY") && !strings.Contains(s, "DD") && !strings.Contains(s, "MM") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "YYYY"):
			b.WriteString("2006")
			i += 4
		case strings.HasPrefix(s[i:], "YY"):
			b.WriteString("06")
			i += 2
		case strings.HasPrefix(s[i:], "MMMM"):
			b.WriteString("January")
			i += 4
		case strings.HasPrefix(s[i:], "MMM"):
			b.WriteString("Jan")
			i += 3
		case strings.HasPrefix(s[i:], "MM"):
			b.WriteString("01")
			i += 2
		case strings.HasPrefix(s[i:], "DD"):
			b.WriteString("02")
			i += 2
		case s[i] == 'M':
			b.WriteString("1")
			i++
		case s[i] == 'D':
			b.WriteString("2")
			i++
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String()
}

// readStep applies one transform on read. Name steps split the full name.
func (s step) read(v string, region string) string {
	switch s.kind {
	case stepTrim:
		return strings.TrimSpace(v)
	case stepCollapse, stepFullName:
		return collapseSpace(v)
	case stepLower:
		return strings.ToLower(v)
	case stepUpper:
		return strings.ToUpper(v)
	case stepPhone:
		return normalizePhone(v, region)
	case stepDate:
		return normalizeDate(v, s.layout)
	case stepGivenName:
		given, _ := splitName(v)
		return given
	case stepFamilyName:
		_, family := splitName(v)
		return family
	}
	return v
}

// write applies the inverse of one transform. Case and whitespace
// transforms have no meaningful inverse; the canonical value is sent.
func (s step) write(v string, region string) string {
	switch s.kind {
	case stepPhone:
		return formatPhone(v, region, s.national)
	case stepDate:
		return formatDate(v, s.layout)
	}
	return v
}

// collapseSpace trims and collapses runs of white space (Unicode) to one
// space. It does not allocate when v is already in that form.
func collapseSpace(v string) string {
	clean := true
	prevSpace := true // leading space is not clean
	for i := 0; i < len(v); {
		r, n := rune(v[i]), 1
		if r >= utf8.RuneSelf {
			r, n = utf8.DecodeRuneInString(v[i:])
		}
		if unicode.IsSpace(r) {
			if prevSpace || r != ' ' {
				clean = false
				break
			}
			prevSpace = true
		} else {
			prevSpace = false
		}
		i += n
	}
	if clean && !prevSpace {
		return v
	}
	if clean && v == "" {
		return ""
	}
	return strings.Join(strings.Fields(v), " ")
}

// normalizeNotes keeps line breaks (they carry meaning in free text) but
// unifies line endings, collapses spaces within lines and drops blank
// runs at the start and end.
func normalizeNotes(v string) string {
	if !strings.ContainsAny(v, "\r\n") {
		return collapseSpace(v)
	}
	v = strings.ReplaceAll(v, "\r\n", "\n")
	v = strings.ReplaceAll(v, "\r", "\n")
	lines := strings.Split(v, "\n")
	for i, l := range lines {
		lines[i] = collapseSpace(l)
	}
	return strings.Trim(strings.Join(lines, "\n"), "\n")
}

// normalizePhone returns the E.164 form of a phone number; national
// numbers take region's country code. Text that is not a possible number
// is kept (trimmed, spaces collapsed) rather than lost. An extension is
// kept as ";ext=N", the RFC 3966 form phonenumbers parses back.
func normalizePhone(v, region string) string {
	v = collapseSpace(v)
	if v == "" {
		return ""
	}
	key := phoneKey{v, region}
	if out, ok := recentPhones.get(key); ok {
		return out
	}
	out := parsePhone(v, region)
	recentPhones.put(key, out)
	return out
}

// phoneKey is a normalizePhone input.
type phoneKey struct{ v, region string }

// phoneMemo holds the results of recent normalizePhone calls: a written
// number is normalised again when its canonical values are taken (and
// parsing is most of the cost of mapping a contact). It is emptied when
// full, so it stays small whatever the number of contacts.
type phoneMemo struct {
	mu sync.Mutex
	m  map[phoneKey]string
}

const phoneMemoSize = 4096

// recentPhones grows as it is used: a process that maps no phone number
// (or a few) does not pay for a full table at start.
var recentPhones = &phoneMemo{m: map[phoneKey]string{}}

func (p *phoneMemo) get(k phoneKey) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.m[k]
	return v, ok
}

func (p *phoneMemo) put(k phoneKey, v string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.m) >= phoneMemoSize {
		clear(p.m)
	}
	p.m[k] = v
}

// parsePhone is normalizePhone without the memo; v is trimmed and not
// empty. A number the fast readers settle is read without the phone
// parser (readPlus, readNational); anything else goes through it.
func parsePhone(v, region string) string {
	cc, nsn, ok := readPlus(v)
	if !ok && v[0] != '+' {
		cc, nsn, ok = readNational(v, region)
	}
	if !ok {
		return parseWithParser(v, region)
	}
	if !countries()[cc].possible(len(nsn)) {
		return v
	}
	if nsn[0] != '0' {
		// What e164 writes of the number: no leading zero to keep.
		return "+" + strconv.Itoa(cc) + nsn
	}
	num, _ := numberOf(cc, nsn)
	return normalForm(v, num, region)
}

// parseWithParser is parsePhone through libphonenumber's parser alone.
func parseWithParser(v, region string) string {
	num, err := phonenumbers.Parse(v, region)
	if err != nil || !phonenumbers.IsPossibleNumber(num) {
		return v
	}
	return normalForm(v, num, region)
}

// normalForm is num, read from v, in E.164, or v itself when that form
// does not read back as num.
func normalForm(v string, num *phonenumbers.PhoneNumber, region string) string {
	out := e164(num)
	if num.GetItalianLeadingZero() {
		// Leading zeros can read back as another number; a form that
		// does not survive its own round trip is no normal form.
		again, err := phonenumbers.Parse(out, region)
		if err != nil || e164(again) != out {
			return v
		}
	}
	return out
}

// e164 formats num in E.164 with any extension as ";ext=N".
func e164(num *phonenumbers.PhoneNumber) string {
	out := phonenumbers.Format(num, phonenumbers.E164)
	if ext := num.GetExtension(); ext != "" {
		out += ";ext=" + ext
	}
	return out
}

// formatPhone writes a canonical phone number for a CRM: E.164, or with
// national set the national format when the number belongs to region
// (international format otherwise, so the country code is never lost),
// falling back to E.164 when that form would not read back as the same
// number. Values that do not parse pass through.
func formatPhone(v, region string, national bool) string {
	if v == "" {
		return ""
	}
	num, ok := e164Number(v)
	if !ok {
		var err error
		if num, err = phonenumbers.Parse(v, region); err != nil {
			return v
		}
	}
	if !phonenumbers.IsPossibleNumber(num) {
		return v
	}
	if !national {
		return e164(num)
	}
	out := phonenumbers.Format(num, phonenumbers.INTERNATIONAL)
	if int(num.GetCountryCode()) == phonenumbers.GetCountryCodeForRegion(region) {
		out = phonenumbers.Format(num, phonenumbers.NATIONAL)
	}
	// Odd numbers may not read back as themselves; E.164 always does.
	want := e164(num)
	if v != collapseSpace(v) || num.GetItalianLeadingZero() {
		want = normalizePhone(v, region)
	}
	if normalizePhone(out, region) != want {
		return e164(num)
	}
	return out
}

// e164Number reads a canonical value in plain E.164 ("+" and digits, as
// normalizePhone writes a number without extension) without the parser,
// which spends most of its time looking for an extension: country
// calling codes are a prefix code, so the country code is the one
// prefix of one to three digits that names a country, and the rest is
// the national number, its leading zeros kept as the parser keeps them.
// ok is false for anything else; the caller then parses v. (A number
// the parser would read differently can only come out of formatPhone in
// a form that reads back as v, or as v itself: formatPhone checks the
// round trip.)
func e164Number(v string) (*phonenumbers.PhoneNumber, bool) {
	// No country code starts with 0.
	if len(v) < 4 || len(v) > 18 || v[0] != '+' || v[1] == '0' {
		return nil, false
	}
	for i := 1; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return nil, false
		}
	}
	for n := 1; n <= 3 && n+1 < len(v); n++ {
		cc, _ := strconv.Atoi(v[1 : 1+n])
		if phonenumbers.GetRegionCodeForCountryCode(cc) == unknownRegion {
			continue
		}
		// The country code and the national number with its leading
		// zeros are v's digits again: E.164 writes num as v.
		return numberOf(cc, v[1+n:])
	}
	return nil, false
}

// numberOf is the number the parser makes of country code cc and the
// national number nsn (digits): nsn's value, and its leading zeros kept
// as the parser keeps them.
func numberOf(cc int, nsn string) (*phonenumbers.PhoneNumber, bool) {
	national, err := strconv.ParseUint(nsn, 10, 64)
	if err != nil {
		return nil, false
	}
	code := int32(cc)
	num := &phonenumbers.PhoneNumber{CountryCode: &code, NationalNumber: &national}
	if len(nsn) > 1 && nsn[0] == '0' {
		yes := true
		num.ItalianLeadingZero = &yes
		zeros := int32(1)
		for int(zeros) < len(nsn)-1 && nsn[zeros] == '0' {
			zeros++
		}
		if zeros != 1 {
			num.NumberOfLeadingZeros = &zeros
		}
	}
	return num, true
}

// unknownRegion is the phone library's region for a country code it
// does not know.
const unknownRegion = "ZZ"

// isoDateTime matches the leading date of an ISO 8601 date-time.
const isoDate = "2006-01-02"

// fallbackDateLayouts are tried after the CRM's own layout: ISO (single
// digit month and day accepted), then day-month-year.
var fallbackDateLayouts = [...]string{"2006-1-2", "2-1-2006"}

// normalizeDate parses a date in layout (if any), ISO YYYY-MM-DD (also
// the date part of an ISO date-time) or DD-MM-YYYY and returns
// YYYY-MM-DD. An all-zero date ("0000-00-00", as some SQL-backed CRMs
// store "no date") is empty. Unparseable text is kept, trimmed.
func normalizeDate(v, layout string) string {
	v = strings.TrimSpace(v)
	if v == "" || allZeroDigits(v) {
		return ""
	}
	if layout != "" {
		if t, err := time.Parse(layout, v); err == nil {
			return t.Format(isoDate)
		}
	}
	// Fast path: already canonical.
	if len(v) == 10 && v[4] == '-' && v[7] == '-' {
		if _, err := time.Parse(isoDate, v); err == nil {
			return v
		}
	}
	for _, l := range fallbackDateLayouts {
		if t, err := time.Parse(l, v); err == nil {
			return t.Format(isoDate)
		}
	}
	// "1984-03-29T00:00:00Z" or "1984-03-29 00:00:00": the date part.
	if len(v) > 10 && (v[10] == 'T' || v[10] == ' ') {
		if t, err := time.Parse(isoDate, v[:10]); err == nil {
			return t.Format(isoDate)
		}
	}
	return v
}

// formatDate writes a canonical date in the CRM's layout; values that are
// not dates pass through.
func formatDate(v, layout string) string {
	if v == "" {
		return ""
	}
	iso := normalizeDate(v, "")
	t, err := time.Parse(isoDate, iso)
	if err != nil {
		return v
	}
	return t.Format(layout)
}

// allZeroDigits reports whether v has digits and all of them are zero.
func allZeroDigits(v string) bool {
	digits := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c >= '1' && c <= '9' {
			return false
		}
		if c == '0' {
			digits = true
		}
	}
	return digits
}

// splitName splits a full name: the last word is the family name, the
// rest the given name(s); "Family, Given" is understood too. A single
// word is taken as the family name, so joining gives the same text back.
// A stray comma with nothing on one side counts as a space.
func splitName(full string) (given, family string) {
	full = collapseSpace(full)
	if full == "" {
		return "", ""
	}
	if f, g, ok := strings.Cut(full, ","); ok {
		f, g = strings.TrimSpace(f), strings.TrimSpace(g)
		if f != "" && g != "" {
			return g, f
		}
		full = collapseSpace(strings.ReplaceAll(full, ",", " "))
	}
	i := strings.LastIndexByte(full, ' ')
	if i < 0 {
		return "", full
	}
	return full[:i], full[i+1:]
}

// joinName writes given and family as one name, "Given Family". A family
// name of several words ("van Beethoven") or a given name holding a comma
// is written "Family, Given" instead, the one form that splits back into
// the same parts.
func joinName(given, family string) string {
	given, family = collapseSpace(given), collapseSpace(family)
	switch {
	case given == "":
		return family
	case family == "":
		return given
	case strings.Contains(family, " ") || strings.Contains(given, ","):
		return family + ", " + given
	}
	return given + " " + family
}
