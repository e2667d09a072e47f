// Package crmsim serves the emulators of every supported CRM on loopback
// ports, seeded with generated sample people, and writes a syncd config
// that points at them. The crmsim command, the demo, the end-to-end tests
// and the benchmarks use it.
//
// Seeding: of People people, OpenCRM holds the first 60 % and CO3 the last
// 60 %, so a fifth of them are in both, written differently (e-mail case,
// phone format) as two CRMs typed by different people would. Client Book
// holds every tenth person of the whole range, and the hosting client area
// holds one account whose owner is also in OpenCRM.
package crmsim

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"text/template"
	"time"

	"github.com/syncd/syncd/internal/connectors/clientapi/clientapitest"
	"github.com/syncd/syncd/internal/connectors/clientbook/clientbooktest"
	"github.com/syncd/syncd/internal/connectors/co3/co3test"
	"github.com/syncd/syncd/internal/connectors/emulator"
	"github.com/syncd/syncd/internal/connectors/opencrm/opencrmtest"
	"github.com/syncd/syncd/internal/sample"
)

// Credentials the emulators accept. They are sample values for loopback
// emulators, not secrets of any real account.
type Credentials struct {
	OpenCRMKey, OpenCRMPasskey           string
	CO3APIKey, CO3Username, CO3Password  string
	CBAppID, CBAppKey, CBToken, CBSecret string
	ClientAPIKey                         string
}

// DefaultCredentials are the demo's.
var DefaultCredentials = Credentials{
	OpenCRMKey: "demo-opencrm-key", OpenCRMPasskey: "demo-opencrm-passkey",
	CO3APIKey: "demo-co3-api-key", CO3Username: "demo@example.com", CO3Password: "demo-co3-password",
	CBAppID: "demo-cb-app", CBAppKey: "demo-cb-app-key", CBToken: "demo-cb-token", CBSecret: "demo-cb-secret",
	ClientAPIKey: "demo-clientapi-key",
}

// Options of a simulator.
type Options struct {
	// People is the number of sample people (default 200).
	People int
	// Seed makes the sample reproducible.
	Seed uint64
	// Host to listen on (default 127.0.0.1); ports are chosen freely
	// unless Ports gives them (opencrm, co3, clientbook, clientapi).
	Host  string
	Ports [4]int
	// Credentials (default DefaultCredentials).
	Credentials *Credentials
	// Only lists the CRMs to serve ("opencrm", "co3", "clientbook",
	// "clientapi"); empty serves all.
	Only []string
	// Split overrides the seeding: OpenCRM gets people [0, OpenCRMTo),
	// CO3 [CO3From, People). Zero values mean the 60 %/60 % default.
	OpenCRMTo, CO3From int
	// Clock shared by the emulators (a real-time clock when nil).
	Clock *emulator.Clock
}

// Sim is a running simulator.
type Sim struct {
	OpenCRM    *opencrmtest.Server
	CO3        *co3test.Server
	ClientBook *clientbooktest.Server
	ClientAPI  *clientapitest.Server
	// URLs are the base URLs to put in a config, by CRM type.
	URLs  map[string]string
	Creds Credentials
	// People is the generated sample.
	People []sample.Person
	// Clock is shared by every emulator.
	Clock *emulator.Clock

	servers []*http.Server
}

