package co3

import (
	"testing"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/connectors/co3/co3test"
	"github.com/syncd/syncd/internal/connectors/contract"
)

func TestContract(t *testing.T) {
	for _, f := range []Format{JSON, XML} {
		t.Run(string(f), func(t *testing.T) {
			t.Parallel()
			const pageSize = 5
			contract.Run(t, contract.Harness{
				New: func(t *testing.T) (connectors.Connector, contract.Emulator) {
					e := newEnv(t, envOptions{format: f, pageSize: pageSize})
					return e.conn, e.emu
				},
				NewBadCredentials: func(t *testing.T) (connectors.Connector, contract.Emulator) {
					e := newEnv(t, envOptions{format: f, pageSize: pageSize, password: "wrong"})
					return e.conn, e.emu
				},
				PageSize:    pageSize,
				GivenField:  "contact_firstname",
				FamilyField: "contact_lastname",
				EmailField:  "contact_email",
				ListMethod:  co3test.MethodGetContactList,
				ExpireSessions: func(emu contract.Emulator) {
					emu.(*co3test.Server).ExpireSessions()
				},
				AuthMethod: co3test.MethodAuthenticate,
			})
		})
	}
}
