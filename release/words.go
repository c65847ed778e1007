package release

import (
	"fmt"
	"strconv"
	"strings"
)

// The words every transport uses for sizes, counts and lists, so Slack,
// the terminal and the scheduler's notices say a thing the same way.
// They live here, in the one package every layer may import.

// Bytes renders a size for people in binary (IEC) units, the one unit
// system relbot uses: "512 B", "1.5 KiB", "12.3 MiB", "2.0 GiB".
func Bytes(n int64) string {
	if n < 1024 && n > -1024 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	for _, unit := range []string{"KiB", "MiB", "GiB", "TiB", "PiB"} {
		v /= 1024
		if (v < 1024 && v > -1024) || unit == "PiB" {
			return fmt.Sprintf("%.1f %s", v, unit)
		}
	}
	return "" // unreachable: the loop returns at PiB
}

// Number prints an integer with thousands separators: "1,234,567".
func Number[T ~int | ~int64](n T) string {
	s := strconv.FormatInt(int64(n), 10)
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return sign + b.String()
}

// Count renders n with its noun, singular or plural: "1 secret",
// "2 secrets", "1,204 rows", "3 entries". noun is the singular; a noun
// English does not pluralise by rule is given as "one|many"
// ("person|people").
func Count[T ~int | ~int64](n T, noun string) string {
	return Number(n) + " " + Plural(n, noun)
}

// Plural is noun as it reads after n: the singular for one, else the
// plural ("table"/"tables", "entry"/"entries", "class"/"classes"); a
// noun given as "one|many" has its plural stated (use it for phrases:
// "table differs|tables differ").
func Plural[T ~int | ~int64](n T, noun string) string {
	one, many, stated := strings.Cut(noun, "|")
	if n == 1 {
		return one
	}
	if stated {
		return many
	}
	return pluralOf(one)
}

func pluralOf(w string) string {
	lower := strings.ToLower(w)
	switch {
	case lower == "":
		return w
	case strings.HasSuffix(lower, "s"), strings.HasSuffix(lower, "x"), strings.HasSuffix(lower, "ch"), strings.HasSuffix(lower, "sh"):
		return w + "es"
	case strings.HasSuffix(lower, "y") && len(lower) > 1 && !strings.ContainsRune("aeiou", rune(lower[len(lower)-2])):
		return w[:len(w)-1] + "ies"
	}
	return w + "s"
}

// List joins items as English prose: "crm", "crm and hr",
// "alice, bob and carol"; nothing is "none".
func List(items []string) string {
	switch len(items) {
	case 0:
		return "none"
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}
