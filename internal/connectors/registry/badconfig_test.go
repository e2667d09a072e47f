package registry

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/syncd/syncd/internal/config"
)

// Configs the bad-config cases start from: a memory connector, which
// needs no base URL or credentials, and an OpenCRM one, which needs both.
const (
	memoryConfig = `state = "s.db"
[[connectors]]
name = "crm"
type = "memory"
[[connectors.fields]]
canonical = "email"
remote = "email"
`
	openCRMConfig = `state = "s.db"
[[connectors]]
name = "o"
type = "opencrm"
base_url = "https://x.opencrm.co.uk/api/rest"
credentials = { key = "k", passkey = "p" }
[[connectors.fields]]
canonical = "email"
remote = "email"
`
	clientAPIConfig = `state = "s.db"
[[connectors]]
name = "hosting"
type = "clientapi"
base_url = "https://h.example/index.php"
credentials = { apikey = "a" }
direction = "pull"
[[connectors.fields]]
canonical = "email"
remote = "email"
`
	clientBookConfig = `state = "s.db"
[[connectors]]
name = "cb"
type = "clientbook"
base_url = "https://cb.example"
credentials = { app_id = "i", app_key = "k", token = "t", secret = "s" }
[[connectors.fields]]
canonical = "email"
remote = "client_email"
`
)

// withoutState drops a config's first line (state = ...).
func withoutState(text string) string {
	_, rest, _ := strings.Cut(text, "\n")
	return rest
}

// replace is strings.Replace once, failing loudly when old is absent so
// that a case cannot silently test the unbroken config.
func replace(t *testing.T, text, old, new string) string {
	t.Helper()
	if !strings.Contains(text, old) {
		t.Fatalf("case text lacks %q", old)
	}
	return strings.Replace(text, old, new, 1)
}

