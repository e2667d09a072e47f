// Package config loads and validates syncd's TOML config file.
//
// Validation reports every problem at once, each as
// "path.to.key: what is wrong (got "value")". Credentials are given inline
// or by reference ("env:NAME", "file:/path"); references are resolved at
// load time and the resolved values never appear in a message.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/robfig/cron/v3"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/mapping"
)

// Config is a loaded config file.
type Config struct {
	// State is the path of the SQLite state database.
	State string `toml:"state"`
	// Schedule is a cron spec ("*/5 * * * *") or "@every 5m".
	Schedule string `toml:"schedule"`
	// Listen is the address of the metrics and health endpoint; empty
	// turns it off. A bare port (":9477") means loopback.
	Listen string `toml:"listen"`
	// HealthMaxAge is how old the last successful run may be before
	// /healthz reports unhealthy (default three times the schedule, or 1h).
	HealthMaxAge Duration `toml:"health_max_age"`

	Log       Log         `toml:"log"`
	Conflicts Conflicts   `toml:"conflicts"`
	Deletions Deletions   `toml:"deletions"`
	Identity  Identity    `toml:"identity"`
	Connector []Connector `toml:"connectors"`

	// Path is the file the config was loaded from; Dir its folder.
	Path string `toml:"-"`
	Dir  string `toml:"-"`
}

// Log configures logging.
type Log struct {
	// Level: debug, info, warn, error.
	Level string `toml:"level"`
	// Format: auto (tint on a terminal, JSON otherwise), text, json.
	Format string `toml:"format"`
}

// Conflicts configures the conflict policy.
type Conflicts struct {
	// Policy: newest, priority or manual.
	Policy string `toml:"policy"`
	// Priority lists connector names, highest first (policy "priority").
	Priority []string `toml:"priority"`
}

// Deletions configures deletion handling.
type Deletions struct {
	// Propagate deletions to the other connectors (default false).
	Propagate bool `toml:"propagate"`
	// MaxDeleteRatio is the largest share of a connector's linked records
	// one run may delete (0–1, default 0.05).
	MaxDeleteRatio float64 `toml:"max_delete_ratio"`
	// MaxDeleteCount is the largest number of contacts one run may
	// delete for any one connector (default 50).
	MaxDeleteCount int `toml:"max_delete_count"`
}

// Identity configures how unlinked records are matched to entities.
type Identity struct {
	// Keys are canonical fields tried in order after email and phone.
	Keys []string `toml:"keys"`
	// DefaultRegion is the ISO 3166 region for phone numbers without a
	// country code (default "GB").
	DefaultRegion string `toml:"default_region"`
}

// Connector is one configured CRM account.
type Connector struct {
	Name      string  `toml:"name"`
	Type      string  `toml:"type"`
	BaseURL   string  `toml:"base_url"`
	Direction string  `toml:"direction"`
	Rate      float64 `toml:"rate"`
	Burst     int     `toml:"burst"`
	PageSize  int     `toml:"page_size"`
	// MaxInFlight is how many write requests may be in flight at once
	// (default DefaultMaxInFlight; 1 sends one at a time). The rate
	// limiter spaces them either way.
	MaxInFlight int `toml:"max_in_flight"`
	// Timeout per HTTP request (default 60s).
	Timeout Duration `toml:"timeout"`
	// Credentials by key: inline values, "env:NAME" or "file:/path".
	Credentials map[string]string `toml:"credentials" config:"secret"`
	// Exclude lists CRM fields left out of change detection, in addition
	// to the type's defaults.
	Exclude []string `toml:"exclude"`
	// CreateDefaults are CRM field values sent on every create.
	CreateDefaults map[string]string `toml:"create_defaults"`
	// Options is the type-specific table, decoded into the type's struct.
	Options toml.Primitive `toml:"options"`
	// Fields is the field mapping table.
	Fields []mapping.Field `toml:"fields"`

	// Resolved holds the credential values after references were read.
	Resolved map[string]string `toml:"-"`
	// TypeOptions is the decoded options struct.
	TypeOptions any `toml:"-"`
	// Kind is the registry entry of Type.
	Kind connectors.Type `toml:"-"`
}

// Duration is a time.Duration written as "5m" in TOML.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("not a duration like \"30s\" or \"5m\" (got %q)", string(b))
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Registry maps connector type names to their entries.
type Registry map[string]connectors.Type

// Load reads, decodes and validates the config at path, resolving
// credential references. The returned error lists every problem, joined.
func Load(path string, reg Registry) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	abs, _ := filepath.Abs(path)
	return Parse(b, abs, reg, os.LookupEnv)
}

