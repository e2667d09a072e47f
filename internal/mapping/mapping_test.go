package mapping

import (
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
)

var gb = Options{DefaultRegion: "GB"}

func boolPtr(b bool) *bool { return &b }

func mustCompile(t testing.TB, fields []Field, exclude []string, createDefaults map[string]string) *Mapper {
	t.Helper()
	m, err := Compile(fields, exclude, createDefaults, gb)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return m
}

func TestTransformsRead(t *testing.T) {
	tests := []struct {
		name       string
		canonical  string
		transforms []string
		in, want   string
	}{
		{"trim", "custom.code", []string{"trim"}, "  ab  c ", "ab c"},
		{"collapse", "company", []string{"collapse"}, " Acme \t  Widgets\u00a0Ltd ", "Acme Widgets Ltd"},
		{"lower", "custom.code", []string{"lower"}, "ABC", "abc"},
		{"upper", "postcode", []string{"upper"}, "sw1a 1aa", "SW1A 1AA"},
		{"lower then upper in order", "custom.code", []string{"lower", "upper"}, "aBc", "ABC"},
		{"phone national GB", "phone", []string{"phone"}, "020 7946 0958", "+442079460958"},
		{"phone international spaced", "mobile", []string{"phone"}, "+44 7700 900123", "+447700900123"},
		{"phone other country", "phone", []string{"phone"}, "+1 (415) 555-2671", "+14155552671"},
		{"phone 00 prefix", "phone", []string{"phone"}, "0044 20 7946 0958", "+442079460958"},
		{"phone extension", "phone", []string{"phone"}, "020 7946 0958 ext. 12", "+442079460958;ext=12"},
		{"phone invalid kept", "phone", []string{"phone"}, "  ask  reception ", "ask reception"},
		{"phone too short kept", "phone", []string{"phone"}, "12", "12"},
		{"phone on custom field", "custom.whatsapp", []string{"phone"}, "07700 900123", "+447700900123"},
		{"date token DD-MM-YYYY", "birthday", []string{"date:DD-MM-YYYY"}, "29-03-1984", "1984-03-29"},
		{"date token falls back to ISO", "birthday", []string{"date:DD-MM-YYYY"}, "1984-03-29", "1984-03-29"},
		{"date US token", "birthday", []string{"date:MM/DD/YYYY"}, "03/29/1984", "1984-03-29"},
		{"date Go layout", "birthday", []string{"date:02.01.2006"}, "29.03.1984", "1984-03-29"},
		{"date ISO layout reads DD-MM-YYYY", "birthday", []string{"date:YYYY-MM-DD"}, "29-03-1984", "1984-03-29"},
		{"date ISO date-time", "birthday", []string{"date:YYYY-MM-DD"}, "1984-03-29T00:00:00Z", "1984-03-29"},
		{"date SQL zero", "birthday", []string{"date:YYYY-MM-DD"}, "0000-00-00", ""},
		{"date unparseable kept", "birthday", []string{"date:YYYY-MM-DD"}, " spring '84 ", "spring '84"},
		{"date on custom field", "custom.joined", []string{"date:DD/MM/YYYY"}, "01/02/2020", "2020-02-01"},
		{"given of three words", "given_name", []string{"given_name"}, "Mary Ann Smith", "Mary Ann"},
		{"family of three words", "family_name", []string{"family_name"}, "Mary Ann Smith", "Smith"},
		{"given of one word", "given_name", []string{"given_name"}, "Madonna", ""},
		{"family of one word", "family_name", []string{"family_name"}, "Madonna", "Madonna"},
		{"given of comma form", "given_name", []string{"given_name"}, "Smith,  Mary Ann", "Mary Ann"},
		{"family of comma form", "family_name", []string{"family_name"}, "Smith, Mary Ann", "Smith"},
		{"family of non-Latin", "family_name", []string{"family_name"}, " Zoë  Šimůnek ", "Šimůnek"},
		{"full name unsplit", "custom.display_name", []string{"full_name"}, "  Mary  Ann Smith ", "Mary Ann Smith"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustCompile(t, []Field{{Canonical: tt.canonical, Remote: "f", Transforms: tt.transforms}}, nil, nil)
			got := m.ToCanonical(map[string]string{"f": tt.in})[tt.canonical]
			if got != tt.want {
				t.Errorf("read %q = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestRoundTrip reads a CRM value and writes it back: the CRM sees its
// own form again, so a sync without changes rewrites nothing.
func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name       string
		canonical  string
		transforms []string
		values     map[string]string
		crm        string
	}{
		{"phone e164", "phone", []string{"phone"}, nil, "+442079460958"},
		{"phone national", "phone", []string{"phone:national"}, nil, "020 7946 0958"},
		{"phone national foreign keeps code", "phone", []string{"phone:national"}, nil, "+1 415-555-2671"},
		{"phone national extension", "phone", []string{"phone:national"}, nil, "020 7946 0958 x12"},
		{"phone invalid", "phone", []string{"phone"}, nil, "ask reception"},
		{"date DD-MM-YYYY", "birthday", []string{"date:DD-MM-YYYY"}, nil, "29-03-1984"},
		{"date MM/DD/YYYY", "birthday", []string{"date:MM/DD/YYYY"}, nil, "03/29/1984"},
		{"date ISO", "birthday", []string{"date:YYYY-MM-DD"}, nil, "1984-03-29"},
		{"date Go layout", "birthday", []string{"date:2 January 2006"}, nil, "29 March 1984"},
		{"value map", "custom.gender", nil, map[string]string{"male": "M", "female": "F"}, "female"},
		{"value map passes unknown", "custom.gender", nil, map[string]string{"male": "M"}, "other"},
		{"value map with transform", "custom.gender", []string{"trim"}, map[string]string{"male": "M"}, "male"},
		{"plain non-Latin", "city", nil, nil, "Łódź"},
		{"full name", "custom.display_name", []string{"full_name"}, nil, "Zoë Šimůnek"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustCompile(t, []Field{{Canonical: tt.canonical, Remote: "f", Transforms: tt.transforms, Values: tt.values}}, nil, nil)
			canonical := m.ToCanonical(map[string]string{"f": tt.crm})
			back := m.ToRemote([]string{tt.canonical}, canonical)
			if back["f"] != tt.crm {
				t.Errorf("round trip %q: canonical %q, written %q", tt.crm, canonical[tt.canonical], back["f"])
			}
			if c := m.CreateFields(canonical); c["f"] != tt.crm {
				t.Errorf("create %q: written %q", tt.crm, c["f"])
			}
		})
	}
}

func TestValueMap(t *testing.T) {
	m := mustCompile(t, []Field{{Canonical: "custom.gender", Remote: "sex", Values: map[string]string{"male": "M", "m": "M", "Female": "F"}}}, nil, nil)
	tests := []struct{ crm, canonical, written string }{
		{"male", "M", "m"}, // "m" sorts before "male": writes never depend on map order
		{"MALE", "M", "m"},
		{" Male ", "M", "m"},
		{"female", "F", "Female"},
		{"x", "x", "x"},
		{"", "", ""},
	}
	if w := m.ToRemote([]string{"custom.gender"}, map[string]string{"custom.gender": "f"})["sex"]; w != "Female" {
		t.Errorf("write of another case %q, want %q", w, "Female")
	}
	for _, tt := range tests {
		c := m.ToCanonical(map[string]string{"sex": tt.crm})
		if c["custom.gender"] != tt.canonical {
			t.Errorf("read %q = %q, want %q", tt.crm, c["custom.gender"], tt.canonical)
		}
		if w := m.ToRemote([]string{"custom.gender"}, c)["sex"]; w != tt.written {
			t.Errorf("write %q = %q, want %q", tt.canonical, w, tt.written)
		}
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct{ canonical, in, want string }{
		{"email", "  John.Smith@Example.COM ", "john.smith@example.com"},
		{"email2", "ZOË@EXAMPLE.CZ", "zoë@example.cz"},
		{"phone", "+44 20 7946 0958", "+442079460958"},
		{"phone", "020 7946 0958", "+442079460958"},
		{"phone", "+442079460958", "+442079460958"},
		{"mobile", "(07700) 900-123", "+447700900123"},
		{"fax", "n/a", "n/a"},
		{"phone", "", ""},
		{"birthday", "29-03-1984", "1984-03-29"},
		{"birthday", "1984-03-29", "1984-03-29"},
		{"birthday", "1984-3-9", "1984-03-09"},
		{"birthday", "0000-00-00 00:00:00", ""},
		{"birthday", "unknown", "unknown"},
		{"given_name", " Zoë \t Anna ", "Zoë Anna"},
		{"family_name", "Šimůnek", "Šimůnek"},
		{"city", "Łódź", "Łódź"},
		{"city", "  北京  市 ", "北京 市"},
		{"custom.x", "a\nb", "a b"},
		{"notes", "  first  line \r\n\r\nsecond\tline \n", "first line\n\nsecond line"},
		{"company", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.canonical+"/"+tt.in, func(t *testing.T) {
			got := Normalize(tt.canonical, tt.in, gb)
			if got != tt.want {
				t.Errorf("Normalize(%q, %q) = %q, want %q", tt.canonical, tt.in, got, tt.want)
			}
			if again := Normalize(tt.canonical, got, gb); again != got {
				t.Errorf("not idempotent: %q -> %q", got, again)
			}
		})
	}
}

func TestPhoneFormatsHashEqual(t *testing.T) {
	m := mustCompile(t, []Field{
		{Canonical: "phone", Remote: "tel"},
		{Canonical: "email", Remote: "mail"},
	}, nil, nil)
	var hashes []string
	for _, tel := range []string{"+44 20 7946 0958", "020 7946 0958", "+442079460958"} {
		c := m.ToCanonical(map[string]string{"tel": tel, "mail": "a@b.example"})
		hashes = append(hashes, m.Hash(c))
	}
	if hashes[0] != hashes[1] || hashes[1] != hashes[2] {
		t.Errorf("hashes differ: %v", hashes)
	}
	other := m.Hash(m.ToCanonical(map[string]string{"tel": "020 7946 0959", "mail": "a@b.example"}))
	if other == hashes[0] {
		t.Error("a different number hashes alike")
	}
}

func TestHash(t *testing.T) {
	m := mustCompile(t, []Field{
		{Canonical: "given_name", Remote: "first"},
		{Canonical: "family_name", Remote: "last"},
		{Canonical: "email", Remote: "mail"},
		{Canonical: "custom.modified_by", Remote: "modified_by", Compare: boolPtr(false)},
		{Canonical: "custom.score", Remote: "score"},
	}, []string{"score"}, nil)
	base := map[string]string{"given_name": "Zoë", "family_name": "Šimůnek", "email": "zoe@example.cz", "custom.modified_by": "admin", "custom.score": "10"}
	h := m.Hash(base)
	if len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
		t.Fatalf("hash %q is not 64 hex digits", h)
	}
	// Go randomises map order; many fresh copies exercise it.
	for range 50 {
		if m.Hash(maps.Clone(base)) != h {
			t.Fatal("hash depends on map order")
		}
	}
	tests := []struct {
		name string
		edit func(map[string]string)
		same bool
	}{
		{"non-compared field", func(c map[string]string) { c["custom.modified_by"] = "someone" }, true},
		{"excluded remote field", func(c map[string]string) { c["custom.score"] = "99" }, true},
		{"unmapped field", func(c map[string]string) { c["city"] = "Brno" }, true},
		{"empty equals missing", func(c map[string]string) { c["company"] = "" }, true},
		{"compared field", func(c map[string]string) { c["email"] = "other@example.cz" }, false},
		{"value moved between fields", func(c map[string]string) { c["given_name"], c["family_name"] = "Šimůnek", "Zoë" }, false},
		{"value shifted across boundary", func(c map[string]string) { c["given_name"], c["family_name"] = "ZoëŠ", "imůnek" }, false},
		{"compared field cleared", func(c map[string]string) { delete(c, "email") }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := maps.Clone(base)
			tt.edit(c)
			if got := m.Hash(c) == h; got != tt.same {
				t.Errorf("hash equal = %v, want %v", got, tt.same)
			}
		})
	}
}

func TestCompared(t *testing.T) {
	m := mustCompile(t, []Field{
		{Canonical: "email", Remote: "mail"},
		{Canonical: "notes", Remote: "description", Compare: boolPtr(false)},
		{Canonical: "custom.colour", Remote: "custom_fields.colour"},
		{Canonical: "company", Remote: "org", Compare: boolPtr(true)},
		// Mapped twice: compared because one mapping is.
		{Canonical: "phone", Remote: "tel_auto", Compare: boolPtr(false)},
		{Canonical: "phone", Remote: "tel"},
	}, []string{"custom_fields.*"}, nil)
	want := map[string]bool{"email": true, "notes": false, "custom.colour": false, "company": true, "phone": true, "city": false}
	for c, w := range want {
		if got := m.Compared(c); got != w {
			t.Errorf("Compared(%q) = %v, want %v", c, got, w)
		}
	}
	if got := strings.Join(m.Canonicals(), ","); got != "company,custom.colour,email,notes,phone" {
		t.Errorf("Canonicals = %s", got)
	}
}

func nameMapper(t testing.TB) *Mapper {
	return mustCompile(t, []Field{
		{Canonical: "given_name", Remote: "contact_name", Transforms: []string{"given_name"}},
		{Canonical: "family_name", Remote: "contact_name", Transforms: []string{"family_name"}},
		{Canonical: "email", Remote: "email"},
	}, nil, nil)
}

func TestFullNameSplitJoin(t *testing.T) {
	m := nameMapper(t)
	tests := []struct{ crm, given, family, written string }{
		{"Madonna", "", "Madonna", "Madonna"},
		{"John Smith", "John", "Smith", "John Smith"},
		{"Mary Ann Smith", "Mary Ann", "Smith", "Mary Ann Smith"},
		{"  Zoë   Šimůnek ", "Zoë", "Šimůnek", "Zoë Šimůnek"},
		{"Smith, John", "John", "Smith", "John Smith"},
		{"Smith,", "", "Smith", "Smith"},
		{"", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.crm, func(t *testing.T) {
			c := m.ToCanonical(map[string]string{"contact_name": tt.crm})
			if c["given_name"] != tt.given || c["family_name"] != tt.family {
				t.Errorf("split %q = (%q, %q), want (%q, %q)", tt.crm, c["given_name"], c["family_name"], tt.given, tt.family)
			}
			w := m.ToRemote([]string{"given_name", "family_name"}, c)
			if len(w) != 1 || w["contact_name"] != tt.written {
				t.Errorf("join = %v, want contact_name %q", w, tt.written)
			}
		})
	}
}

func TestToRemoteNamePartsUseFull(t *testing.T) {
	m := nameMapper(t)
	full := map[string]string{"given_name": "Zoë", "family_name": "Nováková", "email": "zoe@example.cz"}
	tests := []struct {
		changed []string
		want    map[string]string
	}{
		{[]string{"family_name"}, map[string]string{"contact_name": "Zoë Nováková"}},
		{[]string{"given_name"}, map[string]string{"contact_name": "Zoë Nováková"}},
		{[]string{"family_name", "email"}, map[string]string{"contact_name": "Zoë Nováková", "email": "zoe@example.cz"}},
		{[]string{"email"}, map[string]string{"email": "zoe@example.cz"}},
		{[]string{"city"}, map[string]string{}},
		{nil, map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.changed, "+"), func(t *testing.T) {
			if got := m.ToRemote(tt.changed, full); !maps.Equal(got, tt.want) {
				t.Errorf("ToRemote(%v) = %v, want %v", tt.changed, got, tt.want)
			}
		})
	}
	// A cleared field is sent empty, so the CRM clears it too.
	got := m.ToRemote([]string{"email"}, map[string]string{"given_name": "Zoë"})
	if v, ok := got["email"]; !ok || v != "" {
		t.Errorf("cleared email: %v", got)
	}
}

