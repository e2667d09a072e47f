package opencrmtest

import (
	"strconv"
	"strings"
	"time"
)

// formatPHP formats t like PHP's date(): the format letters OpenCRM's
// dateTimeOverride/dateOverride segments pass through. Unknown letters are
// copied; a backslash escapes the next character.
func formatPHP(t time.Time, f string) string {
	var b strings.Builder
	pad2 := func(n int) { b.WriteString(pad(n, 2)) }
	for i := 0; i < len(f); i++ {
		switch ch := f[i]; ch {
		case '\\':
			if i+1 < len(f) {
				i++
				b.WriteByte(f[i])
			}
		case 'd':
			pad2(t.Day())
		case 'j':
			b.WriteString(strconv.Itoa(t.Day()))
		case 'D':
			b.WriteString(t.Format("Mon"))
		case 'l':
			b.WriteString(t.Format("Monday"))
		case 'N':
			wd := int(t.Weekday())
			if wd == 0 {
				wd = 7
			}
			b.WriteString(strconv.Itoa(wd))
		case 'w':
			b.WriteString(strconv.Itoa(int(t.Weekday())))
		case 'z':
			b.WriteString(strconv.Itoa(t.YearDay() - 1))
		case 'F':
			b.WriteString(t.Format("January"))
		case 'M':
			b.WriteString(t.Format("Jan"))
		case 'm':
			pad2(int(t.Month()))
		case 'n':
			b.WriteString(strconv.Itoa(int(t.Month())))
		case 'Y':
			b.WriteString(pad(t.Year(), 4))
		case 'y':
			pad2(t.Year() % 100)
		case 'a':
			b.WriteString(strings.ToLower(t.Format("PM")))
		case 'A':
			b.WriteString(t.Format("PM"))
		case 'g':
			b.WriteString(t.Format("3"))
		case 'h':
			b.WriteString(t.Format("03"))
		case 'G':
			b.WriteString(strconv.Itoa(t.Hour()))
		case 'H':
			pad2(t.Hour())
		case 'i':
			pad2(t.Minute())
		case 's':
			pad2(t.Second())
		case 'u':
			b.WriteString(pad(t.Nanosecond()/1000, 6))
		case 'v':
			b.WriteString(pad(t.Nanosecond()/1e6, 3))
		case 'e':
			b.WriteString(t.Location().String())
		case 'T':
			b.WriteString(t.Format("MST"))
		case 'O':
			b.WriteString(t.Format("-0700"))
		case 'P':
			b.WriteString(t.Format("-07:00"))
		case 'I':
			if t.IsDST() {
				b.WriteByte('1')
			} else {
				b.WriteByte('0')
			}
		case 'U':
			b.WriteString(strconv.FormatInt(t.Unix(), 10))
		case 'c':
			b.WriteString(t.Format("2006-01-02T15:04:05-07:00"))
		case 'r':
			b.WriteString(t.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
		default:
			b.WriteByte(ch)
		}
	}
	return b.String()
}

func pad(n, width int) string {
	s := strconv.Itoa(n)
	for len(s) < width {
		s = "0" + s
	}
	return s
}

// decodeFormat undoes the path encoding of a format: spaces travel as "_"
// and slashes as "*".
func decodeFormat(s string) string {
	return strings.NewReplacer("_", " ", "*", "/").Replace(s)
}
