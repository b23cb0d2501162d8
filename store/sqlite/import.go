package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/llmbatch/llmbatch/jobs"
)

// An import is the store's bulk path: a million-line file in one
// transaction, as fast as SQLite allows, in memory that does not grow with
// the file. Three things make it so: the source is read (and its lines
// validated) by a goroutine of its own while this one inserts, so that both
// cores work; rows go in importBatch at a time, one INSERT statement per
// batch; and an index whose keys arrive in random order is built once at
// the end rather than kept up to date row by row (see deferredIndexes).
// The page cache stays at SQLite's default: a larger one was slower, as
// every page it adds is memory to fault in.

// importBatch is how many rows one INSERT statement stores: 100 statements
// of one row cost about twice what one of 100 rows does (BenchmarkImport);
// larger batches were no faster.
const importBatch = 100

// importColumns are the columns of requests an import fills in, in the
// order requestArgs gives their values.
const importColumns = `job_id, line, custom_id, endpoint, model, body, metadata, cache_key`

// requestArgs appends the values of r for importColumns.
func requestArgs(args []any, jobID int64, r *jobs.Request) []any {
	return append(args, jobID, r.Line, r.CustomID, string(r.Endpoint), r.Model, r.Body, nullBytes(r.Metadata),
		nullString(r.CacheKey))
}

// invalidKeeper is a RequestSource that keeps invalid lines
// (--skip-invalid): it hands them out with Request.Invalid set, and the
// store then keeps a second use of a custom_id the same way, as a failed
// request, instead of rejecting the file.
type invalidKeeper interface {
	KeepsInvalid() bool
}

// importRequests inserts src's requests. A custom_id used twice is found by
// the UNIQUE constraint, so that no set of every id is held in memory: the
// batch that holds it goes in again row by row, which finds the line, and
// the line of its first use is read back. Each is reported to src with
// Reject, once src has been read to the end; or, when src keeps invalid
// lines, stored as a failed request (ClassInvalidInput) on the spot.
//
// A request with Invalid set is stored failed, with that message. Its
// custom_id may be in use already (a line that repeats an id and is
// invalid besides, or a duplicate): it then gets line-N, or line-N~2, …
//
// deferAfter is Store.DeferIndexesAfter.
func importRequests(ctx context.Context, tx *sql.Tx, job jobs.Job, src jobs.RequestSource, deferAfter int) (int, error) {
	def, err := newDeferral(ctx, tx, deferAfter)
	if err != nil {
		return 0, fmt.Errorf("import: %w", err)
	}
	ins := &inserter{tx: tx, jobID: job.ID, file: job.Source}
	if k, ok := src.(invalidKeeper); ok {
		ins.keep = k.KeepsInvalid()
	}
	defer ins.close()
	rd := jobs.ReadAhead(src, importBatch, 4)
	defer rd.Stop()
	n := 0
	for batch := range rd.Batches() {
		k, err := ins.insert(ctx, batch)
		if err != nil {
			return 0, err
		}
		n += k
		rd.Recycle(batch)
		if err := def.maybeDrop(ctx, tx, n); err != nil {
			return 0, fmt.Errorf("import: %w", err)
		}
	}
	if err := rd.Err(); err != nil {
		return 0, err
	}
	for _, d := range ins.dups {
		src.Reject(d.line, d.reason)
	}
	if err := src.Err(); err != nil {
		return 0, err
	}
	if err := def.rebuild(ctx, tx); err != nil {
		return 0, fmt.Errorf("import: %w", err)
	}
	return n, nil
}

// deferredIndexes are the indexes of requests whose keys arrive in no
// order at all (the cache key is a hash). Kept up to date row by row, an
// index of a million random keys outgrows the page cache, and nearly every
// insert then reads and writes one of its pages: a large import drops them
// and builds them again at its end, from sorted keys, in the same
// transaction, which is several times faster on a million requests
// (BENCHMARKS.md, "What changed").
var deferredIndexes = []string{"requests_cache_key"}

// DefaultDeferIndexesAfter is how many rows an import stores with every
// index in place before it defers (below it, the index fits in the page
// cache and costs little); the rebuild covers the requests of every job,
// so it defers only an import at least as large as what the table held
// before. Open puts it in Store.DeferIndexesAfter.
const DefaultDeferIndexesAfter = 20_000

// deferral drops and rebuilds the deferredIndexes of one import.
type deferral struct {
	after    int      // rows stored before it decides (Store.DeferIndexesAfter)
	existing int64    // rows in requests before the import
	decided  bool     // maybeDrop has made up its mind
	dropped  []string // the CREATE INDEX statements to run again
}

