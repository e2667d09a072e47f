// Command gen writes and edits folders of .vcf contacts for the vdirsyncer
// comparison benchmark (bench/vdirsyncer/run.sh).
//
//	gen -dir A -n 10000            write 10,000 contacts named by UID
//	gen -dir A -edit 1 -field TEL.cell -seed 1   edit 1% of the files in place
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/syncd/syncd/internal/connectors/vcardmap"
)

var (
	given  = []string{"Anna", "Ben", "Chloé", "David", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jakub", "Kofi", "Lena", "Mateo", "Nora", "Oskar", "Priya"}
	family = []string{"Smith", "Jones", "Müller", "Novák", "García", "Rossi", "Dubois", "Kowalski", "O'Neill", "Tanaka", "Silva", "Berg", "Haddad", "Khan", "Lee", "Walker"}
	cities = []string{"London", "Leeds", "Manchester", "Bristol", "York", "Oxford", "Cambridge", "Brighton"}
)

func main() {
	dir := flag.String("dir", "", "folder of .vcf files")
	n := flag.Int("n", 0, "write this many new contacts")
	edit := flag.Float64("edit", 0, "edit this percentage of the existing files")
	field := flag.String("field", "TEL.cell", "field changed by -edit")
	seed := flag.Uint64("seed", 1, "random seed")
	offset := flag.Int("offset", 0, "first contact number (phone numbers are unique per number)")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "gen: -dir is required")
		os.Exit(2)
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fail(err)
	}
	rng := rand.New(rand.NewPCG(*seed, 42))
	for i := range *n {
		uid := vcardmap.NewUID()
		c := vcardmap.New(uid, "3.0")
		g, f := given[rng.IntN(len(given))], family[rng.IntN(len(family))]
		err := c.Apply(map[string]string{
			"N.given": g, "N.family": f,
			"EMAIL": fmt.Sprintf("%s.%s.%d@example.com", strings.ToLower(g), strings.ToLower(strings.ReplaceAll(f, "'", "")), i),
			// Unique numbers: shared ones would be ambiguous identity keys.
			"TEL.cell": fmt.Sprintf("+44 7700 %06d", *offset+i),
			"TEL.work": fmt.Sprintf("+44 20 7%03d %04d", (*offset+i)/10000, (*offset+i)%10000),
			"ORG":      fmt.Sprintf("Company %d Ltd", rng.IntN(500)), "TITLE": "Manager",
			"ADR.street": fmt.Sprintf("%d High Street", 1+rng.IntN(200)), "ADR.locality": cities[rng.IntN(len(cities))],
			"ADR.postal_code": fmt.Sprintf("AB%d %dCD", rng.IntN(90)+1, rng.IntN(9)+1), "ADR.country": "United Kingdom",
			"BDAY": fmt.Sprintf("19%02d-%02d-%02d", 50+rng.IntN(50), 1+rng.IntN(12), 1+rng.IntN(28)),
			"NOTE": fmt.Sprintf("Customer since 20%02d.", rng.IntN(25)),
		})
		if err != nil {
			fail(err)
		}
		c.EnsureFN()
		write(filepath.Join(*dir, uid+".vcf"), c.Encode())
	}
	if *edit > 0 {
		names, err := filepath.Glob(filepath.Join(*dir, "*.vcf"))
		if err != nil {
			fail(err)
		}
		slices.Sort(names)
		count := int(float64(len(names)) * *edit / 100)
		for _, i := range rng.Perm(len(names))[:count] {
			b, err := os.ReadFile(names[i])
			if err != nil {
				fail(err)
			}
			c, err := vcardmap.Parse(b)
			if err != nil {
				fail(err)
			}
			v := fmt.Sprintf("+44 7800 %06d", i)
			if *field != "TEL.cell" {
				v = fmt.Sprintf("edited %d", rng.IntN(1000000))
			}
			if err := c.Apply(map[string]string{*field: v}); err != nil {
				fail(err)
			}
			write(names[i], c.Encode())
		}
		fmt.Printf("edited %d files in %s\n", count, *dir)
	}
}

// write replaces a file atomically, as contact apps do.
func write(path string, data []byte) {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "gen:", err)
	os.Exit(1)
}
