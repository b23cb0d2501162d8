// Package pgtest gives a test a PostgreSQL database of its own: a fresh,
// empty database on the server named by $LLMBATCH_TEST_POSTGRES, dropped
// when the test ends, so tests running in parallel never see each other's
// tables. .ci/postgres.sh starts a throwaway server and prints that DSN;
// docs/postgres-tests.md says how to run the tests with it.
//
// Without a server the tests skip, except where $LLMBATCH_REQUIRE_POSTGRES=1
// (CI), where a missing server is a failure rather than a silent pass.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// EnvServer names the variable holding the DSN of the test server: a
	// superuser's, since the tests create and drop databases.
	EnvServer = "LLMBATCH_TEST_POSTGRES"
	// EnvRequire names the variable that, set to 1, turns a missing server
	// from a skip into a failure.
	EnvRequire = "LLMBATCH_REQUIRE_POSTGRES"
)

// timeout bounds creating or dropping one database, so a server that hangs
// fails the test rather than the whole package's time limit.
const timeout = time.Minute

// Available reports whether a test server is configured.
func Available() bool { return os.Getenv(EnvServer) != "" }

// DSN creates a fresh, empty database on the test server and returns the
// DSN that reaches it; the database is dropped (with FORCE, so connections
// left open do not keep it) when tb and its subtests end. It skips tb when
// no server is configured, and fails it instead when EnvRequire is 1.
func DSN(tb testing.TB) string {
	tb.Helper()
	server := os.Getenv(EnvServer)
	if server == "" {
		if os.Getenv(EnvRequire) == "1" {
			tb.Fatal("no PostgreSQL server: set " + EnvServer)
			return ""
		}
		tb.Skip("no PostgreSQL server: set " + EnvServer + " (see docs/postgres-tests.md)")
		return ""
	}
	name := databaseName(tb.Name())
	dsn, err := withDatabase(server, name)
	if err != nil {
		tb.Fatalf("%s: %v", EnvServer, err)
		return ""
	}
	ident := pgx.Identifier{name}.Sanitize()
	if err := execOn(server, "CREATE DATABASE "+ident); err != nil {
		tb.Fatalf("create test database: %v", err)
		return ""
	}
	tb.Cleanup(func() {
		if err := execOn(server, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			tb.Errorf("drop test database: %v", err)
		}
	})
	return dsn
}

// NewDatabase creates a fresh, empty database named for label on the
// server DSN server names, for a benchmark: it returns the DSN that
// reaches it and a function that drops it.
func NewDatabase(server, label string) (dsn string, drop func() error, err error) {
	name := databaseName(label)
	if dsn, err = withDatabase(server, name); err != nil {
		return "", nil, err
	}
	ident := pgx.Identifier{name}.Sanitize()
	if err := execOn(server, "CREATE DATABASE "+ident); err != nil {
		return "", nil, fmt.Errorf("create database: %w", err)
	}
	return dsn, func() error { return execOn(server, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)") }, nil
}

// execOn runs one statement on its own connection to the server's DSN.
// CREATE and DROP DATABASE cannot run in a transaction, and a connection
// per call keeps DSN safe for parallel tests without shared state.
func execOn(server, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// databaseName is a name no other test uses: the test's name, reduced to
// what an unquoted identifier holds and cut to fit PostgreSQL's 63 bytes,
// then random hex. The test's name is there for whoever finds a database
// a killed test run left behind.
func databaseName(test string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(test) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "_"):
			b.WriteByte('_')
		}
	}
	const prefix, randomHex = "llmbatch_", 12
	keep := strings.TrimSuffix(b.String(), "_")
	if max := 63 - len(prefix) - 1 - randomHex; len(keep) > max {
		keep = keep[:max]
	}
	random := make([]byte, randomHex/2)
	rand.Read(random) // never returns an error
	return prefix + keep + "_" + hex.EncodeToString(random)
}

// withDatabase returns server's DSN with its database replaced by name, in
// either form pgx reads: a URL or keyword=value pairs (where a later key
// wins).
func withDatabase(server, name string) (string, error) {
	if _, err := pgx.ParseConfig(server); err != nil {
		return "", err
	}
	if !strings.HasPrefix(server, "postgres://") && !strings.HasPrefix(server, "postgresql://") {
		return server + " dbname=" + name, nil
	}
	u, err := url.Parse(server)
	if err != nil {
		return "", fmt.Errorf("parse DSN: %w", err)
	}
	u.Path, u.RawPath = "/"+name, ""
	return u.String(), nil
}
