// Package migrations holds the numbered SQL files that build the
// PostgreSQL engine's schema, embedded in the binary. The store applies
// them in order, each in its own transaction, under an advisory lock, and
// records which have run.
package migrations

import "embed"

// FS holds the migration files, named NNNN_description.sql.
//
//go:embed *.sql
var FS embed.FS
