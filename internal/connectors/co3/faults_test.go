package co3

import "github.com/syncd/syncd/internal/connectors/emulator"

func faultBody(body string, f Format) emulator.Fault {
	ct := "application/json"
	if f == XML {
		ct = "application/xml"
	}
	return emulator.Fault{Status: 200, Body: body, ContentType: ct}
}

func faultStatus(status int) emulator.Fault { return emulator.Fault{Status: status} }
