package mapping

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

// A canonical E.164 value read without the parser (e164Number) is the
// number the parser reads, for the example numbers of every region and
// every type the phone library knows: the same country code, national
// number and leading zeros, so every format of it is the same.
func TestE164NumberIsWhatTheParserReads(t *testing.T) {
	checked := 0
	for region, ex := range exampleNumbers {
		v := phonenumbers.Format(ex, phonenumbers.E164)
		parsed, err := phonenumbers.Parse(v, region)
		if err != nil {
			continue
		}
		fast, ok := e164Number(v)
		if !ok {
			if e164(parsed) == v {
				t.Errorf("%s: e164Number refused %s, which the parser reads back as itself", region, v)
			}
			continue
		}
		if got := phonenumbers.Format(fast, phonenumbers.E164); got != v {
			t.Errorf("%s: e164Number(%s) writes back as %s", region, v, got)
		}
		checked++
		for _, f := range []phonenumbers.PhoneNumberFormat{phonenumbers.E164, phonenumbers.INTERNATIONAL, phonenumbers.NATIONAL, phonenumbers.RFC3966} {
			if got, want := phonenumbers.Format(fast, f), phonenumbers.Format(parsed, f); got != want {
				t.Errorf("%s %s: format %v gives %q, the parser's number %q", region, v, f, got, want)
			}
		}
		if phonenumbers.IsPossibleNumber(fast) != phonenumbers.IsPossibleNumber(parsed) {
			t.Errorf("%s %s: possible %v, the parser's number %v", region, v, phonenumbers.IsPossibleNumber(fast), phonenumbers.IsPossibleNumber(parsed))
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

// A number written with its country code and read without the parser
// (plusNumber) is the number the parser reads: the example numbers of
// every region and type in E.164, international and RFC 3966 layout,
// with a national prefix after the country code, and random digits
// after every country code with random separators. Where the parser
// fails, plusNumber declines.
func TestPlusNumberIsWhatTheParserReads(t *testing.T) {
	var inputs []string
	for _, ex := range exampleNumbers {
		intl := phonenumbers.Format(ex, phonenumbers.INTERNATIONAL)
		cc := fmt.Sprint("+", ex.GetCountryCode())
		rest := strings.TrimSpace(strings.TrimPrefix(intl, cc))
		inputs = append(inputs,
			phonenumbers.Format(ex, phonenumbers.E164), intl,
			strings.TrimPrefix(phonenumbers.Format(ex, phonenumbers.RFC3966), "tel:"),
			cc+" 0"+rest, cc+" (0)"+rest, cc+"-"+strings.ReplaceAll(rest, " ", "."),
			cc+" ("+strings.Replace(rest, " ", ") ", 1))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	seps := []string{"", "", "", " ", "-", ".", "/", "(", ")", "  "}
	for _, cc := range slices.Sorted(maps.Keys(phonenumbers.GetSupportedCallingCodes())) {
		for range 40 {
			var b strings.Builder
			fmt.Fprint(&b, "+", cc)
			for range 1 + rng.IntN(18) {
				b.WriteString(seps[rng.IntN(len(seps))])
				b.WriteByte(byte('0' + rng.IntN(10)))
			}
			inputs = append(inputs, b.String())
		}
	}
	inputs = append(inputs, "+", "+4", "+44", "+441", "+0441234567", "+9991234567", "+44 20 7946 0958 x12",
		"+44 20 7946 0958#", "+44 20 7946 0958;ext=1", "++44 20 7946 0958", "+44 20 +7946", "+44 207946095800000000000",
		"+1 (415) 555-0100", "+33 (0)1 23 45 67 89", "+39 06 1234 5678", "+39 0 6 1234 5678", "+800 1234 5678")
	fast, agreed := 0, 0
	for _, v := range inputs {
		got, ok := plusNumber(v)
		want, err := phonenumbers.Parse(v, "GB")
		if !ok {
			continue
		}
		fast++
		if err != nil {
			t.Errorf("plusNumber(%q) read a number the parser refuses (%v)", v, err)
			continue
		}
		if g, w := e164(got), e164(want); g != w || got.GetItalianLeadingZero() != want.GetItalianLeadingZero() ||
			got.GetNumberOfLeadingZeros() != want.GetNumberOfLeadingZeros() || got.GetExtension() != "" || want.GetExtension() != "" {
			t.Errorf("plusNumber(%q) = %s (leading zero %v, %d), the parser reads %s (%v, %d, extension %q)", v, g,
				got.GetItalianLeadingZero(), got.GetNumberOfLeadingZeros(), w, want.GetItalianLeadingZero(), want.GetNumberOfLeadingZeros(), want.GetExtension())
			continue
		}
		cc, nsn, _ := readPlus(v)
		if countries()[cc].possible(len(nsn)) != phonenumbers.IsPossibleNumber(want) || phonenumbers.IsPossibleNumber(got) != phonenumbers.IsPossibleNumber(want) {
			t.Errorf("plusNumber(%q): possible %v, the parser's number %v", v, phonenumbers.IsPossibleNumber(got), phonenumbers.IsPossibleNumber(want))
			continue
		}
		if parsePhone(v, "GB") != parseWithParser(v, "GB") {
			t.Errorf("parsePhone(%q) = %q, the parser's reading is %q", v, parsePhone(v, "GB"), parseWithParser(v, "GB"))
		}
		agreed++
	}
	// Most inputs are read without the parser, or the fast path is gone.
	if fast < len(inputs)*2/3 {
		t.Errorf("plusNumber read %d of %d inputs", fast, len(inputs))
	}
	t.Logf("%d inputs, %d read without the parser, all as the parser reads them: %v", len(inputs), fast, agreed == fast)
}

// A number written without its country code and read without the parser
// (readNational) is the number the parser reads for the default region:
// every region's example numbers of every type in national layout, with
// and without separators, with the national prefix doubled or missing,
// and random digits with and without the region's national prefix,
// each read with its region as the default. Where the parser fails,
// readNational declines; where it reads, parsePhone gives what the
// parser alone gives.
func TestNationalNumberIsWhatTheParserReads(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	type input struct{ v, region string }
	var inputs []input
	for _, region := range slices.Sorted(maps.Keys(phonenumbers.GetSupportedRegions())) {
		ndd := phonenumbers.GetNddPrefixForRegion(region, true)
		for _, typ := range exampleTypes {
			ex := phonenumbers.GetExampleNumberForType(region, typ)
			if ex == nil {
				continue
			}
			nat := phonenumbers.Format(ex, phonenumbers.NATIONAL)
			digits := phonenumbers.NormalizeDigitsOnly(nat)
			inputs = append(inputs, input{nat, region}, input{digits, region}, input{ndd + digits, region},
				input{strings.TrimPrefix(digits, ndd), region}, input{"(" + digits[:min(3, len(digits))] + ") " + digits[min(3, len(digits)):], region})
		}
		for range 30 {
			var b strings.Builder
			if rng.IntN(2) == 0 {
				b.WriteString(ndd)
			}
			for range 2 + rng.IntN(14) {
				if rng.IntN(5) == 0 {
					b.WriteByte(" -./"[rng.IntN(4)])
				}
				b.WriteByte(byte('0' + rng.IntN(10)))
			}
			inputs = append(inputs, input{b.String(), region})
		}
	}
	fast := 0
	for _, in := range inputs {
		cc, nsn, ok := readNational(in.v, in.region)
		if !ok {
			continue
		}
		fast++
		want, err := phonenumbers.Parse(in.v, in.region)
		if err != nil {
			t.Errorf("readNational(%q, %s) = +%d %s, the parser refuses it (%v)", in.v, in.region, cc, nsn, err)
			continue
		}
		got, _ := numberOf(cc, nsn)
		if g, w := e164(got), e164(want); g != w || got.GetItalianLeadingZero() != want.GetItalianLeadingZero() ||
			got.GetNumberOfLeadingZeros() != want.GetNumberOfLeadingZeros() || want.GetExtension() != "" {
			t.Errorf("readNational(%q, %s) = %s, the parser reads %s", in.v, in.region, g, w)
			continue
		}
		if countries()[cc].possible(len(nsn)) != phonenumbers.IsPossibleNumber(want) {
			t.Errorf("readNational(%q, %s): possible %v, the parser's number %v", in.v, in.region, !phonenumbers.IsPossibleNumber(want), phonenumbers.IsPossibleNumber(want))
		}
		if got, want := parsePhone(in.v, in.region), parseWithParser(in.v, in.region); got != want {
			t.Errorf("parsePhone(%q, %s) = %q, the parser's reading is %q", in.v, in.region, got, want)
		}
	}
	if fast < len(inputs)/2 {
		t.Errorf("readNational read %d of %d inputs", fast, len(inputs))
	}
	t.Logf("%d inputs, %d read without the parser", len(inputs), fast)
}

// exampleTypes are the number types the phone library has example
// numbers of.
var exampleTypes = []phonenumbers.PhoneNumberType{phonenumbers.FIXED_LINE, phonenumbers.MOBILE, phonenumbers.TOLL_FREE, phonenumbers.PREMIUM_RATE, phonenumbers.VOIP, phonenumbers.PAGER, phonenumbers.UAN, phonenumbers.VOICEMAIL}

// exampleNumbers yields every region's example number of every type,
// with the region, regions in order.
func exampleNumbers(yield func(region string, ex *phonenumbers.PhoneNumber) bool) {
	for _, region := range slices.Sorted(maps.Keys(phonenumbers.GetSupportedRegions())) {
		for _, typ := range exampleTypes {
			if ex := phonenumbers.GetExampleNumberForType(region, typ); ex != nil && !yield(region, ex) {
				return
			}
		}
	}
}

// plusNumber is readPlus's number, as the parser makes it.
func plusNumber(v string) (*phonenumbers.PhoneNumber, bool) {
	cc, nsn, ok := readPlus(v)
	if !ok {
		return nil, false
	}
	return numberOf(cc, nsn)
}