func newDeferral(ctx context.Context, tx *sql.Tx, after int) (*deferral, error) {
	d := &deferral{after: after}
	err := tx.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM requests`).Scan(&d.existing)
	return d, err
}

// maybeDrop drops the deferred indexes once stored rows are in, if the
// table held no more rows than that before.
func (d *deferral) maybeDrop(ctx context.Context, tx *sql.Tx, stored int) error {
	if d.decided || stored < d.after {
		return nil
	}
	d.decided = true
	if d.existing > int64(stored) {
		return nil
	}
	for _, name := range deferredIndexes {
		var create sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?`, name).Scan(&create)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && !create.Valid) {
			continue // not in this schema: nothing to defer
		} else if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DROP INDEX "`+name+`"`); err != nil {
			return err
		}
		d.dropped = append(d.dropped, create.String)
	}
	return nil
}

// rebuild creates the dropped indexes again.
func (d *deferral) rebuild(ctx context.Context, tx *sql.Tx) error {
	for _, create := range d.dropped {
		if _, err := tx.ExecContext(ctx, create); err != nil {
			return fmt.Errorf("rebuild index: %w", err)
		}
	}
	return nil
}

// inserter stores batches of requests in one transaction.
type inserter struct {
	tx                 *sql.Tx
	jobID              int64
	file               string    // the job's source, for the messages of duplicates
	keep               bool      // store duplicates as failed requests (invalidKeeper)
	many, one, invalid *sql.Stmt // prepared on first use
	args               []any
	dups               []rejected
}

// rejected is a line the store found invalid.
type rejected struct {
	line   int
	reason string
}

// insert stores batch and returns how many rows it stored.
func (ins *inserter) insert(ctx context.Context, batch []jobs.Request) (int, error) {
	if len(batch) == importBatch && !anyInvalid(batch) {
		err := ins.insertMany(ctx, batch)
		if err == nil {
			return len(batch), nil
		}
		if !isUniqueViolation(err) {
			return 0, fmt.Errorf("import lines %d-%d: %w", batch[0].Line, batch[len(batch)-1].Line, err)
		}
		// The failed statement stored none of its rows: find the duplicate.
	}
	n := 0
	for i := range batch {
		var ok bool
		var err error
		if batch[i].Invalid != "" {
			ok, err = true, ins.insertInvalid(ctx, &batch[i])
		} else {
			ok, err = ins.insertOne(ctx, &batch[i])
		}
		if err != nil {
			return 0, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// anyInvalid says whether batch holds a request kept invalid; such a batch
// goes in row by row (invalid lines are rare).
func anyInvalid(batch []jobs.Request) bool {
	for i := range batch {
		if batch[i].Invalid != "" {
			return true
		}
	}
	return false
}

// insertInvalid stores r, an invalid line, as a failed request under its
// own custom_id or, when that is taken, the first free one of line-N,
// line-N~2, line-N~3, …
func (ins *inserter) insertInvalid(ctx context.Context, r *jobs.Request) error {
	if ins.invalid == nil {
		stmt, err := ins.tx.PrepareContext(ctx, `INSERT INTO requests (`+importColumns+`, status, error_class, error_message)
			VALUES (?`+strings.Repeat(", ?", strings.Count(importColumns, ","))+`, 'failed', ?, ?)`)
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		ins.invalid = stmt
	}
	base := "line-" + strconv.Itoa(r.Line)
	ids := []string{r.CustomID, base}
	for try := 0; try < 100; try++ {
		if try >= len(ids) {
			ids = append(ids, base+"~"+strconv.Itoa(try))
		}
		c := *r
		c.CustomID, c.CacheKey = ids[try], ""
		args := append(requestArgs(ins.args[:0], ins.jobID, &c), string(jobs.ClassInvalidInput), r.Invalid)
		_, err := ins.invalid.ExecContext(ctx, args...)
		if err == nil || !isUniqueViolation(err) {
			if err != nil {
				return fmt.Errorf("import line %d: %w", r.Line, err)
			}
			return nil
		}
	}
	return fmt.Errorf("import line %d: no free custom_id for an invalid line", r.Line)
}

func (ins *inserter) insertMany(ctx context.Context, batch []jobs.Request) error {
	if ins.many == nil {
		stmt, err := ins.tx.PrepareContext(ctx, `INSERT INTO requests (`+importColumns+`) VALUES `+
			valuesList(strings.Count(importColumns, ",")+1, importBatch))
		if err != nil {
			return err
		}
		ins.many = stmt
	}
	ins.args = ins.args[:0]
	for i := range batch {
		ins.args = requestArgs(ins.args, ins.jobID, &batch[i])
	}
	_, err := ins.many.ExecContext(ctx, ins.args...)
	clear(ins.args) // let the bodies go
	return err
}

// insertOne stores r, or notes it as a duplicate and reports false.
func (ins *inserter) insertOne(ctx context.Context, r *jobs.Request) (bool, error) {
	if ins.one == nil {
		stmt, err := ins.tx.PrepareContext(ctx, `INSERT INTO requests (`+importColumns+`)
			VALUES (?`+strings.Repeat(", ?", strings.Count(importColumns, ","))+`)`)
		if err != nil {
			return false, fmt.Errorf("import: %w", err)
		}
		ins.one = stmt
	}
	_, err := ins.one.ExecContext(ctx, requestArgs(ins.args[:0], ins.jobID, r)...)
	if err == nil {
		return true, nil
	}
	if !isUniqueViolation(err) {
		return false, fmt.Errorf("import line %d: %w", r.Line, err)
	}
	if ins.keep {
		// An invalid line never costs a valid one its custom_id: it may
		// hold it only because its own could not be read (line-N).
		moved, err := ins.yieldInvalid(ctx, r.CustomID)
		if err != nil {
			return false, err
		}
		if moved {
			if _, err := ins.one.ExecContext(ctx, requestArgs(ins.args[:0], ins.jobID, r)...); err != nil {
				return false, fmt.Errorf("import line %d: %w", r.Line, err)
			}
			return true, nil
		}
	}
	var first int
	if err := ins.tx.QueryRowContext(ctx, `SELECT line FROM requests WHERE job_id = ? AND custom_id = ?`,
		ins.jobID, r.CustomID).Scan(&first); err != nil {
		return false, fmt.Errorf("import: %w", err)
	}
	reason := fmt.Sprintf("duplicate custom_id %q (first used on line %d)", r.CustomID, first)
	if ins.keep {
		dup := *r
		dup.Status = jobs.StatusFailed
		dup.Invalid = jobs.LineError{File: ins.file, Line: r.Line, Reason: reason}.Error()
		return true, ins.insertInvalid(ctx, &dup)
	}
	ins.dups = append(ins.dups, rejected{r.Line, reason})
	return false, nil
}

// yieldInvalid moves the invalid line (kept with --skip-invalid) that
// holds customID, if one does, to the first free one of line-N, line-N~2,
// …, and reports whether it did.
func (ins *inserter) yieldInvalid(ctx context.Context, customID string) (bool, error) {
	var id int64
	var line int
	err := ins.tx.QueryRowContext(ctx, `SELECT id, line FROM requests
		WHERE job_id = ? AND custom_id = ? AND status = 'failed' AND error_class = ?`,
		ins.jobID, customID, jobs.ClassInvalidInput).Scan(&id, &line)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("import: %w", err)
	}
	base := "line-" + strconv.Itoa(line)
	for try := 1; try < 100; try++ {
		cand := base
		if try > 1 {
			cand += "~" + strconv.Itoa(try)
		}
		if cand == customID {
			continue
		}
		_, err := ins.tx.ExecContext(ctx, `UPDATE requests SET custom_id = ? WHERE id = ?`, cand, id)
		if err == nil {
			return true, nil
		} else if !isUniqueViolation(err) {
			return false, fmt.Errorf("import line %d: %w", line, err)
		}
	}
	return false, fmt.Errorf("import line %d: no free custom_id for an invalid line", line)
}

func (ins *inserter) close() {
	for _, s := range []*sql.Stmt{ins.many, ins.one, ins.invalid} {
		if s != nil {
			s.Close()
		}
	}
}

// InvalidLines returns the messages ("FILE:LINE: reason") of the first
// limit requests of the job that were kept invalid at import
// (--skip-invalid), in line order, and how many there are in all.
func (s *Store) InvalidLines(ctx context.Context, jobID int64, limit int) ([]string, int, error) {
	const where = ` FROM requests WHERE job_id = ? AND status = 'failed' AND error_class = ?`
	var total int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*)`+where, jobID, jobs.ClassInvalidInput).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("invalid lines: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT error_message`+where+` ORDER BY id LIMIT ?`, jobID, jobs.ClassInvalidInput, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("invalid lines: %w", err)
	}
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return nil, 0, fmt.Errorf("invalid lines: %w", err)
		}
		msgs = append(msgs, m)
	}
	return msgs, total, rows.Err()
}
