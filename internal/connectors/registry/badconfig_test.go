package registry

import (
	"strings"
	"testing"

	"github.com/syncd/syncd/internal/config"
)

// A table of broken configs, each with the exact message a user sees.
func TestBadConfigs(t *testing.T) {
	const base = `state = "s.db"
[[connectors]]
name = "crm"
type = "memory"
[[connectors.fields]]
canonical = "email"
remote = "email"
`
	const ocrm = `state = "s.db"
[[connectors]]
name = "o"
type = "opencrm"
base_url = "https://x.opencrm.co.uk/api/rest"
credentials = { key = "k", passkey = "p" }
[[connectors.fields]]
canonical = "email"
remote = "email"
`
	env := map[string]string{"EMPTY": ""}
	cases := []struct {
		name, text, want string
	}{
		{"syntax error", "state = \n", "/c.toml:1:9: expected value but found '\\n' instead"},
		{"unterminated string", "state = \"s.db\n", "/c.toml:1:"},
		{"wrong type", "state = 5\n" + base[len(`state = "s.db"`)+1:], "incompatible types: TOML value has type int64; destination has type string"},
		{"unknown top-level key", "stat = \"x\"\n" + base, "stat: unknown key"},
		{"unknown connector key", strings.Replace(base, `type = "memory"`, "type = \"memory\"\ncolour = 1", 1), "connectors[].colour: unknown key"},
		{"missing state", base[len(`state = "s.db"`)+1:], "state: missing: the path of the state database"},
		{"bad schedule", "schedule = \"every 5 minutes\"\n" + base, `schedule: not a cron spec or @every duration: `},
		{"bad log level", "[log]\nlevel = \"loud\"\n", ""},
		{"no connectors", "state = \"s.db\"\n", "connectors: missing: at least one [[connectors]] table is needed"},
		{"duplicate names", base + strings.Replace(base[len(`state = "s.db"`)+1:], "", "", 1), `connectors[1].name: duplicate connector name, also used by connectors[0] (got "crm")`},
		{"unknown type", strings.Replace(base, `"memory"`, `"salesforce"`, 1), `connectors[0].type: unknown connector type (got "salesforce"); one of carddav, clientapi, clientbook, co3, memory, opencrm, vcarddir`},
		{"unknown canonical field", strings.Replace(base, `canonical = "email"`, `canonical = "e-mail"`, 1), `connectors[0].fields[0].canonical: unknown canonical field (got "e-mail")`},
		{"unknown transform", base + "transforms = [\"shout\"]\n", `connectors[0].fields[0].transforms[0]: unknown transform (got "shout")`},
		{"push on a pull-only connector", strings.Replace(base, `type = "memory"`, "type = \"clientapi\"\nbase_url = \"https://h.example/index.php\"\ncredentials = { apikey = \"a\" }\ndirection = \"push\"", 1), `connectors[0].direction: connector type clientapi is pull-only: set direction = "pull" (got "push")`},
		{"pull-only left at both", strings.Replace(base, `type = "memory"`, "type = \"clientapi\"\nbase_url = \"https://h.example/index.php\"\ncredentials = { apikey = \"a\" }", 1), `connectors[0].direction: connector type clientapi is pull-only: set direction = "pull" (got "both")`},
		{"unset env reference", strings.Replace(ocrm, `passkey = "p"`, `passkey = "env:SYNCD_TEST_UNSET"`, 1), `connectors[0].credentials.passkey: environment variable SYNCD_TEST_UNSET is not set (got "env:SYNCD_TEST_UNSET")`},
		{"empty env reference", strings.Replace(ocrm, `passkey = "p"`, `passkey = "env:EMPTY"`, 1), `connectors[0].credentials.passkey: environment variable EMPTY is empty (got "env:EMPTY")`},
		{"missing credential file", strings.Replace(ocrm, `passkey = "p"`, `passkey = "file:/nonexistent/passkey"`, 1), `connectors[0].credentials.passkey: cannot read credential file /nonexistent/passkey: no such file or directory (got "file:/nonexistent/passkey")`},
		{"missing credential", strings.Replace(ocrm, `, passkey = "p"`, ``, 1), `connectors[0].credentials.passkey: missing`},
		{"plain http to a remote host", strings.Replace(ocrm, "https://x.opencrm", "http://x.opencrm", 1), `connectors[0].base_url: plain http is allowed only for loopback hosts; use https (got "http://x.opencrm.co.uk/api/rest")`},
		{"missing base url", strings.Replace(ocrm, `base_url = "https://x.opencrm.co.uk/api/rest"`, ``, 1), `connectors[0].base_url: missing`},
		{"bad option value", ocrm + "[connectors.options]\ntime_zone = \"Europe/Lundon\"\n", `connectors[0].options.time_zone: unknown time zone (got "Europe/Lundon")`},
		{"unknown option", ocrm + "[connectors.options]\nzone = \"UTC\"\n", `connectors[].options.zone: unknown key`},
		{"priority names unknown connector", "[conflicts]\npolicy = \"priority\"\npriority = [\"nope\"]\n" + base, `conflicts.priority[0]: no connector has this name (got "nope")`},
		{"bad policy", "[conflicts]\npolicy = \"oldest\"\n" + base, `conflicts.policy: must be newest, priority or manual (got "oldest")`},
		{"bad delete ratio", "[deletions]\nmax_delete_ratio = 5.0\n" + base, `deletions.max_delete_ratio: must be between 0 and 1 (got 5)`},
		{"bad direction", strings.Replace(base, `type = "memory"`, "type = \"memory\"\ndirection = \"sideways\"", 1), `connectors[0].direction: must be both, pull or push (got "sideways")`},
		{"negative rate", strings.Replace(base, `type = "memory"`, "type = \"memory\"\nrate = -1.0", 1), `connectors[0].rate: must not be negative (got -1)`},
		{"bad timeout", strings.Replace(base, `type = "memory"`, "type = \"memory\"\ntimeout = \"soon\"", 1), `not a duration like "30s" or "5m" (got "soon")`},
		{"no field mappings", "state = \"s.db\"\n[[connectors]]\nname = \"m\"\ntype = \"memory\"\n", `connectors[0].fields: missing: a connector needs at least one [[connectors.fields]] mapping`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == "" {
				tc.want = `log.level: must be debug, info, warn or error (got "loud")`
			}
			_, err := config.Parse([]byte(tc.text), "/c.toml", Types(), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			if err == nil {
				t.Fatalf("config accepted:\n%s", tc.text)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("message lacks %q; got:\n%v", tc.want, err)
			}
		})
	}
}