func TestCreateFields(t *testing.T) {
	m := mustCompile(t, []Field{
		{Canonical: "given_name", Remote: "first"},
		{Canonical: "family_name", Remote: "last", Default: "(unknown)"},
		{Canonical: "phone", Remote: "tel", Transforms: []string{"phone:national"}},
		{Canonical: "custom.status", Remote: "status", Default: "lead"},
		{Canonical: "company", Remote: "account"},
		{Canonical: "custom.owner", Remote: "owner_id"},
	}, nil, map[string]string{"source": "syncd", "status": "prospect", "owner_id": "7"})
	got := m.CreateFields(map[string]string{"given_name": "Zoë", "phone": "+442079460958", "custom.owner": "12"})
	want := map[string]string{
		"first":    "Zoë",
		"last":     "(unknown)",     // Default for an empty value
		"tel":      "020 7946 0958", // inverse transform
		"status":   "lead",          // the field's Default wins over create_defaults
		"source":   "syncd",         // create_defaults
		"owner_id": "12",            // a mapped value wins over create_defaults
	}
	if !maps.Equal(got, want) {
		t.Errorf("CreateFields = %v\nwant %v", got, want)
	}
}

func TestTwoRemotesOneCanonical(t *testing.T) {
	m := mustCompile(t, []Field{
		{Canonical: "phone", Remote: "work_phone"},
		{Canonical: "phone", Remote: "phone"},
	}, nil, nil)
	if got := m.ToCanonical(map[string]string{"phone": "020 7946 0958"})["phone"]; got != "+442079460958" {
		t.Errorf("second mapping not used when first is empty: %q", got)
	}
	if got := m.ToCanonical(map[string]string{"work_phone": "07700 900123", "phone": "020 7946 0958"})["phone"]; got != "+447700900123" {
		t.Errorf("first mapping does not win: %q", got)
	}
	w := m.ToRemote([]string{"phone"}, map[string]string{"phone": "+447700900123"})
	if w["work_phone"] != "+447700900123" || w["phone"] != "+447700900123" {
		t.Errorf("ToRemote = %v, want both fields", w)
	}
}

