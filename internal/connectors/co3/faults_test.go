package co3

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/connectors/co3/co3test"
	"github.com/syncd/syncd/internal/connectors/emulator"
)

func faultBody(body string, f Format) emulator.Fault {
	ct := "application/json"
	if f == XML {
		ct = "application/xml"
	}
	return emulator.Fault{Status: 200, Body: body, ContentType: ct}
}

func faultStatus(status int) emulator.Fault { return emulator.Fault{Status: status} }

// An HTTP status that is neither a success nor one of the statuses the
// HTTP client classifies, answered without a CO3 error body (a proxy's or
// web server's page), is classified by the connector: a refusal is
// ErrRejected and not repeated, a timeout or a server error is retried.
func TestHTTPStatusWithoutErrorBody(t *testing.T) {
	cases := []struct {
		status int
		body   string
		want   error // nil: retried, then the call succeeds
	}{
		{400, "", connectors.ErrRejected},
		{404, "<html><body>404 Not Found</body></html>", connectors.ErrRejected},
		{405, "", connectors.ErrRejected},
		{409, "", connectors.ErrRejected},
		{410, "", connectors.ErrRejected},
		{413, "request entity too large", connectors.ErrRejected},
		{422, "", connectors.ErrRejected},
		{408, "", nil},
		{507, "", nil},
	}
	for _, f := range []Format{JSON, XML} {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/%d", f, tc.status), func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				e := newEnv(t, envOptions{format: f, pageSize: 5})
				id := e.emu.Seed(map[string]string{"contact_firstname": "A"})
				fault := emulator.Fault{Status: tc.status, Body: tc.body, ContentType: "text/html"}
				calls := map[string]func() error{
					co3test.MethodGetContact: func() error { _, err := e.conn.Get(ctx, id); return err },
					co3test.MethodGetContactList: func() error {
						return e.conn.Pull(ctx, connectors.PullOptions{Full: true}, func(context.Context, connectors.Page) error { return nil })
					},
					co3test.MethodSetContact: func() error {
						return e.conn.Update(ctx, id, map[string]string{"contact_lastname": "B"})
					},
				}
				for method, call := range calls {
					before := e.emu.Calls(method)
					e.emu.FailNext(method, 1, fault)
					err := call()
					n := e.emu.Calls(method) - before
					if tc.want == nil {
						if err != nil || n != 2 {
							t.Errorf("%s after HTTP %d: err = %v after %d calls, want success after 2", method, tc.status, err, n)
						}
						continue
					}
					if !errors.Is(err, tc.want) {
						t.Errorf("%s answered HTTP %d: err = %v (class %q), want %v", method, tc.status, err, connectors.Classify(err), tc.want)
						continue
					}
					if !strings.Contains(err.Error(), fmt.Sprintf("co3: %s: ", method)) || !strings.Contains(err.Error(), fmt.Sprintf("HTTP %d", tc.status)) {
						t.Errorf("error %q does not name the method and the status", err)
					}
					if n != 1 {
						t.Errorf("%s answered HTTP %d was sent %d times, want 1 (not retried)", method, tc.status, n)
					}
				}
			})
		}
	}
}
