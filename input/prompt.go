package input

import (
	"fmt"
	"math"
)

const promptWant = "a string, an array of strings, an array of token ids or an array of token-id arrays"

// checkPrompt accepts the four shapes of a completions prompt. The first
// item of an array decides which shape the others must follow.
func checkPrompt(field string, v []byte) string { return checkTexts(field, v, false) }

// checkTexts is checkPrompt; with nonEmpty, a string (alone or as an item)
// must not be "", which an embeddings input cannot be.
func checkTexts(field string, v []byte, nonEmpty bool) string {
	switch kind(v) {
	case "string":
		return emptyString(field, v, nonEmpty)
	case "array":
	default:
		return fmt.Sprintf("%q must be %s, got %s", field, promptWant, kind(v))
	}
	if isEmptyArray(v) {
		return fmt.Sprintf("%q must be %s, got an empty array", field, promptWant)
	}
	var shape string
	return eachItem(v, func(i int, it []byte) string {
		if i == 0 {
			shape = kind(it)
		}
		switch shape {
		case "string":
			if kind(it) != "string" {
				return fmt.Sprintf("%q must be a string like the items before it, got %s", item(field, i), kind(it))
			}
			return emptyString(item(field, i), it, nonEmpty)
		case "number":
			return tokenID(field, i, it)
		case "array":
			return tokenIDs(field, i, it)
		}
		return fmt.Sprintf("%q must be %s, got an array starting with %s", field, promptWant, article(it))
	})
}

// emptyString refuses the string v when it is "" and nonEmpty is set.
func emptyString(field string, v []byte, nonEmpty bool) string {
	if nonEmpty && string(trimSpace(v)) == `""` {
		return fmt.Sprintf(`%q must be a non-empty string, got ""`, field)
	}
	return ""
}

func item(field string, i int) string { return fmt.Sprintf("%s[%d]", field, i) }

// tokenID accepts an integer >= 0 as item i of field.
func tokenID(field string, i int, v []byte) string {
	f, ok := number(v)
	if !ok {
		return fmt.Sprintf("%q must be a token id (an integer of at least 0), got %s", item(field, i), kind(v))
	}
	if f < 0 || f != math.Trunc(f) || math.IsInf(f, 0) {
		return fmt.Sprintf("%q must be a token id (an integer of at least 0), got %s", item(field, i), got(v))
	}
	return ""
}

// tokenIDs accepts a non-empty array of token ids as item i of field.
func tokenIDs(field string, i int, v []byte) string {
	if kind(v) != "array" {
		return fmt.Sprintf("%q must be an array of token ids like the items before it, got %s", item(field, i), kind(v))
	}
	if isEmptyArray(v) {
		return fmt.Sprintf("%q must be a non-empty array of token ids, got an empty array", item(field, i))
	}
	return eachItem(v, func(j int, id []byte) string { return tokenID(item(field, i), j, id) })
}
