package output

import "strconv"

// Plural is n followed by word, with an "s" unless n is one: "1 request",
// "3 requests", "0 requests". Words whose plural is not word+"s" are
// spelled by the caller.
func Plural(n int, word string) string {
	s := strconv.Itoa(n) + " " + word
	if n != 1 {
		s += "s"
	}
	return s
}
