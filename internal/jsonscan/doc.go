// Package jsonscan is JSON's grammar (RFC 8259) at the byte level, as
// encoding/json reads it, for the packages that walk JSON text by hand
// instead of decoding it: the import checks and splits every input line,
// the cache key respells bodies, and the worker reads answers, all without
// losing key order or number spelling and without allocating for values
// they do not keep.
//
// It owns the pieces they share: white space, strings (scanning them with
// their escapes, decoding and quoting them), numbers, literals, skipping a
// value, stepping through objects and arrays, splitting an object into its
// members, and validating a value with a nesting limit the caller gives
// (the import keeps encoding/json's, the worker a tighter one). What a
// caller does with the values (which keys it reads, which types it
// accepts, what it reports) stays with the caller.
//
// Positions are indexes into the caller's []byte; functions take the
// index to start at and return the index to go on from, so that no value
// is copied and nothing is allocated but decoded strings and member lists.
//
// It imports only the standard library, so that jobs, which may import
// nothing else, can use it too.
package jsonscan
