// Package jobs is llmbatch's domain: jobs, requests, attempts and results,
// the request states and their transitions, the error classes, the sentinel
// errors, and the Store interface the other packages program against.
//
// It imports only the standard library, with one exception:
// internal/jsonscan, the JSON grammar that jobs shares with input and
// worker (Members, Lookup, ValidValue and the cache key's canonical
// spelling walk request bodies with it), which itself imports only the
// standard library. It knows neither SQL nor HTTP, so a second store engine
// or a second transport can be added without touching the code that uses
// these types.
package jobs