// Start serves the emulators and seeds them.
func Start(o Options) (*Sim, error) {
	if o.People <= 0 {
		o.People = 200
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	creds := DefaultCredentials
	if o.Credentials != nil {
		creds = *o.Credentials
	}
	if o.Clock == nil {
		o.Clock = &emulator.Clock{}
	}
	want := func(name string) bool {
		if len(o.Only) == 0 {
			return true
		}
		for _, n := range o.Only {
			if n == name {
				return true
			}
		}
		return false
	}
	s := &Sim{URLs: map[string]string{}, Creds: creds, People: sample.People(o.Seed, o.People), Clock: o.Clock}
	type serve struct {
		name    string
		port    int
		handler http.Handler
		path    string
	}
	var list []serve
	if want("opencrm") {
		s.OpenCRM = opencrmtest.New(opencrmtest.Config{Key: creds.OpenCRMKey, Passkey: creds.OpenCRMPasskey, Clock: o.Clock})
		list = append(list, serve{"opencrm", o.Ports[0], s.OpenCRM, "/api/rest"})
	}
	if want("co3") {
		s.CO3 = co3test.New(co3test.Config{APIKey: creds.CO3APIKey, Username: creds.CO3Username, Password: creds.CO3Password, Clock: o.Clock})
		list = append(list, serve{"co3", o.Ports[1], s.CO3, "/api"})
	}
	if want("clientbook") {
		s.ClientBook = clientbooktest.New(clientbooktest.Config{AppID: creds.CBAppID, AppKey: creds.CBAppKey, Token: creds.CBToken, Secret: creds.CBSecret, Clock: o.Clock})
		list = append(list, serve{"clientbook", o.Ports[2], s.ClientBook, ""})
	}
	if want("clientapi") {
		s.ClientAPI = clientapitest.New(clientapitest.Config{APIKey: creds.ClientAPIKey, Clock: o.Clock})
		list = append(list, serve{"clientapi", o.Ports[3], s.ClientAPI, "/index.php"})
	}
	for _, sv := range list {
		ln, err := net.Listen("tcp", net.JoinHostPort(o.Host, fmt.Sprint(sv.port)))
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("crmsim: %s: %w", sv.name, err)
		}
		srv := &http.Server{Handler: sv.handler, ReadHeaderTimeout: 10 * time.Second}
		s.servers = append(s.servers, srv)
		go func() { _ = srv.Serve(ln) }()
		s.URLs[sv.name] = "http://" + ln.Addr().String() + sv.path
	}
	s.seed(o)
	return s, nil
}

// Close stops every emulator.
func (s *Sim) Close() error {
	var errs []error
	for _, srv := range s.servers {
		errs = append(errs, srv.Close())
	}
	return errors.Join(errs...)
}

func (s *Sim) seed(o Options) {
	n := len(s.People)
	openTo, co3From := o.OpenCRMTo, o.CO3From
	if openTo == 0 && co3From == 0 {
		openTo, co3From = n*6/10, n*4/10
	}
	for i, p := range s.People {
		if s.OpenCRM != nil && i < openTo {
			s.OpenCRM.Seed(OpenCRMFields(p))
		}
		if s.CO3 != nil && i >= co3From {
			s.CO3.Seed(CO3Fields(p))
		}
		if s.ClientBook != nil && i%10 == 0 {
			s.ClientBook.Seed(ClientBookFields(p))
		}
	}
	if s.ClientAPI != nil && n > 0 {
		s.ClientAPI.Seed(ClientAPIFields(s.People[0]))
	}
	// A CRM's existing contacts were last changed some time ago, not
	// the moment syncd first looks at them.
	if s.OpenCRM != nil {
		s.OpenCRM.Table.Backdate(seedAge)
	}
	if s.CO3 != nil {
		s.CO3.Table().Backdate(seedAge)
	}
	if s.ClientBook != nil {
		s.ClientBook.Table().Backdate(seedAge)
	}
}

// seedAge is how long before the start the sample contacts were last
// modified.
const seedAge = 30 * 24 * time.Hour

// OpenCRMFields writes p as OpenCRM holds it: national phone format,
// day-month-year birthday.
func OpenCRMFields(p sample.Person) map[string]string {
	b := p.Birthday
	return map[string]string{
		"firstname": p.Given, "lastname": p.Family, "email": p.Email,
		"phone": p.PhoneNational(), "title": p.JobTitle, "mailingcity": p.City,
		"mailingzip": p.Postcode, "birthday": b[8:10] + "-" + b[5:7] + "-" + b[0:4],
	}
}

