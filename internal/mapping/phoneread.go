package mapping

import (
	"regexp"
	"slices"
	"strconv"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

// readPlus reads a number written with its country code ("+" first,
// then digits and the separators space, "-", ".", "/" and parentheses,
// as in "+44 20 7946 0958" or "+1 (415) 555-0100") as the parser reads
// it, without the parser's search for an extension, a second number or
// letters, which none of these characters can start: its country code
// and national number (digits, leading zeros kept). The parser's only
// other change to such a number is the removal of a national prefix
// written after the country code ("+44 (0)20 …"): when the country's
// national prefix pattern matches the start of the national number,
// ok is false and the caller parses v, as it does for anything else
// (fewer than three digits, a national number shorter than two or
// longer than seventeen digits, an unknown country code).
// TestPlusNumberIsWhatTheParserReads holds it to the parser's reading.
func readPlus(v string) (cc int, nsn string, ok bool) {
	if len(v) < 4 || v[0] != '+' {
		return 0, "", false
	}
	var buf [24]byte
	digits, ok := phoneDigits(v[1:], buf[:0])
	if !ok || digits[0] == '0' {
		return 0, "", false
	}
	for n := 1; n <= 3 && n < len(digits); n++ {
		cc, _ = strconv.Atoi(string(digits[:n]))
		c, known := countries()[cc]
		if !known {
			continue
		}
		if len(digits)-n < 2 || len(digits)-n > 17 {
			return 0, "", false
		}
		if c.nationalPrefix != nil && c.nationalPrefix.Match(digits[n:]) {
			return 0, "", false
		}
		return cc, string(digits[n:]), true
	}
	return 0, "", false
}

// country is what readPlus and parsePhone need of a country code's
// metadata (that of its main region, which the parser uses for a number
// written with a country code).
type country struct {
	// nationalPrefix matches a national prefix at the start of a
	// national number; nil where the country has none.
	nationalPrefix *regexp.Regexp
	// lengths has bit n set when a national number of n digits is a
	// possible number (phonenumbers.IsPossibleNumber).
	lengths uint64
}

func (c country) possible(n int) bool { return n < 64 && c.lengths&(1<<n) != 0 }

// countries holds what readPlus needs of every country code the phone
// library knows, by country code, made the first time it is needed.
var countries = sync.OnceValue(func() map[int]country {
	out := map[int]country{}
	coll, err := phonenumbers.MetadataCollection()
	if err != nil {
		return out
	}
	for _, md := range coll.GetMetadata() {
		cc := int(md.GetCountryCode())
		if id := md.GetId(); id != nonGeoRegion && id != phonenumbers.GetRegionCodeForCountryCode(cc) {
			continue
		}
		var c country
		if p := md.GetNationalPrefixForParsing(); p != "" {
			c.nationalPrefix = regexp.MustCompile("^(?:" + p + ")")
		}
		gd := md.GetGeneralDesc()
		if lengths := gd.GetPossibleLength(); len(lengths) > 0 && lengths[0] != -1 {
			for _, n := range slices.Concat(lengths, gd.GetPossibleLengthLocalOnly()) {
				if n > 0 && n < 64 {
					c.lengths |= 1 << n
				}
			}
		}
		out[cc] = c
	}
	return out
})

// nonGeoRegion is the phone library's region of non-geographic numbers
// (+800 and the like).
const nonGeoRegion = "001"

// readNational reads a number written without its country code ("020
// 7946 0958", "(0)20 7946-0958": digits and the separators readPlus
// takes, no "+") as the parser reads it for the default region: the
// region's country code and the national number. It follows the
// parser's steps for such input with the region's own metadata: a
// leading international prefix ("00 44 …") or the country code itself
// ("44 20 …") and a national prefix the region rewrites rather than
// strips are left to the parser (ok false), as is anything else
// readPlus would refuse; otherwise the national prefix is stripped when
// the parser strips it (the region's pattern matches the start, the
// rest still fits the region's number pattern where the whole did, and
// its length is possible). TestNationalNumberIsWhatTheParserReads
// holds it to the parser's reading.
func readNational(v, region string) (cc int, nsn string, ok bool) {
	var buf [24]byte
	digits, ok := phoneDigits(v, buf[:0])
	if !ok {
		return 0, "", false
	}
	r := regionOf(region)
	if r == nil || r.idd.Match(digits) || (len(digits) >= len(r.ccDigits) && string(digits[:len(r.ccDigits)]) == r.ccDigits) {
		return 0, "", false
	}
	national := digits
	if r.nationalPrefix != nil {
		if g := r.nationalPrefix.FindSubmatchIndex(digits); g != nil {
			if last := len(g)/2 - 1; r.transform && g[2*last] >= 0 {
				return 0, "", false
			}
			rest := digits[g[1]:]
			if !(r.pattern.Match(digits) && !r.pattern.Match(rest)) && r.strippable(len(rest)) {
				national = rest
			}
		}
	}
	if len(national) < 2 || len(national) > 17 {
		return 0, "", false
	}
	return r.cc, string(national), true
}

// regionInfo is what readNational needs of a region's metadata.
type regionInfo struct {
	cc       int
	ccDigits string
	// idd matches an international prefix at the start.
	idd *regexp.Regexp
	// nationalPrefix matches a national prefix at the start (nil for
	// none); transform says the region rewrites it rather than strips it.
	nationalPrefix *regexp.Regexp
	transform      bool
	// pattern matches a whole national number of the region.
	pattern *regexp.Regexp
	// possible and local are the region's possible lengths of a
	// national number (none: the region has no numbers), and those
	// possible only locally.
	possible []int32
	local    []int32
}

// strippable says whether the parser keeps a national number of n digits
// left by stripping a national prefix: its length test gives neither
// too short, nor possible only locally, nor an invalid length.
func (r *regionInfo) strippable(n int) bool {
	if len(r.possible) == 0 || r.possible[0] == -1 {
		return false // INVALID_LENGTH
	}
	for _, l := range r.local {
		if int(l) == n {
			return false // IS_POSSIBLE_LOCAL_ONLY
		}
	}
	if int(r.possible[0]) == n {
		return true
	}
	if int(r.possible[0]) > n {
		return false // TOO_SHORT
	}
	if int(r.possible[len(r.possible)-1]) < n {
		return true // TOO_LONG
	}
	for _, l := range r.possible[1:] {
		if int(l) == n {
			return true
		}
	}
	return false // INVALID_LENGTH
}

// regions holds the regionInfo of each region asked for (nil for an
// unknown region): read on every national number, without a lock.
var regions sync.Map

// regionOf returns a region's regionInfo, made the first time it is
// asked for (nil for a region the phone library does not know).
func regionOf(region string) *regionInfo {
	if r, ok := regions.Load(region); ok {
		return r.(*regionInfo)
	}
	var r *regionInfo
	coll, err := phonenumbers.MetadataCollection()
	if err == nil && region != nonGeoRegion {
		for _, md := range coll.GetMetadata() {
			if md.GetId() != region {
				continue
			}
			gd := md.GetGeneralDesc()
			r = &regionInfo{
				cc:        int(md.GetCountryCode()),
				idd:       regexp.MustCompile("^(?:" + md.GetInternationalPrefix() + ")"),
				transform: md.GetNationalPrefixTransformRule() != "",
				pattern:   regexp.MustCompile("^(?:" + gd.GetNationalNumberPattern() + ")$"),
				possible:  gd.GetPossibleLength(),
				local:     gd.GetPossibleLengthLocalOnly(),
			}
			r.ccDigits = strconv.Itoa(r.cc)
			if p := md.GetNationalPrefixForParsing(); p != "" {
				r.nationalPrefix = regexp.MustCompile("^(?:" + p + ")")
			}
			break
		}
	}
	// Two callers may make it at once; both make the same.
	got, _ := regions.LoadOrStore(region, r)
	return got.(*regionInfo)
}

// phoneDigits appends to buf the digits of s, a number made of digits
// and the separators space, "-", ".", "/" and parentheses only (none of
// which can start an extension, a second number or letters for the
// phone parser), at least three digits and no more than buf holds; ok
// is false for anything else.
func phoneDigits(s string, buf []byte) (digits []byte, ok bool) {
	if len(s) > 40 {
		return nil, false
	}
	digits = buf
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			if len(digits) == cap(digits) {
				return nil, false
			}
			digits = append(digits, c)
		case c == ' ' || c == '-' || c == '.' || c == '/' || c == '(' || c == ')':
		default:
			return nil, false
		}
	}
	return digits, len(digits) >= 3
}
