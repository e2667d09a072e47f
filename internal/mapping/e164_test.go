package mapping

import (
	"maps"
	"slices"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

// A canonical E.164 value read without the parser (e164Number) is the
// number the parser reads, for the example numbers of every region and
// every type the phone library knows: the same country code, national
// number and leading zeros, so every format of it is the same.
func TestE164NumberIsWhatTheParserReads(t *testing.T) {
	types := []phonenumbers.PhoneNumberType{phonenumbers.FIXED_LINE, phonenumbers.MOBILE, phonenumbers.TOLL_FREE, phonenumbers.PREMIUM_RATE, phonenumbers.VOIP, phonenumbers.PAGER, phonenumbers.UAN, phonenumbers.VOICEMAIL}
	checked := 0
	for _, region := range slices.Sorted(maps.Keys(phonenumbers.GetSupportedRegions())) {
		for _, typ := range types {
			ex := phonenumbers.GetExampleNumberForType(region, typ)
			if ex == nil {
				continue
			}
			v := phonenumbers.Format(ex, phonenumbers.E164)
			parsed, err := phonenumbers.Parse(v, region)
			if err != nil {
				continue
			}
			fast, ok := e164Number(v)
			if !ok {
				if e164(parsed) == v {
					t.Errorf("%s %v: e164Number refused %s, which the parser reads back as itself", region, typ, v)
				}
				continue
			}
			if got := phonenumbers.Format(fast, phonenumbers.E164); got != v {
				t.Errorf("%s %v: e164Number(%s) writes back as %s", region, typ, v, got)
			}
			checked++
			for _, f := range []phonenumbers.PhoneNumberFormat{phonenumbers.E164, phonenumbers.INTERNATIONAL, phonenumbers.NATIONAL, phonenumbers.RFC3966} {
				if got, want := phonenumbers.Format(fast, f), phonenumbers.Format(parsed, f); got != want {
					t.Errorf("%s %v %s: format %v gives %q, the parser's number %q", region, typ, v, f, got, want)
				}
			}
			if phonenumbers.IsPossibleNumber(fast) != phonenumbers.IsPossibleNumber(parsed) {
				t.Errorf("%s %v %s: possible %v, the parser's number %v", region, typ, v, phonenumbers.IsPossibleNumber(fast), phonenumbers.IsPossibleNumber(parsed))
			}
		}
	}
	if checked < 500 {
		t.Errorf("only %d example numbers checked", checked)
	}
	for _, v := range []string{"", "+", "+44", "0207946", "+44 20 7946 0958", "+44207946095x", "+9991234567", "+1234567890123456789", "+0441234567"} {
		if _, ok := e164Number(v); ok {
			t.Errorf("e164Number(%q) accepted", v)
		}
	}
}