// TestBadConfigs loads broken configs from a file, as check-config does,
// and compares every line of the error with the lines a user sees:
// check-config prints them under "<file> has problems:" (a TOML syntax
// error, after which nothing can be checked, is the only line), each as
// "path: what is wrong (got "value")". The config's folder is written
// $DIR in the expected lines.
func TestBadConfigs(t *testing.T) {
	t.Setenv("SYNCD_TEST_EMPTY", "")
	os.Unsetenv("SYNCD_TEST_UNSET")
	cases := []struct {
		name  string
		text  func(t *testing.T) string
		files map[string]string // written beside the config
		want  []string
	}{
		// TOML syntax.
		{"syntax error", func(*testing.T) string { return "state = \n" },
			nil, []string{`$DIR/c.toml:1:9: expected value but found '\n' instead`}},
		{"unterminated string", func(*testing.T) string { return "state = \"s.db\n" },
			nil, []string{`$DIR/c.toml:1:14: strings cannot contain newlines`}},
		{"key given twice", func(*testing.T) string { return "state = \"a.db\"\nstate = \"b.db\"\n" + withoutState(memoryConfig) },
			nil, []string{`$DIR/c.toml:2:16: Key 'state' has already been defined.`}},
		{"table header not closed", func(*testing.T) string { return "[log\nlevel = \"info\"\n" },
			nil, []string{`$DIR/c.toml:2:5: expected '.' or ']' to end table name, but got '\n' instead`}},

		// Wrong types: each names the key and the value as written, and
		// the rest of the config is still checked.
		{"state is a number", func(*testing.T) string { return "state = 5\n" + withoutState(memoryConfig) },
			nil, []string{`state: must be a string (got 5)`}},
		{"rate is a string", func(t *testing.T) string {
			return replace(t, memoryConfig, `type = "memory"`, "type = \"memory\"\nrate = \"fast\"")
		}, nil, []string{`connectors[0].rate: must be a number (got "fast")`}},
		{"page size is a fraction", func(t *testing.T) string {
			return replace(t, memoryConfig, `type = "memory"`, "type = \"memory\"\npage_size = 1.5")
		}, nil, []string{`connectors[0].page_size: must be a whole number (got 1.5)`}},
		{"burst is a whole float", func(t *testing.T) string {
			return replace(t, memoryConfig, `type = "memory"`, "type = \"memory\"\nburst = 2.0")
		}, nil, []string{`connectors[0].burst: must be a whole number (got 2.0)`}},
		{"schedule is a number", func(*testing.T) string { return "schedule = 5\n" + memoryConfig },
			nil, []string{`schedule: must be a string (got 5)`}},
		{"direction is a list", func(t *testing.T) string {
			return replace(t, clientAPIConfig, `direction = "pull"`, `direction = ["pull"]`)
		}, nil, []string{`connectors[0].direction: must be a string (got ["pull"])`}},
		{"priority is one name", func(*testing.T) string {
			return memoryConfig + "[conflicts]\npolicy = \"priority\"\npriority = \"crm\"\n"
		}, nil, []string{`conflicts.priority: must be a list of strings (got "crm")`}},
		{"priority holds a number", func(*testing.T) string {
			return memoryConfig + "[conflicts]\npolicy = \"priority\"\npriority = [\"crm\", 2]\n"
		}, nil, []string{`conflicts.priority[1]: must be a string (got 2)`}},
		{"listen without a port", func(*testing.T) string { return "listen = \"localhost:\"\n" + memoryConfig },
			nil, []string{`listen: not a host:port address (got "localhost:")`}},
		{"propagate is a word", func(*testing.T) string { return memoryConfig + "[deletions]\npropagate = \"yes\"\n" },
			nil, []string{`deletions.propagate: must be true or false (got "yes")`}},
		{"log is a string", func(*testing.T) string { return "log = \"debug\"\n" + memoryConfig },
			nil, []string{`log: must be a table (got "debug")`}},
		{"connectors is one table", func(*testing.T) string { return "state = \"s.db\"\n[connectors]\nname = \"crm\"\n" },
			nil, []string{`connectors: must be a list of [[connectors]] tables (got a table)`}},
		{"fields is one table", func(t *testing.T) string {
			return replace(t, memoryConfig, `[[connectors.fields]]`, `[connectors.fields]`)
		},
			nil, []string{`connectors[0].fields: must be a list of [[connectors.fields]] tables (got a table)`}},
		{"compare is a word", func(*testing.T) string { return memoryConfig + "compare = \"no\"\n" },
			nil, []string{`connectors[0].fields[0].compare: must be true or false (got "no")`}},
		{"option is a number", func(*testing.T) string { return openCRMConfig + "[connectors.options]\ntime_zone = 1\n" },
			nil, []string{`connectors[0].options.time_zone: must be a string (got 1)`}},
		{"options is a string", func(t *testing.T) string {
			return replace(t, openCRMConfig, `type = "opencrm"`, "type = \"opencrm\"\noptions = \"UTC\"")
		}, nil, []string{`connectors[0].options: must be a table (got "UTC")`}},
		{"credential is a number", func(t *testing.T) string { return replace(t, openCRMConfig, `passkey = "p"`, `passkey = 12345`) },
			nil, []string{`connectors[0].credentials.passkey: must be a string (got a whole number)`}},
		{"timeout is not a duration", func(t *testing.T) string {
			return replace(t, memoryConfig, `type = "memory"`, "type = \"memory\"\ntimeout = \"soon\"")
		}, nil, []string{`connectors[0].timeout: not a duration like "30s" or "5m" (got "soon")`}},
		{"timeout is a number", func(t *testing.T) string {
			return replace(t, memoryConfig, `type = "memory"`, "type = \"memory\"\ntimeout = 30")
		}, nil, []string{`connectors[0].timeout: must be a duration like "30s" or "5m" (got 30)`}},
		{"wrong type among other mistakes", func(t *testing.T) string {
			s := replace(t, openCRMConfig, `, passkey = "p"`, ``)
			s = replace(t, s, `type = "opencrm"`, "type = \"opencrm\"\nrate = \"fast\"\nshoe_size = 9")
			return "schedule = \"every 5 minutes\"\n" + s
		}, nil, []string{
			`connectors[0].rate: must be a number (got "fast")`,
			`connectors[0].shoe_size: unknown key`,
			`schedule: not a cron spec or @every duration: expected exactly 5 fields, found 3: [every 5 minutes] (got "every 5 minutes")`,
			`connectors[0].credentials.passkey: missing`,
		}},

		// Unknown keys.
		{"unknown top-level key", func(*testing.T) string { return "stat = \"x\"\n" + memoryConfig },
			nil, []string{`stat: unknown key`}},
		{"unknown connector key", func(t *testing.T) string {
			return replace(t, memoryConfig, `type = "memory"`, "type = \"memory\"\ncolour = 1")
		}, nil, []string{`connectors[0].colour: unknown key`}},
		{"unknown option", func(*testing.T) string { return openCRMConfig + "[connectors.options]\nzone = \"UTC\"\n" },
			nil, []string{`connectors[0].options.zone: unknown key`}},
		{"unknown credential", func(t *testing.T) string {
			return replace(t, clientBookConfig, `secret = "s"`, `secret = "s", password = "hunter2"`)
		}, nil, []string{`connectors[0].credentials.password: unknown credential for type clientbook; expected app_id, app_key, token, secret`}},

		// Missing parts.
		{"no state", func(*testing.T) string { return withoutState(memoryConfig) },
			nil, []string{`state: missing: the path of the state database, e.g. "/var/lib/syncd/state.db"`}},
		{"no connectors", func(*testing.T) string { return "state = \"s.db\"\n" },
			nil, []string{`connectors: missing: at least one [[connectors]] table is needed`}},
		{"no field mappings", func(*testing.T) string { return "state = \"s.db\"\n[[connectors]]\nname = \"m\"\ntype = \"memory\"\n" },
			nil, []string{`connectors[0].fields: missing: a connector needs at least one [[connectors.fields]] mapping`}},
		{"no credential", func(t *testing.T) string { return replace(t, openCRMConfig, `, passkey = "p"`, ``) },
			nil, []string{`connectors[0].credentials.passkey: missing`}},
		{"no base url", func(t *testing.T) string {
			return replace(t, openCRMConfig, `base_url = "https://x.opencrm.co.uk/api/rest"`, ``)
		},
			nil, []string{`connectors[0].base_url: missing`}},

		// Connectors.
		{"duplicate connector names", func(*testing.T) string { return memoryConfig + withoutState(memoryConfig) },
			nil, []string{`connectors[1].name: duplicate connector name, also used by connectors[0] (got "crm")`}},
		{"unknown type", func(t *testing.T) string { return replace(t, memoryConfig, `"memory"`, `"salesforce"`) },
			nil, []string{`connectors[0].type: unknown connector type (got "salesforce"); one of carddav, clientapi, clientbook, co3, memory, opencrm, vcarddir`}},
		{"bad direction", func(t *testing.T) string {
			return replace(t, memoryConfig, `type = "memory"`, "type = \"memory\"\ndirection = \"sideways\"")
		}, nil, []string{`connectors[0].direction: must be both, pull or push (got "sideways")`}},
		{"push on a pull-only connector", func(t *testing.T) string {
			return replace(t, clientAPIConfig, `direction = "pull"`, `direction = "push"`)
		}, nil, []string{`connectors[0].direction: connector type clientapi is pull-only: set direction = "pull" (got "push")`}},
		{"pull-only connector left at both", func(t *testing.T) string { return replace(t, clientAPIConfig, `direction = "pull"`, ``) },
			nil, []string{`connectors[0].direction: connector type clientapi is pull-only: set direction = "pull" (got "both")`}},
		{"negative rate", func(t *testing.T) string {
			return replace(t, memoryConfig, `type = "memory"`, "type = \"memory\"\nrate = -1.0")
		}, nil, []string{`connectors[0].rate: must not be negative (got -1)`}},
		{"plain http to a remote host", func(t *testing.T) string { return replace(t, openCRMConfig, "https://x.opencrm", "http://x.opencrm") },
			nil, []string{`connectors[0].base_url: plain http is allowed only for loopback hosts; use https (got "http://x.opencrm.co.uk/api/rest")`}},
		{"bad option value", func(*testing.T) string {
			return openCRMConfig + "[connectors.options]\ntime_zone = \"Europe/Lundon\"\n"
		},
			nil, []string{`connectors[0].options.time_zone: unknown time zone (got "Europe/Lundon")`}},

		// Field mappings.
		{"mapping to an unknown field", func(t *testing.T) string {
			return replace(t, memoryConfig, `canonical = "email"`, `canonical = "e-mail"`)
		},
			nil, []string{`connectors[0].fields[0].canonical: unknown canonical field (got "e-mail"); use one of prefix, given_name, family_name, email, email2, phone, mobile, fax, company, job_title, street, city, region, postcode, country, birthday, website, notes or custom.<name>`}},
		{"unknown transform", func(*testing.T) string { return memoryConfig + "transforms = [\"shout\"]\n" },
			nil, []string{`connectors[0].fields[0].transforms[0]: unknown transform (got "shout")`}},

		// Credential references.
		{"env reference to an unset variable", func(t *testing.T) string {
			return replace(t, openCRMConfig, `passkey = "p"`, `passkey = "env:SYNCD_TEST_UNSET"`)
		}, nil, []string{`connectors[0].credentials.passkey: environment variable SYNCD_TEST_UNSET is not set (got "env:SYNCD_TEST_UNSET")`}},
		{"env reference to an empty variable", func(t *testing.T) string {
			return replace(t, openCRMConfig, `passkey = "p"`, `passkey = "env:SYNCD_TEST_EMPTY"`)
		}, nil, []string{`connectors[0].credentials.passkey: environment variable SYNCD_TEST_EMPTY is empty (got "env:SYNCD_TEST_EMPTY")`}},
		{"file reference to a missing file", func(t *testing.T) string {
			return replace(t, openCRMConfig, `passkey = "p"`, `passkey = "file:passkey.txt"`)
		}, nil, []string{`connectors[0].credentials.passkey: cannot read credential file $DIR/passkey.txt: no such file or directory (got "file:passkey.txt")`}},
		{"file reference to an empty file", func(t *testing.T) string {
			return replace(t, openCRMConfig, `passkey = "p"`, `passkey = "file:passkey.txt"`)
		}, map[string]string{"passkey.txt": "\n"}, []string{`connectors[0].credentials.passkey: credential file $DIR/passkey.txt is empty (got "file:passkey.txt")`}},

		// Other sections.
		{"bad schedule", func(*testing.T) string { return "schedule = \"every 5 minutes\"\n" + memoryConfig },
			nil, []string{`schedule: not a cron spec or @every duration: expected exactly 5 fields, found 3: [every 5 minutes] (got "every 5 minutes")`}},
		{"bad log level", func(*testing.T) string { return "[log]\nlevel = \"loud\"\n" },
			nil, []string{
				`state: missing: the path of the state database, e.g. "/var/lib/syncd/state.db"`,
				`log.level: must be debug, info, warn or error (got "loud")`,
				`connectors: missing: at least one [[connectors]] table is needed`,
			}},
		{"priority names an unknown connector", func(*testing.T) string {
			return memoryConfig + "[conflicts]\npolicy = \"priority\"\npriority = [\"nope\"]\n"
		}, nil, []string{`conflicts.priority[0]: no connector has this name (got "nope")`}},
		{"bad policy", func(*testing.T) string { return memoryConfig + "[conflicts]\npolicy = \"oldest\"\n" },
			nil, []string{`conflicts.policy: must be newest, priority or manual (got "oldest")`}},
		{"bad delete ratio", func(*testing.T) string { return memoryConfig + "[deletions]\nmax_delete_ratio = 5.0\n" },
			nil, []string{`deletions.max_delete_ratio: must be between 0 and 1 (got 5)`}},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "c.toml")
			text := tc.text(t)
			if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			for name, content := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := config.Load(path, Types())
			if err == nil {
				t.Fatalf("config accepted:\n%s", text)
			}
			got := strings.Split(strings.ReplaceAll(err.Error(), dir, "$DIR"), "\n")
			if !slices.Equal(got, tc.want) {
				t.Errorf("config:\n%s\ngot:\n  %s\nwant:\n  %s", text, strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
	if len(cases) < 20 {
		t.Errorf("only %d bad configs", len(cases))
	}
}
