// Package migrations holds the numbered SQL files that build the database
// schema, embedded in the binary. The store applies them in order, each in
// its own transaction, and records which have run.
package migrations

import "embed"

// FS holds the migration files, named NNNN_description.sql.
//
//go:embed *.sql
var FS embed.FS
