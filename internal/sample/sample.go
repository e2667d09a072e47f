// Package sample generates realistic sample people, deterministically from
// a seed, for the demo, the CRM simulator and benchmarks. The same person
// can be written the way different CRMs would hold them: e-mail case and
// phone formats differ, the person does not.
package sample

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// Person is one sample person in canonical form.
type Person struct {
	Given, Family string
	Email         string
	Phone         string // E.164, GB numbers
	Company       string
	JobTitle      string
	City          string
	Postcode      string
	Birthday      string // YYYY-MM-DD
}

var (
	givenNames = []string{
		"Olivia", "Amelia", "Isla", "Ava", "Mia", "Grace", "Freya", "Lily", "Sophia", "Emily",
		"Oliver", "George", "Arthur", "Noah", "Muhammad", "Leo", "Harry", "Oscar", "Jack", "Charlie",
		"Zoë", "Łucja", "Søren", "José", "Chloé", "Björn", "Anaïs", "Dvořák", "Siobhán", "Ewa",
		"Aarav", "Priya", "Wei", "Yuki", "Kwame", "Amara", "Mateo", "Fatima", "Nikolai", "Ингрид",
	}
	familyNames = []string{
		"Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel", "Robinson",
		"Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood", "Jackson",
		"Šimůnek", "Kowalczyk", "Müller", "García", "O'Brien", "Nowak", "Lefèvre", "Østergaard", "Nakamura", "Chen",
		"Okafor", "Haddad", "Rossi", "Ivanova", "Fernández", "MacLeod", "Van der Berg", "Łukasik", "Ferreira", "Петров",
	}
	companies = []string{"Acme Ltd", "Globex plc", "Initech", "Umbrella & Co", "Hooli", "Stark Industries", "Wayne Enterprises", "Łódź Trading", "Brightside CIC", ""}
	jobs      = []string{"Director", "Office Manager", "Accountant", "Engineer", "Sales Lead", "Designer", "", "Consultant"}
	cities    = []string{"London", "Manchester", "Leeds", "Bristol", "Glasgow", "Cardiff", "Belfast", "Edinburgh", "Łódź", "York"}
)

// People returns n people generated from seed. Emails and phones are
// unique: syncd matches people by phone too, so two sample people sharing
// a number would be one person to it (random numbers collide often from
// about 10,000 people on).
func People(seed uint64, n int) []Person {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	out := make([]Person, n)
	phones := make(map[int]bool, n)
	for i := range out {
		g := givenNames[r.IntN(len(givenNames))]
		f := familyNames[r.IntN(len(familyNames))]
		// Draw again on a collision; the people before the first
		// collision stay what they were.
		phone := r.IntN(100000000)
		for phones[phone] {
			phone = r.IntN(100000000)
		}
		phones[phone] = true
		out[i] = Person{
			Given:    g,
			Family:   f,
			Email:    fmt.Sprintf("%s.%s.%d@example.com", asciiLower(g), asciiLower(f), i),
			Phone:    fmt.Sprintf("+4420%08d", phone),
			Company:  companies[r.IntN(len(companies))],
			JobTitle: jobs[r.IntN(len(jobs))],
			City:     cities[r.IntN(len(cities))],
			Postcode: fmt.Sprintf("SW%d %d%c%c", 1+r.IntN(20), r.IntN(10), 'A'+rune(r.IntN(26)), 'A'+rune(r.IntN(26))),
			Birthday: fmt.Sprintf("%04d-%02d-%02d", 1950+r.IntN(55), 1+r.IntN(12), 1+r.IntN(28)),
		}
	}
	return out
}

// asciiLower turns a name into the ASCII local part of an address.
func asciiLower(s string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(s) {
		switch {
		case c >= 'a' && c <= 'z':
			b.WriteRune(c)
		case c > 127:
			b.WriteRune('x')
		}
	}
	if b.Len() == 0 {
		return "x"
	}
	return b.String()
}

// EmailVariant writes the email as another CRM might: capitalised.
func (p Person) EmailVariant() string {
	local, domain, _ := strings.Cut(p.Email, "@")
	parts := strings.Split(local, ".")
	for i, s := range parts {
		if s != "" {
			parts[i] = strings.ToUpper(s[:1]) + s[1:]
		}
	}
	return strings.Join(parts, ".") + "@" + strings.ToUpper(domain[:1]) + domain[1:]
}

// PhoneNational writes the GB number in national form: "020 7946 0958".
func (p Person) PhoneNational() string {
	d := strings.TrimPrefix(p.Phone, "+44")
	if len(d) != 10 {
		return p.Phone
	}
	return "0" + d[:2] + " " + d[2:6] + " " + d[6:]
}

// PhoneSpaced writes it international with spaces: "+44 20 7946 0958".
func (p Person) PhoneSpaced() string {
	d := strings.TrimPrefix(p.Phone, "+44")
	if len(d) != 10 {
		return p.Phone
	}
	return "+44 " + d[:2] + " " + d[2:6] + " " + d[6:]
}
