package vcardmap

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	govcard "github.com/emersion/go-vcard"
)

func mustParse(t testing.TB, data []byte) *Card {
	t.Helper()
	c, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFields(t *testing.T) {
	cases := []struct {
		file string
		want map[string]string
	}{
		{"apple3.vcf", map[string]string{
			"N.family": "Šimůnek", "N.given": "Zoë", "N.additional": "Marie", "N.prefix": "Dr.", "N.suffix": "PhD",
			"FN":  "Dr. Zoë Marie Šimůnek PhD",
			"ORG": "Acme, Inc.", "ORG.unit": "Research",
			"TITLE": "Head of R&D",
			// TYPE=pref makes the home address the first one.
			"EMAIL": "zoe@home.example", "EMAIL.2": "zoe@work.example",
			"TEL.cell": "+44 7700 900123", "TEL.work": "+44 20 7946 0000", "TEL.fax": "+44 20 7946 0001", "TEL": "+44 20 7946 0002",
			"ADR.street": "2 Low Rd", "ADR.locality": "Leeds", "ADR.region": "West Yorkshire", "ADR.postal_code": "LS1 1AA", "ADR.country": "UK",
			"BDAY": "1980-05-17",
			"URL":  "https://zoe.example/",
			"NOTE": "Met at the fair; likes tea, not coffee.\nSecond line.",
		}},
		{"v4.vcf", map[string]string{
			"FN": "Jane Doe", "N.family": "Doe", "N.given": "Jane",
			"EMAIL": "first@example.com", "EMAIL.2": "second@example.com",
			"TEL.cell": "+1-555-555-5555", "TEL.work": "+1-555-555-0000;ext=12",
			"BDAY": "1980-05-17",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			got := mustParse(t, readFile(t, tc.file)).Fields()
			if !maps.Equal(got, tc.want) {
				for k := range mapsUnion(got, tc.want) {
					if got[k] != tc.want[k] {
						t.Errorf("%s = %q, want %q", k, got[k], tc.want[k])
					}
				}
			}
		})
	}
}

func mapsUnion(a, b map[string]string) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// An unchanged card re-encodes to the same lines; an update touches only
// the properties it names.
func TestUpdateKeepsOtherLines(t *testing.T) {
	orig := readFile(t, "apple3.vcf")
	c := mustParse(t, orig)
	if got := c.Encode(); !bytes.Equal(got, orig) {
		t.Fatalf("re-encoding changed the card:\n%s\nwant\n%s", got, orig)
	}
	if err := c.Apply(map[string]string{"EMAIL": "new@home.example", "TEL.cell": "", "ADR.locality": "York", "N.given": "Zoe"}); err != nil {
		t.Fatal(err)
	}
	out := string(c.Encode())
	for _, line := range []string{
		"CATEGORIES:friends,work", "NOTE:Met at the fair\\; likes tea\\, not coffee.\\nSecond line.",
		"item1.EMAIL;type=INTERNET;type=WORK:zoe@work.example", "item1.X-ABLabel:_$!<Other>!$_",
		"EMAIL;TYPE=INTERNET,HOME,pref:new@home.example", "ADR;TYPE=HOME;TYPE=pref:;;2 Low Rd;York;West Yorkshire;LS1 1AA;UK",
		"N:Šimůnek;Zoe;Marie;Dr.;PhD", "FN:Dr. Zoe Marie Šimůnek PhD", "ORG:Acme\\, Inc.;Research",
	} {
		if !strings.Contains(out, line+"\r\n") {
			t.Errorf("updated card lacks %q:\n%s", line, out)
		}
	}
	if strings.Contains(out, "7700 900123") {
		t.Errorf("emptied TEL.cell still present:\n%s", out)
	}
	got := mustParse(t, []byte(out)).Fields()
	if got["EMAIL"] != "new@home.example" || got["ADR.locality"] != "York" || got["TEL.cell"] != "" || got["EMAIL.2"] != "zoe@work.example" {
		t.Errorf("read back %v", got)
	}
}

// A new card carries every field, reads back the same, and parses with a
// general vCard library too.
func TestNewRoundTrip(t *testing.T) {
	fields := map[string]string{
		"N.family": "O'Brien; Jr", "N.given": "Seán", "N.prefix": "Mr",
		"EMAIL": "sean@example.com", "EMAIL.2": "s@example.org",
		"TEL": "+353 1 234 5678", "TEL.cell": "+353 87 123 4567", "TEL.work": "+353 1 000", "TEL.home": "+353 1 111", "TEL.fax": "+353 1 222",
		"ADR.street": "1 Main St, Apt 2", "ADR.locality": "Dublin", "ADR.region": "Leinster", "ADR.postal_code": "D01 F5P2", "ADR.country": "Ireland",
		"ORG": "Guinness & Co.", "TITLE": "Brewer", "BDAY": "1975-03-17", "URL": "https://example.ie/a,b",
		"NOTE": strings.Repeat("Long note with ünïcödé, commas; and semicolons. ", 6) + "\nline two",
	}
	for _, version := range []string{"3.0", "4.0"} {
		t.Run(version, func(t *testing.T) {
			c := New("uid-1", version)
			if err := c.Apply(fields); err != nil {
				t.Fatal(err)
			}
			c.EnsureFN()
			data := c.Encode()
			for _, line := range strings.Split(string(data), "\r\n") {
				if len(line) > 75 {
					t.Errorf("line longer than 75 octets: %q", line)
				}
			}
			back := mustParse(t, data)
			got := back.Fields()
			want := maps.Clone(fields)
			want["FN"] = "Mr Seán O'Brien; Jr"
			if !maps.Equal(got, want) {
				for k := range mapsUnion(got, want) {
					if got[k] != want[k] {
						t.Errorf("%s = %q, want %q", k, got[k], want[k])
					}
				}
			}
			if back.UID() != "uid-1" || back.Version() != version {
				t.Errorf("UID %q version %q", back.UID(), back.Version())
			}
			gc, err := govcard.NewDecoder(bytes.NewReader(data)).Decode()
			if err != nil {
				t.Fatalf("go-vcard cannot read the card: %v\n%s", err, data)
			}
			if e := gc.PreferredValue(govcard.FieldEmail); e != "sean@example.com" {
				t.Errorf("go-vcard reads EMAIL %q", e)
			}
			if version == "4.0" && !strings.Contains(string(data), "BDAY:19750317\r\n") {
				t.Errorf("vCard 4 birthday not in basic format:\n%s", data)
			}
		})
	}
}

func TestApplyUnknownField(t *testing.T) {
	c := New("u", "3.0")
	before := string(c.Encode())
	if err := c.Apply(map[string]string{"FN": "x", "SHOE_SIZE": "9"}); err == nil {
		t.Fatal("unknown field accepted")
	}
	if string(c.Encode()) != before {
		t.Fatal("a refused Apply changed the card")
	}
}

// A value that is not UTF-8 is refused before anything changes: a card
// file is UTF-8 text.
func TestApplyRefusesInvalidUTF8(t *testing.T) {
	c := New("u", "4.0")
	before := string(c.Encode())
	err := c.Apply(map[string]string{"FN": "Zoë", "NOTE": "caf\xe9"})
	if err == nil || !strings.Contains(err.Error(), "NOTE") || !strings.Contains(err.Error(), "UTF-8") {
		t.Fatalf("Apply: %v, want an error naming NOTE and UTF-8", err)
	}
	if string(c.Encode()) != before {
		t.Fatal("a refused Apply changed the card")
	}
}

// Changing N regenerates an FN that was derived from it, but keeps one the
// user wrote differently.
func TestFNFollowsN(t *testing.T) {
	c := mustParse(t, []byte("BEGIN:VCARD\nVERSION:3.0\nN:Doe;John;;;\nFN:John Doe\nEND:VCARD\n"))
	_ = c.Apply(map[string]string{"N.family": "Smith"})
	if fn := c.Fields()["FN"]; fn != "John Smith" {
		t.Errorf("FN = %q, want John Smith", fn)
	}
	c = mustParse(t, []byte("BEGIN:VCARD\nVERSION:3.0\nN:Doe;John;;;\nFN:Johnny\nEND:VCARD\n"))
	_ = c.Apply(map[string]string{"N.family": "Smith"})
	if fn := c.Fields()["FN"]; fn != "Johnny" {
		t.Errorf("FN = %q, want Johnny kept", fn)
	}
}

func TestParseErrors(t *testing.T) {
	cases := map[string]string{
		"empty":          "",
		"no begin":       "VERSION:3.0\nEND:VCARD\n",
		"no end":         "BEGIN:VCARD\nVERSION:3.0\n",
		"no colon":       "BEGIN:VCARD\nVERSION 3.0\nEND:VCARD\n",
		"open quote":     "BEGIN:VCARD\nTEL;TYPE=\"work:1\nEND:VCARD\n",
		"empty name":     "BEGIN:VCARD\n:x\nEND:VCARD\n",
		"bad utf8":       "BEGIN:VCARD\nFN:\xff\nEND:VCARD\n",
		"end then begin": "END:VCARD\n",
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(in)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

// A changed property re-encodes its parameters so that they read back:
// quoted when they hold , ; or :, a DQUOTE (only a bare type can hold one)
// as ^' in vCard 4 and ' in vCard 3, everything else as read.
func TestParamsOfChangedProperty(t *testing.T) {
	cases := []struct {
		name, version, line, want string
		types                     []string
	}{
		{"bare dquote 3", "3.0", `EMAIL;":x`, `EMAIL;TYPE=':a@b.c`, []string{"'"}},
		{"bare dquote 4", "4.0", `EMAIL;":x`, `EMAIL;TYPE=^':a@b.c`, []string{"^'"}},
		{"bare dquote and comma 3", "3.0", `EMAIL;a,"b":x`, `EMAIL;TYPE="a,'b'":a@b.c`, []string{"a", "'b'"}},
		{"bare dquote and comma 4", "4.0", `EMAIL;a,"b":x`, `EMAIL;TYPE="a,^'b^'":a@b.c`, []string{"a", "^'b^'"}},
		{"quoted list", "4.0", `EMAIL;TYPE="work,home":x`, `EMAIL;TYPE="work,home":a@b.c`, []string{"work", "home"}},
		{"quoted colon", "3.0", `EMAIL;X-LABEL="a:b;c":x`, `EMAIL;X-LABEL="a:b;c":a@b.c`, nil},
		{"list of values", "3.0", `EMAIL;TYPE=work,pref:x`, `EMAIL;TYPE=work,pref:a@b.c`, []string{"work", "pref"}},
		{"caret kept", "4.0", `EMAIL;X-LABEL=a^^b^n:x`, `EMAIL;X-LABEL=a^^b^n:a@b.c`, nil},
		{"empty value", "4.0", `EMAIL;X-LABEL="":x`, `EMAIL;X-LABEL=:a@b.c`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, []byte("BEGIN:VCARD\nVERSION:"+tc.version+"\n"+tc.line+"\nEND:VCARD\n"))
			if err := c.Apply(map[string]string{"EMAIL": "a@b.c"}); err != nil {
				t.Fatal(err)
			}
			data := c.Encode()
			if !strings.Contains(string(data), "\r\n"+tc.want+"\r\n") {
				t.Fatalf("updated card lacks %q:\n%s", tc.want, data)
			}
			back := mustParse(t, data)
			if got := back.Fields()["EMAIL"]; got != "a@b.c" {
				t.Errorf("EMAIL reads back %q", got)
			}
			if got := back.Get("EMAIL").Types(); !slices.Equal(got, tc.types) {
				t.Errorf("TYPE reads back %q, want %q", got, tc.types)
			}
		})
	}
}

// Values the text escapes do not reach otherwise (URL, a free-text BDAY)
// still read back when they hold a line break or a backslash.
func TestApplyReadsBack(t *testing.T) {
	cases := []map[string]string{
		{"URL": "https://example.com/a,b;c"},
		{"URL": "https://example.com/a\nb"},
		{"URL": `https://example.com/a\b`},
		{"BDAY": "around\nmidsummer"},
		{"BDAY": `1980\,or so; maybe`},
		{"BDAY": "1980-05-17"},
	}
	for _, fields := range cases {
		for _, version := range []string{"3.0", "4.0"} {
			c := New("u", version)
			if err := c.Apply(fields); err != nil {
				t.Fatal(err)
			}
			back, err := Parse(c.Encode())
			if err != nil {
				t.Errorf("%s %q: %v", version, fields, err)
				continue
			}
			for k, want := range fields {
				if got := back.Fields()[k]; got != want {
					t.Errorf("%s %s reads back %q, want %q", version, k, got, want)
				}
			}
		}
	}
	c := New("u", "3.0")
	_ = c.Apply(map[string]string{"URL": "https://example.com/a,b"})
	if !strings.Contains(string(c.Encode()), "\r\nURL:https://example.com/a,b\r\n") {
		t.Errorf("URL without a backslash or line break is not written as it is:\n%s", c.Encode())
	}
}

func TestFoldedAndBareTypes(t *testing.T) {
	c := mustParse(t, []byte("BEGIN:VCARD\r\nVERSION:2.1\r\nN:Do\r\n e;Jo\r\n\thn\r\nTEL;CELL;VOICE:123\r\nEND:VCARD\r\n"))
	f := c.Fields()
	if f["N.family"] != "Doe" || f["N.given"] != "John" || f["TEL.cell"] != "123" {
		t.Fatalf("fields %v", f)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(readFile(f, "apple3.vcf"))
	f.Add(readFile(f, "v4.vcf"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		fields := c.Fields()
		// What was read parses again to the same fields.
		again, err := Parse(c.Encode())
		if err != nil {
			t.Fatalf("re-encoded card does not parse: %v", err)
		}
		if got := again.Fields(); !maps.Equal(got, fields) {
			t.Fatalf("fields changed on re-encoding: %v != %v", got, fields)
		}
		_ = c.Apply(map[string]string{"EMAIL": "a@b.c", "N.given": "x", "ADR.street": ""})
		updated := c.Encode()
		back, err := Parse(updated)
		if err != nil {
			t.Fatalf("updated card does not parse: %v", err)
		}
		if got, want := back.Fields(), c.Fields(); !maps.Equal(got, want) {
			t.Fatalf("updated card reads back %v, want %v", got, want)
		}
		if again := back.Encode(); !bytes.Equal(again, updated) {
			t.Fatalf("updated card re-encodes differently:\n%q\nwant\n%q", again, updated)
		}
	})
}

func benchCards(b *testing.B) [][]byte {
	apple := readFile(b, "apple3.vcf")
	v4 := readFile(b, "v4.vcf")
	page := make([][]byte, 100)
	for i := range page {
		page[i] = apple
		if i%2 == 1 {
			page[i] = v4
		}
	}
	return page
}

// A page of 100 cards: parse and flatten.
func BenchmarkParsePage(b *testing.B) {
	page := benchCards(b)
	b.ReportAllocs()
	for b.Loop() {
		for _, data := range page {
			c, err := Parse(data)
			if err != nil {
				b.Fatal(err)
			}
			_ = c.Fields()
		}
	}
	b.ReportMetric(float64(b.N*len(page))/b.Elapsed().Seconds(), "cards/s")
}

// A page of 100 new cards: build and encode.
func BenchmarkFormatPage(b *testing.B) {
	fields := map[string]string{"N.family": "Doe", "N.given": "Jane", "EMAIL": "jane@example.com", "TEL.cell": "+44 7700 900123", "ADR.locality": "London", "ORG": "Acme"}
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		for range 100 {
			c := New("4fbe8971-0bc3-424c-9c26-36c3e1eff6b1", "3.0")
			if err := c.Apply(fields); err != nil {
				b.Fatal(err)
			}
			c.EnsureFN()
			buf = c.AppendEncoded(buf[:0])
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "cards/s")
}