func TestToCanonicalMissingFields(t *testing.T) {
	m := nameMapper(t)
	got := m.ToCanonical(map[string]string{"unmapped": "x"})
	want := map[string]string{"given_name": "", "family_name": "", "email": ""}
	if !maps.Equal(got, want) {
		t.Errorf("ToCanonical = %v, want %v", got, want)
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name   string
		fields []Field
		opts   Options
		want   []string
	}{
		{"unknown transform", []Field{{Canonical: "email", Remote: "e", Transforms: []string{"trim", "x"}}}, gb,
			[]string{`fields[0].transforms[1]: unknown transform (got "x")`}},
		{"date without layout", []Field{{Canonical: "birthday", Remote: "b", Transforms: []string{"date"}}}, gb,
			[]string{`fields[0].transforms[0]: date needs`}},
		{"date layout without day", []Field{{Canonical: "birthday", Remote: "b", Transforms: []string{"date:MM-YYYY"}}}, gb,
			[]string{`fields[0].transforms[0]: date layout must hold year, month and day`}},
		{"phone bad format", []Field{{Canonical: "phone", Remote: "p", Transforms: []string{"phone:local"}}}, gb,
			[]string{`fields[0].transforms[0]: phone format must be e164 or national`}},
		{"argument on plain transform", []Field{{Canonical: "email", Remote: "e", Transforms: []string{"lower:x"}}}, gb,
			[]string{`fields[0].transforms[0]: transform lower takes no argument (got "lower:x")`}},
		{"canonical and remote", []Field{{Canonical: "email", Remote: "e"}, {Canonical: "nickname"}}, gb,
			[]string{`fields[1].canonical: unknown canonical field (got "nickname")`, `fields[1].remote: missing`}},
		{"region", []Field{{Canonical: "email", Remote: "e"}}, Options{DefaultRegion: "XX"},
			[]string{`default_region: unknown region (got "XX")`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Compile(tt.fields, nil, nil, tt.opts)
			if err == nil || m != nil {
				t.Fatalf("Compile = %v, %v; want an error", m, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestCheckTransformAccepts(t *testing.T) {
	for _, tr := range []string{"trim", "collapse", "lower", "upper", "phone", "phone:e164", "phone:national",
		"date:DD-MM-YYYY", "date:YYYY-MM-DD", "date:MM/DD/YYYY", "date:D/M/YYYY", "date:02.01.2006", "date:DD MMM YYYY",
		"given_name", "family_name", "full_name"} {
		if err := checkTransform(tr); err != nil {
			t.Errorf("checkTransform(%q) = %v", tr, err)
		}
	}
}

func TestIdentityKey(t *testing.T) {
	tests := []struct{ canonical, in, want string }{
		{"email", " John@Example.com ", "john@example.com"},
		{"email2", "JOHN@example.com", "john@example.com"},
		{"email", "not an address", ""},
		{"email", "", ""},
		{"phone", "020 7946 0958", "+442079460958"},
		{"mobile", "+44 7700 900123", "+447700900123"},
		{"phone", "020 7946 0958 ext. 12", "+442079460958"},
		{"phone", "ask reception", ""},
		{"custom.member_no", " A 12 ", "A 12"},
		{"custom.member_no", " ", ""},
	}
	for _, tt := range tests {
		if got := IdentityKey(tt.canonical, tt.in, gb); got != tt.want {
			t.Errorf("IdentityKey(%q, %q) = %q, want %q", tt.canonical, tt.in, got, tt.want)
		}
	}
}

func TestDefaultRegionApplies(t *testing.T) {
	us := Options{DefaultRegion: "US"}
	if got := Normalize("phone", "(415) 555-2671", us); got != "+14155552671" {
		t.Errorf("US national = %q", got)
	}
	if got := Normalize("phone", "020 7946 0958", Options{}); got != "020 7946 0958" {
		t.Errorf("no region: national number should stay text, got %q", got)
	}
}

func TestConcurrentUse(t *testing.T) {
	m := benchMapper(t)
	rec := benchRecord()
	want := m.Hash(m.ToCanonical(rec))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				if got := m.Hash(m.ToCanonical(rec)); got != want {
					t.Errorf("hash %s, want %s", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

// FuzzNormalize checks that normal forms are stable: normalising twice
// changes nothing, so stored values never look changed on the next run.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"+44 20 7946 0958", "020 7946 0958 ext. 12", "29-03-1984", "0000-00-00", "Zoë  Šimůnek", " A@B.c ", "a\r\nb", "\u00a0", "+4402079460958"} {
		f.Add(s)
	}
	fields := []string{"email", "phone", "birthday", "notes", "given_name"}
	f.Fuzz(func(t *testing.T, s string) {
		for _, c := range fields {
			n := Normalize(c, s, gb)
			if again := Normalize(c, n, gb); again != n {
				t.Errorf("Normalize(%q) not idempotent: %q -> %q", c, n, again)
			}
		}
		g, fam := splitName(s)
		if g2, f2 := splitName(joinName(g, fam)); g2 != g || f2 != fam {
			t.Errorf("split/join of %q: (%q,%q) -> (%q,%q)", s, g, fam, g2, f2)
		}
	})
}

func benchMapper(t testing.TB) *Mapper {
	return mustCompile(t, []Field{
		{Canonical: "given_name", Remote: "contact_name", Transforms: []string{"given_name"}},
		{Canonical: "family_name", Remote: "contact_name", Transforms: []string{"family_name"}},
		{Canonical: "email", Remote: "email", Transforms: []string{"trim"}},
		{Canonical: "email2", Remote: "other_email"},
		{Canonical: "phone", Remote: "phone", Transforms: []string{"phone"}},
		{Canonical: "mobile", Remote: "mobile"},
		{Canonical: "company", Remote: "account_name"},
		{Canonical: "job_title", Remote: "title"},
		{Canonical: "street", Remote: "mailingstreet"},
		{Canonical: "city", Remote: "mailingcity"},
		{Canonical: "postcode", Remote: "mailingzip", Transforms: []string{"upper"}},
		{Canonical: "country", Remote: "mailingcountry"},
		{Canonical: "birthday", Remote: "birthday", Transforms: []string{"date:DD-MM-YYYY"}},
		{Canonical: "custom.gender", Remote: "cf_gender", Values: map[string]string{"male": "M", "female": "F"}},
		{Canonical: "notes", Remote: "description", Compare: boolPtr(false)},
	}, nil, nil)
}

func benchRecord() map[string]string {
	return map[string]string{
		"contact_name":   "Zoë Anna Šimůnek",
		"email":          " Zoe.Simunek@Example.CZ ",
		"other_email":    "zoe@home.example",
		"phone":          "020 7946 0958",
		"mobile":         "+44 7700 900123",
		"account_name":   "Acme  Widgets Ltd",
		"title":          "Head of Sales",
		"mailingstreet":  "1 High Street",
		"mailingcity":    "Łódź",
		"mailingzip":     "sw1a 1aa",
		"mailingcountry": "United Kingdom",
		"birthday":       "29-03-1984",
		"cf_gender":      "female",
		"description":    "Met at the trade fair.",
		"modifiedtime":   "2024-05-01 10:00:00",
	}
}

// BenchmarkToCanonical maps contacts with phone numbers never seen
// before, as in a first sync (the memo of recent numbers never hits).
func BenchmarkToCanonical(b *testing.B) {
	benchNewPhones(b, "020 7%03d %04d", "07700 %06d")
}

// The same numbers written with their country code, as many CRMs
// store them: read without the phone parser (readPlus).
func BenchmarkToCanonicalPlusPhones(b *testing.B) {
	benchNewPhones(b, "+44 20 7%03d %04d", "+44 7700 %06d")
}

// benchNewPhones maps the benchmark record with a new phone number (the
// layout phone, two numbers) and mobile number (mobile, one) each time.
func benchNewPhones(b *testing.B, phone, mobile string) {
	m := benchMapper(b)
	rec := benchRecord()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		rec["phone"] = fmt.Sprintf(phone, i/10000%1000, i%10000)
		rec["mobile"] = fmt.Sprintf(mobile, i%1000000)
		m.ToCanonical(rec)
	}
}

func BenchmarkToCanonicalNoPhones(b *testing.B) {
	m := benchMapper(b)
	rec := benchRecord()
	rec["phone"], rec["mobile"] = "", ""
	b.ReportAllocs()
	for b.Loop() {
		m.ToCanonical(rec)
	}
}

func BenchmarkHash(b *testing.B) {
	m := benchMapper(b)
	c := m.ToCanonical(benchRecord())
	b.ReportAllocs()
	for b.Loop() {
		m.Hash(c)
	}
}

func BenchmarkToRemote(b *testing.B) {
	m := benchMapper(b)
	c := m.ToCanonical(benchRecord())
	changed := []string{"family_name", "phone", "birthday"}
	b.ReportAllocs()
	for b.Loop() {
		m.ToRemote(changed, c)
	}
}

func ExampleMapper_ToCanonical() {
	m, _ := Compile([]Field{
		{Canonical: "given_name", Remote: "contact_name", Transforms: []string{"given_name"}},
		{Canonical: "family_name", Remote: "contact_name", Transforms: []string{"family_name"}},
		{Canonical: "phone", Remote: "tel", Transforms: []string{"phone:national"}},
	}, nil, nil, Options{DefaultRegion: "GB"})
	c := m.ToCanonical(map[string]string{"contact_name": "Mary Ann Smith", "tel": "020 7946 0958"})
	fmt.Println(c["given_name"], "|", c["family_name"], "|", c["phone"])
	fmt.Println(m.ToRemote([]string{"family_name"}, map[string]string{"given_name": "Mary Ann", "family_name": "Jones"}))
	// Output:
	// Mary Ann | Smith | +442079460958
	// map[contact_name:Mary Ann Jones]
}

// FuzzReadWriteRead checks echo suppression at the mapping level: values
// read from a CRM, written back and read again are unchanged, so a synced
// record never looks modified by its own push.
func FuzzReadWriteRead(f *testing.F) {
	f.Add("Mary Ann Smith", "020 7946 0958", "29-03-1984", "female", "Łódź")
	f.Add("van Beethoven, Ludwig", "+1 415 555 2671 ext 9", "1984-03-29", "MALE", " ")
	f.Add("Madonna", "ask reception", "0000-00-00", "x", "SW1A  1aa")
	m := mustCompile(f, []Field{
		{Canonical: "given_name", Remote: "name", Transforms: []string{"given_name"}},
		{Canonical: "family_name", Remote: "name", Transforms: []string{"family_name"}},
		{Canonical: "phone", Remote: "tel", Transforms: []string{"phone:national"}},
		{Canonical: "mobile", Remote: "mob", Transforms: []string{"phone"}},
		{Canonical: "birthday", Remote: "dob", Transforms: []string{"date:DD/MM/YYYY"}},
		{Canonical: "custom.gender", Remote: "sex", Values: map[string]string{"male": "M", "female": "F"}},
		{Canonical: "city", Remote: "city", Transforms: []string{"upper"}},
	}, nil, nil)
	f.Fuzz(func(t *testing.T, name, tel, dob, sex, city string) {
		first := m.ToCanonical(map[string]string{"name": name, "tel": tel, "mob": tel, "dob": dob, "sex": sex, "city": city})
		written := m.ToRemote(m.Canonicals(), first)
		second := m.ToCanonical(written)
		for _, c := range m.Canonicals() {
			if first[c] != second[c] {
				t.Errorf("%s: read %q, wrote %q, read back %q", c, first[c], written, second[c])
			}
		}
		if m.Hash(first) != m.Hash(second) {
			t.Error("hash changed across a write")
		}
	})
}

// The memo of recent numbers answers what parsing would, and stays
// bounded however many numbers pass through it.
func TestPhoneMemo(t *testing.T) {
	for _, v := range []string{"020 7946 0958", "+44 20 7946 0958", "not a phone", "+39 06 1234 5678", "0044 (0)20 7946 0958"} {
		want := parsePhone(collapseSpace(v), "GB")
		for range 2 {
			if got := normalizePhone(v, "GB"); got != want {
				t.Errorf("normalizePhone(%q) = %q, want %q", v, got, want)
			}
		}
	}
	if a, b := normalizePhone("020 7946 0958", "GB"), normalizePhone("020 7946 0958", "US"); a == b {
		t.Errorf("the region is not part of the memo's key: %q for both", a)
	}
	for i := range 3 * phoneMemoSize {
		normalizePhone(fmt.Sprintf("+44 20 7%03d %04d", i/10000, i%10000), "GB")
	}
	recentPhones.mu.Lock()
	n := len(recentPhones.m)
	recentPhones.mu.Unlock()
	if n > phoneMemoSize {
		t.Errorf("memo holds %d numbers, more than %d", n, phoneMemoSize)
	}
}