// Parse decodes and validates config text; path names its file (for
// relative paths and messages). lookupEnv resolves "env:" references.
//
// Text that is not TOML is one error, "file:line:col: message". Otherwise
// every key is decoded on its own, so a value of the wrong type is one
// problem among the others rather than the end of the check.
func Parse(text []byte, path string, reg Registry, lookupEnv func(string) (string, bool)) (*Config, error) {
	var doc map[string]toml.Primitive
	md, err := toml.Decode(string(text), &doc)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s:%d:%d: %s", path, pe.Position.Line, pe.Position.Col, pe.Message)
		}
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	c := Config{Path: path, Dir: filepath.Dir(path)}
	v := &validator{}
	d := newDecoder(md, v)
	d.fields(doc, reflect.ValueOf(&c).Elem(), loc{})
	// Options tables decode into each type's struct; a type without
	// options takes no keys there. An unknown type's options are left
	// alone: its type is the problem.
	for i := range c.Connector {
		cc := &c.Connector[i]
		kind, ok := reg[cc.Type]
		if !ok {
			continue
		}
		cc.Kind = kind
		at := loc{path: fmt.Sprintf("connectors[%d]", i), key: toml.Key{"connectors"}}.child("options")
		if kind.NewOptions == nil {
			d.table(cc.Options, reflect.ValueOf(&struct{}{}).Elem(), at)
			continue
		}
		cc.TypeOptions = kind.NewOptions()
		d.decode(cc.Options, reflect.ValueOf(cc.TypeOptions), at)
	}
	c.applyDefaults()
	c.validate(v, reg, lookupEnv)
	if len(v.errs) > 0 {
		return &c, errors.Join(v.errs...)
	}
	return &c, nil
}

func (c *Config) applyDefaults() {
	if c.Schedule == "" {
		c.Schedule = "@every 5m"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "auto"
	}
	if c.Conflicts.Policy == "" {
		c.Conflicts.Policy = "newest"
	}
	if c.Deletions.MaxDeleteRatio == 0 {
		c.Deletions.MaxDeleteRatio = 0.05
	}
	if c.Deletions.MaxDeleteCount == 0 {
		c.Deletions.MaxDeleteCount = 50
	}
	if c.Identity.DefaultRegion == "" {
		c.Identity.DefaultRegion = "GB"
	}
	for i := range c.Connector {
		cc := &c.Connector[i]
		if cc.Direction == "" {
			cc.Direction = string(connectors.Both)
		}
	}
}

// validator collects problems.
type validator struct {
	errs []error
	// badPaths hold values that could not be decoded; checks of them or
	// of anything under them would only repeat the problem.
	badPaths []string
}

