package mapping

import (
	"fmt"
	"strings"
)

// checkTransform reports whether t names a known transform.
func checkTransform(t string) error {
	name, _, _ := strings.Cut(t, ":")
	switch name {
	case "trim", "collapse", "lower", "upper", "phone", "date", "given_name", "family_name", "full_name":
		return nil
	}
	return fmt.Errorf("unknown transform")
}
