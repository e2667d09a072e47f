package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type fakeOptions struct {
	TimeZone string `toml:"time_zone"`
}

func (o *fakeOptions) Validate() []error {
	if o.TimeZone == "Mars/Olympus" {
		return []error{fmt.Errorf("time_zone: unknown time zone (got %q)", o.TimeZone)}
	}
	return nil
}

func testRegistry() Registry {
	return Registry{
		"memory": {Name: "memory"},
		"crm":    {Name: "crm", NeedsBaseURL: true, Credentials: []string{"key", "passkey"}, NewOptions: func() any { return &fakeOptions{TimeZone: "UTC"} }},
		"ro":     {Name: "ro", PullOnly: true},
	}
}

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

const good = `
state = "state.db"
schedule = "@every 10m"
[conflicts]
policy = "priority"
priority = ["a", "b"]
[[connectors]]
name = "a"
type = "crm"
base_url = "https://crm.example.com/api"
credentials = { key = "env:CRM_KEY", passkey = "file:pass.txt" }
[connectors.options]
time_zone = "Europe/London"
[[connectors.fields]]
canonical = "email"
remote = "email"
transforms = ["lower"]
[[connectors]]
name = "b"
type = "memory"
[[connectors.fields]]
canonical = "custom.colour"
remote = "colour"
`

func TestParseGood(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pass.txt"), []byte("s3cr3t-pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Parse([]byte(good), filepath.Join(dir, "config.toml"), testRegistry(), env(map[string]string{"CRM_KEY": "key-123"}))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	a := c.Connector[0]
	if a.Resolved["key"] != "key-123" || a.Resolved["passkey"] != "s3cr3t-pass" {
		t.Errorf("credentials not resolved: %v", a.Resolved)
	}
	if o := a.TypeOptions.(*fakeOptions); o.TimeZone != "Europe/London" {
		t.Errorf("options not decoded: %+v", o)
	}
	if c.StatePath() != filepath.Join(dir, "state.db") {
		t.Errorf("state path = %s", c.StatePath())
	}
	if c.Connector[1].Direction != "both" || c.Deletions.MaxDeleteCount != 50 || c.Log.Format != "auto" {
		t.Errorf("defaults not applied: %+v", c)
	}
	sum := c.Summary()
	if !strings.Contains(sum, "2 connectors") || strings.Contains(sum, "s3cr3t") {
		t.Errorf("summary = %q", sum)
	}
}

// Every problem is reported at once, each with its path and the bad value.
func TestParseReportsEveryProblem(t *testing.T) {
	bad := `
state = "state.db"
schedule = "every five minutes"
colour = "blue"
[conflicts]
policy = "loudest"
[[connectors]]
name = "a"
type = "crm"
base_url = "http://crm.example.com/api"
credentials = { key = "env:MISSING_KEY", passkey = "file:/nonexistent/pass" }
[connectors.options]
time_zone = "Mars/Olympus"
shoe_size = 9
[[connectors.fields]]
canonical = "e_mail"
remote = "email"
transforms = ["shout"]
[[connectors]]
name = "a"
type = "nosuchcrm"
[[connectors.fields]]
canonical = "email"
remote = "email"
[[connectors]]
name = "c"
type = "ro"
direction = "both"
page_size = 1.5
[[connectors.fields]]
canonical = "email"
remote = "email"
`
	_, err := Parse([]byte(bad), "/etc/syncd/config.toml", testRegistry(), env(nil))
	if err == nil {
		t.Fatal("Parse accepted a broken config")
	}
	msg := err.Error()
	for _, want := range []string{
		`schedule: not a cron spec or @every duration`,
		`(got "every five minutes")`,
		`colour: unknown key`,
		`connectors[0].options.shoe_size: unknown key`,
		`conflicts.policy: must be newest, priority or manual (got "loudest")`,
		`connectors[0].base_url: plain http is allowed only for loopback hosts`,
		`connectors[0].credentials.key: environment variable MISSING_KEY is not set (got "env:MISSING_KEY")`,
		`connectors[0].credentials.passkey: cannot read credential file /nonexistent/pass`,
		`connectors[0].options.time_zone: unknown time zone (got "Mars/Olympus")`,
		`connectors[0].fields[0].canonical: unknown canonical field (got "e_mail")`,
		`connectors[0].fields[0].transforms[0]: unknown transform (got "shout")`,
		`connectors[1].name: duplicate connector name, also used by connectors[0] (got "a")`,
		`connectors[1].type: unknown connector type (got "nosuchcrm")`,
		`connectors[2].direction: connector type ro is pull-only`,
		`connectors[2].page_size: must be a whole number (got 1.5)`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing problem %q in:\n%s", want, msg)
		}
	}
}

func TestSyntaxErrorHasPosition(t *testing.T) {
	_, err := Parse([]byte("state = \"x\"\nschedule = \n"), "/tmp/c.toml", testRegistry(), env(nil))
	if err == nil || !strings.Contains(err.Error(), "/tmp/c.toml:2:") {
		t.Fatalf("err = %v, want the file and line", err)
	}
}

func TestInlineSecretNeverInMessages(t *testing.T) {
	cfg := `
state = "s.db"
[[connectors]]
name = "a"
type = "crm"
base_url = "ftp://x"
credentials = { key = "INLINE-SECRET-VALUE", passkey = "file:/nope/INLINE" , extra = "ANOTHER-SECRET" }
[[connectors.fields]]
canonical = "email"
remote = "email"
`
	_, err := Parse([]byte(cfg), "/c.toml", testRegistry(), env(nil))
	if err == nil {
		t.Fatal("want errors")
	}
	if strings.Contains(err.Error(), "INLINE-SECRET-VALUE") || strings.Contains(err.Error(), "ANOTHER-SECRET") {
		t.Fatalf("an inline secret reached an error message:\n%v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none.toml"), testRegistry())
	if err == nil || !strings.Contains(err.Error(), "none.toml") || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("err = %v", err)
	}
}

// A config path that cannot be read as a file is one error naming it.
func TestLoadUnreadableFile(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(dir, testRegistry())
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "is a directory") {
		t.Fatalf("config path is a folder: err = %v", err)
	}
}
