package mapping

import (
	"regexp"
	"strconv"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

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
	if len(v) < 3 || len(v) > 40 {
		return 0, "", false
	}
	var buf [24]byte
	digits := buf[:0]
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c >= '0' && c <= '9':
			if len(digits) == cap(digits) {
				return 0, "", false
			}
			digits = append(digits, c)
		case c == ' ' || c == '-' || c == '.' || c == '/' || c == '(' || c == ')':
		default:
			return 0, "", false
		}
	}
	if len(digits) < 3 {
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

var regions = struct {
	sync.Mutex
	m map[string]*regionInfo
}{m: map[string]*regionInfo{}}

// regionOf returns a region's regionInfo, made the first time it is
// asked for (nil for a region the phone library does not know).
func regionOf(region string) *regionInfo {
	regions.Lock()
	defer regions.Unlock()
	if r, ok := regions.m[region]; ok {
		return r
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
	regions.m[region] = r
	return r
}
