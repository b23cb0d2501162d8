// Package layers holds no code: its test reads the imports of every
// package of the module (go list) and fails when one crosses the layering
// ARCHITECTURE.md draws — SQL only in store, HTTP only in worker, the
// command line reaching a storage engine only through store.Open, the
// domain package on the standard library.
package layers
