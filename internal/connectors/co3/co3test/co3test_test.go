package co3test

import (
	"crypto/md5"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/connectors/contract"
	"github.com/syncd/syncd/internal/connectors/emulator"
)

var _ contract.Emulator = (*Server)(nil)

func post(t *testing.T, url, body string) string {
	t.Helper()
	ct := "application/json"
	if strings.HasPrefix(body, "<") {
		ct = "application/xml"
	}
	resp, err := http.Post(url, ct, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestServerSpeaksBothFormats(t *testing.T) {
	clock := &emulator.Clock{}
	clock.Set(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	s := New(Config{APIKey: "key", Username: "u", Password: "pw", PageSize: 2, Clock: clock})
	srv := httptest.NewServer(s)
	defer srv.Close()
	for _, name := range []string{"Zoë Šimůnek", "Łódź <&>", "Ola"} {
		s.Seed(map[string]string{"contact_lastname": name})
	}
	sum := md5.Sum([]byte("pw"))
	digest := hex.EncodeToString(sum[:])

	if got := post(t, srv.URL+"/api/authenticate", `{"command":{"authenticate":{"api_key":"key","username":"u","password":"pw"}}}`); !strings.Contains(got, `"code":"invalid_api_key"`) || !strings.Contains(got, "username or password") {
		t.Errorf("clear password accepted: %s", got)
	}
	rep := post(t, srv.URL+"/api/authenticate", `<command><authenticate><api_key>key</api_key><username>u</username><password><![CDATA[`+digest+`]]></password></authenticate></command>`)
	m := regexp.MustCompile(`<session_key><!\[CDATA\[([0-9a-f]+)\]\]></session_key>`).FindStringSubmatch(rep)
	if m == nil {
		t.Fatalf("XML authenticate reply: %s", rep)
	}
	key := m[1]

	rep = post(t, srv.URL+"/api/crm", `<command><getContactList><api_key>key</api_key><session_key>`+key+`</session_key><search_term></search_term><page>1</page></getContactList></command>`)
	for _, want := range []string{"<response>", "<page>1</page>", "<pages>2</pages>", "<contact_lastname><![CDATA[Ola]]></contact_lastname>"} {
		if !strings.Contains(rep, want) {
			t.Errorf("XML page lacks %s: %s", want, rep)
		}
	}
	rep = post(t, srv.URL+"/api/crm", `{"command":{"getContactList":{"api_key":"key","session_key":"`+key+`","search_term":"łÓdŹ","page":0}}}`)
	if !strings.Contains(rep, `"pages":1`) || !strings.Contains(rep, `"contact_lastname":"Łódź <&>"`) || strings.Contains(rep, "Ola") {
		t.Errorf("search reply: %s", rep)
	}
	clock.Advance(5 * time.Minute)
	rep = post(t, srv.URL+"/api/crm", `{"command":{"getContacts":{"api_key":"key","session_key":"`+key+`"}}}`)
	if !strings.Contains(rep, `"code":"session_expired"`) {
		t.Errorf("five-minute-old session accepted: %s", rep)
	}
	if s.Calls(MethodGetContactList) != 2 || s.Calls(MethodAuthenticate) != 2 {
		t.Errorf("calls = %v", s.CallCounts())
	}
}

// Sessions expired from a test while the client calls are answered
// session_expired without a data race (run with -race).
func TestExpireSessionsWhileCalling(t *testing.T) {
	s := New(Config{APIKey: "key", Username: "u", Password: "pw"})
	srv := httptest.NewServer(s)
	defer srv.Close()
	sum := md5.Sum([]byte("pw"))
	auth := `{"command":{"authenticate":{"api_key":"key","username":"u","password":"` + hex.EncodeToString(sum[:]) + `"}}}`
	m := regexp.MustCompile(`"session_key":"([0-9a-f]+)"`).FindStringSubmatch(post(t, srv.URL+"/api/authenticate", auth))
	if m == nil {
		t.Fatal("no session key")
	}
	call := `{"command":{"getContactList":{"api_key":"key","session_key":"` + m[1] + `","page":0}}}`
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				s.ExpireSessions()
			}
		}
	}()
	for range 300 {
		post(t, srv.URL+"/api/crm", call)
	}
	close(stop)
	<-done
	if rep := post(t, srv.URL+"/api/crm", call); !strings.Contains(rep, `"code":"session_expired"`) {
		t.Errorf("expired session accepted: %s", rep)
	}
}