func (v *validator) add(path, format string, args ...any) {
	for _, b := range v.badPaths {
		if path == b || strings.HasPrefix(path, b+".") || strings.HasPrefix(path, b+"[") {
			return
		}
	}
	v.errs = append(v.errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

// bad reports a value that could not be decoded.
func (v *validator) bad(path, format string, args ...any) {
	v.add(path, format, args...)
	v.badPaths = append(v.badPaths, path)
}

// DefaultMaxInFlight is a connector's default max_in_flight: enough
// writes at once to hide a CRM's round trip, few enough to stay polite.
const DefaultMaxInFlight = 4

// CronParser parses schedules: standard five fields plus descriptors such
// as "@every 5m" and "@hourly".
var CronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

func (c *Config) validate(v *validator, reg Registry, lookupEnv func(string) (string, bool)) {
	if c.State == "" {
		v.add("state", "missing: the path of the state database, e.g. \"/var/lib/syncd/state.db\"")
	}
	if _, err := CronParser.Parse(c.Schedule); err != nil {
		v.add("schedule", "not a cron spec or @every duration: %v (got %q)", err, c.Schedule)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		v.add("log.level", "must be debug, info, warn or error (got %q)", c.Log.Level)
	}
	if !slices.Contains([]string{"auto", "text", "json"}, c.Log.Format) {
		v.add("log.format", "must be auto, text or json (got %q)", c.Log.Format)
	}
	names := map[string]int{}
	for i, cc := range c.Connector {
		if cc.Name != "" {
			if j, dup := names[cc.Name]; dup {
				v.add(fmt.Sprintf("connectors[%d].name", i), "duplicate connector name, also used by connectors[%d] (got %q)", j, cc.Name)
			} else {
				names[cc.Name] = i
			}
		}
	}
	switch c.Conflicts.Policy {
	case "newest", "manual":
	case "priority":
		if len(c.Conflicts.Priority) == 0 {
			v.add("conflicts.priority", "missing: policy \"priority\" needs the ordered list of connector names")
		}
	default:
		v.add("conflicts.policy", "must be newest, priority or manual (got %q)", c.Conflicts.Policy)
	}
	for i, n := range c.Conflicts.Priority {
		if _, ok := names[n]; !ok {
			v.add(fmt.Sprintf("conflicts.priority[%d]", i), "no connector has this name (got %q)", n)
		}
	}
	if c.Deletions.MaxDeleteRatio < 0 || c.Deletions.MaxDeleteRatio > 1 {
		v.add("deletions.max_delete_ratio", "must be between 0 and 1 (got %v)", c.Deletions.MaxDeleteRatio)
	}
	if c.Deletions.MaxDeleteCount < 0 {
		v.add("deletions.max_delete_count", "must not be negative (got %d)", c.Deletions.MaxDeleteCount)
	}
	for i, k := range c.Identity.Keys {
		if !mapping.IsCanonical(k) {
			v.add(fmt.Sprintf("identity.keys[%d]", i), "unknown canonical field (got %q)", k)
		}
	}
	if len(c.Identity.DefaultRegion) != 2 || strings.ToUpper(c.Identity.DefaultRegion) != c.Identity.DefaultRegion {
		v.add("identity.default_region", "must be a two-letter upper-case region code like \"GB\" (got %q)", c.Identity.DefaultRegion)
	}
	if c.Listen != "" {
		if _, port, err := net.SplitHostPort(c.Listen); err != nil || port == "" {
			v.add("listen", "not a host:port address (got %q)", c.Listen)
		}
	}
	if len(c.Connector) == 0 {
		v.add("connectors", "missing: at least one [[connectors]] table is needed")
	}
	for i := range c.Connector {
		c.validateConnector(v, i, reg, lookupEnv)
	}
}

func (c *Config) validateConnector(v *validator, i int, reg Registry, lookupEnv func(string) (string, bool)) {
	cc := &c.Connector[i]
	p := fmt.Sprintf("connectors[%d]", i)
	if cc.Name == "" {
		v.add(p+".name", "missing")
	} else if strings.ContainsAny(cc.Name, " \t/\\\"'") {
		v.add(p+".name", "must not contain spaces, quotes or slashes (got %q)", cc.Name)
	}
	kind, ok := reg[cc.Type]
	if cc.Type == "" {
		v.add(p+".type", "missing; one of %s", strings.Join(typeNames(reg), ", "))
	} else if !ok {
		v.add(p+".type", "unknown connector type (got %q); one of %s", cc.Type, strings.Join(typeNames(reg), ", "))
	}
	switch connectors.Direction(cc.Direction) {
	case connectors.Both, connectors.Pull, connectors.Push:
		if ok && kind.PullOnly && cc.Direction != string(connectors.Pull) {
			v.add(p+".direction", "connector type %s is pull-only: set direction = \"pull\" (got %q)", kind.Name, cc.Direction)
		}
	default:
		v.add(p+".direction", "must be both, pull or push (got %q)", cc.Direction)
	}
	if cc.Rate < 0 {
		v.add(p+".rate", "must not be negative (got %v)", cc.Rate)
	}
	if cc.Burst < 0 {
		v.add(p+".burst", "must not be negative (got %d)", cc.Burst)
	}
	if cc.MaxInFlight < 0 || cc.MaxInFlight > 64 {
		v.add(p+".max_in_flight", "must be between 1 and 64 (got %d)", cc.MaxInFlight)
	}
	if cc.PageSize < 0 || cc.PageSize > 50000 {
		v.add(p+".page_size", "must be between 1 and 50000 (got %d)", cc.PageSize)
	}
	if ok {
		if cc.Rate == 0 {
			cc.Rate = kind.DefaultRate
		}
		if cc.Burst == 0 {
			cc.Burst = max(kind.DefaultBurst, 1)
		}
		if kind.NeedsBaseURL {
			if cc.BaseURL == "" {
				v.add(p+".base_url", "missing")
			} else if err := connectors.CheckBaseURL(cc.BaseURL); err != nil {
				v.add(p+".base_url", "%v (got %q)", err, cc.BaseURL)
			}
		}
		for _, k := range kind.Credentials {
			if _, has := cc.Credentials[k]; !has {
				v.add(p+".credentials."+k, "missing")
			}
		}
		for k := range cc.Credentials {
			if !slices.Contains(kind.Credentials, k) && !slices.Contains(kind.OptionalCredentials, k) {
				v.add(p+".credentials."+k, "unknown credential for type %s; expected %s", kind.Name, strings.Join(append(slices.Clone(kind.Credentials), kind.OptionalCredentials...), ", "))
			}
		}
		if vo, isV := cc.TypeOptions.(connectors.OptionsValidator); isV {
			for _, err := range vo.Validate() {
				v.add(p+".options."+firstWord(err.Error()), "%s", afterFirst(err.Error()))
			}
		}
	}
	cc.Resolved = map[string]string{}
	for _, k := range slices.Sorted(mapKeys(cc.Credentials)) {
		val, err := ResolveSecret(cc.Credentials[k], c.Dir, lookupEnv)
		if err != nil {
			v.add(p+".credentials."+k, "%v", err)
			continue
		}
		cc.Resolved[k] = val
	}
	seen := map[string]int{}
	for j, f := range cc.Fields {
		fp := fmt.Sprintf("%s.fields[%d]", p, j)
		for _, err := range f.Validate() {
			v.add(fp+"."+firstWord(err.Error()), "%s", afterFirst(err.Error()))
		}
		key := f.Canonical + "\x00" + f.Remote
		if k, dup := seen[key]; dup {
			v.add(fp, "maps %s ⇄ %s again (also fields[%d])", f.Canonical, f.Remote, k)
		}
		seen[key] = j
	}
	if len(cc.Fields) == 0 {
		v.add(p+".fields", "missing: a connector needs at least one [[connectors.fields]] mapping")
	}
}

// ResolveSecret reads a credential: "env:NAME", "file:/path" (relative to
// dir; the file's content with surrounding whitespace trimmed) or an
// inline value. Errors quote the reference, never a value.
func ResolveSecret(ref, dir string, lookupEnv func(string) (string, bool)) (string, error) {
	switch {
	case strings.HasPrefix(ref, "env:"):
		name := strings.TrimPrefix(ref, "env:")
		if name == "" {
			return "", fmt.Errorf("empty variable name (got %q)", ref)
		}
		val, ok := lookupEnv(name)
		if !ok {
			return "", fmt.Errorf("environment variable %s is not set (got %q)", name, ref)
		}
		if val == "" {
			return "", fmt.Errorf("environment variable %s is empty (got %q)", name, ref)
		}
		return val, nil
	case strings.HasPrefix(ref, "file:"):
		path := strings.TrimPrefix(ref, "file:")
		if path == "" {
			return "", fmt.Errorf("empty file path (got %q)", ref)
		}
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return "", fmt.Errorf("cannot read credential file %s: %v (got %q)", path, err, ref)
		}
		val := strings.TrimSpace(string(b))
		if val == "" {
			return "", fmt.Errorf("credential file %s is empty (got %q)", path, ref)
		}
		return val, nil
	case ref == "":
		return "", fmt.Errorf("empty value")
	}
	return ref, nil
}

// Secrets returns every resolved credential value, for the redactor.
func (c *Config) Secrets() []string {
	var out []string
	for _, cc := range c.Connector {
		for _, v := range cc.Resolved {
			out = append(out, v)
		}
	}
	return out
}

// ConnectorByName returns the named connector config.
func (c *Config) ConnectorByName(name string) (*Connector, bool) {
	for i := range c.Connector {
		if c.Connector[i].Name == name {
			return &c.Connector[i], true
		}
	}
	return nil, false
}

// Summary is the one-line description check-config prints.
func (c *Config) Summary() string {
	var parts []string
	for _, cc := range c.Connector {
		parts = append(parts, fmt.Sprintf("%s (%s, %s, %d fields)", cc.Name, cc.Type, cc.Direction, len(cc.Fields)))
	}
	return fmt.Sprintf("config ok: %d connectors: %s; schedule %q; conflicts %s; state %s",
		len(c.Connector), strings.Join(parts, ", "), c.Schedule, c.Conflicts.Policy, c.StatePath())
}

// StatePath returns the state database path, relative paths resolved
// against the config's folder.
func (c *Config) StatePath() string {
	if c.State == "" || filepath.IsAbs(c.State) {
		return c.State
	}
	return filepath.Join(c.Dir, c.State)
}

func typeNames(reg Registry) []string {
	return slices.Sorted(mapKeys(reg))
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// firstWord and afterFirst split "key: message" as written by validators.
func firstWord(s string) string {
	k, _, _ := strings.Cut(s, ": ")
	return k
}

func afterFirst(s string) string {
	_, rest, ok := strings.Cut(s, ": ")
	if !ok {
		return s
	}
	return rest
}