// CO3Fields writes p as CO3 holds it: capitalised e-mail, spaced
// international phone.
func CO3Fields(p sample.Person) map[string]string {
	return map[string]string{
		"contact_type": "0", "contact_firstname": p.Given, "contact_lastname": p.Family,
		"contact_email": p.EmailVariant(), "contact_phone": p.PhoneSpaced(),
		"contact_firm": p.Company, "contact_job": p.JobTitle, "contact_birthday": p.Birthday,
	}
}

// ClientBookFields writes p as Client Book holds it.
func ClientBookFields(p sample.Person) map[string]string {
	return map[string]string{
		"client_first_name": p.Given, "client_last_name": p.Family, "client_email": p.Email,
		"client_work_phone": p.Phone, "client_city": p.City, "client_zip": p.Postcode,
	}
}

// ClientAPIFields writes p as the hosting client area holds it.
func ClientAPIFields(p sample.Person) map[string]string {
	return map[string]string{
		"firstname": p.Given, "lastname": p.Family, "companyname": p.Company, "email": p.Email,
		"phonenumber": p.PhoneSpaced(), "city": p.City, "postcode": p.Postcode, "country": "GB",
	}
}

//go:embed demo.toml.tmpl
var configTemplate string

// ConfigOptions adjust the generated config.
type ConfigOptions struct {
	State     string
	LogLevel  string // default "info"
	LogFormat string // default "auto"
	// Rate and Burst for every connector (default 1000/100: the emulators
	// need no protection).
	Rate  float64
	Burst int
	// CO3Format is "json" (default) or "xml".
	CO3Format       string
	OpenCRMPageSize int
}

// Config returns a syncd config (TOML) for the running emulators.
func (s *Sim) Config(o ConfigOptions) (string, error) {
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	if o.LogFormat == "" {
		o.LogFormat = "auto"
	}
	if o.Rate == 0 {
		o.Rate, o.Burst = 1000, 100
	}
	if o.Burst == 0 {
		o.Burst = 1
	}
	if o.CO3Format == "" {
		o.CO3Format = "json"
	}
	if o.OpenCRMPageSize == 0 {
		o.OpenCRMPageSize = 500
	}
	data := map[string]any{
		"State": o.State, "LogLevel": o.LogLevel, "LogFormat": o.LogFormat,
		"Rate": o.Rate, "Burst": o.Burst, "CO3Format": o.CO3Format, "OpenCRMPageSize": o.OpenCRMPageSize,
		"Creds": s.Creds, "OpenCRM": s.URLs["opencrm"], "CO3": s.URLs["co3"],
		"ClientBook": s.URLs["clientbook"], "ClientAPI": s.URLs["clientapi"],
	}
	var buf bytes.Buffer
	t, err := template.New("config").Parse(configTemplate)
	if err == nil {
		err = t.Execute(&buf, data)
	}
	if err != nil {
		return "", fmt.Errorf("crmsim: config template: %w", err)
	}
	return buf.String(), nil
}

// EmailFields names each CRM's e-mail field.
var EmailFields = map[string]string{"opencrm": "email", "co3": "contact_email", "clientbook": "client_email"}

// Tables returns the contact tables of the served CRMs (not the single
// account of the client area), by CRM type.
func (s *Sim) Tables() map[string]*emulator.Table {
	t := map[string]*emulator.Table{}
	if s.OpenCRM != nil {
		t["opencrm"] = s.OpenCRM.Table
	}
	if s.CO3 != nil {
		t["co3"] = s.CO3.Table()
	}
	if s.ClientBook != nil {
		t["clientbook"] = s.ClientBook.Table()
	}
	return t
}

// FindByEmail returns the id of the first live contact of crm whose e-mail
// equals email ignoring case and surrounding space, or "".
func (s *Sim) FindByEmail(crm, email string) string {
	t := s.Tables()[crm]
	if t == nil {
		return ""
	}
	field := EmailFields[crm]
	want := strings.ToLower(strings.TrimSpace(email))
	for _, c := range t.List(func(c *emulator.Contact) bool {
		return strings.ToLower(strings.TrimSpace(c.Fields[field])) == want
	}) {
		return emulator.FormatID(c.ID)
	}
	return ""
}
