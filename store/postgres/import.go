package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/llmbatch/llmbatch/jobs"
)

// An import is the store's bulk path: a file of millions of lines in one
// transaction. Its rows go in by COPY, a chunk at a time, while a
// goroutine of its own reads (and validates) the source ahead. A custom_id
// used twice is found by the UNIQUE constraint rather than by a set of
// every id held in memory: the COPY of the chunk that holds it fails, the
// chunk is rolled back to the savepoint before it, and goes in again row
// by row, which finds the line, as store/sqlite does it.

// copyChunk and copyChunkBytes bound the rows one COPY stores, by count
// and by the size of their bodies: a chunk is held in memory until it is
// stored (its rows go in again one at a time when it holds a duplicate),
// and each is one savepoint.
const (
	copyChunk      = 4096
	copyChunkBytes = 16 << 20
)

// readBatch is how many requests the reading goroutine hands over at once.
const readBatch = 256

// copyColumns are the columns of requests an import fills in, in the
// order copyRow gives their values.
var copyColumns = []string{"job_id", "line", "custom_id", "endpoint", "model", "body", "metadata", "cache_key",
	"status", "error_class", "error_message"}

// Import creates the job and stores every request src yields in one
// transaction: either the whole file is stored, or nothing is.
func (s *Store) Import(ctx context.Context, job jobs.Job, src jobs.RequestSource) (jobs.Job, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return job, fmt.Errorf("import: %w", err)
	}
	defer tx.Rollback(ctx)
	if job, err = s.insertJob(ctx, tx, job); err != nil {
		return job, err
	}
	if job.Total, err = importRequests(ctx, tx, job, src); err != nil {
		return job, err
	}
	if f, ok := src.(jobs.Fingerprinter); ok {
		job.Fingerprint = f.Fingerprint()
	}
	if _, err := tx.Exec(ctx, `UPDATE jobs SET total = $1, fingerprint = $2 WHERE id = $3`,
		job.Total, job.Fingerprint, job.ID); err != nil {
		return job, fmt.Errorf("import: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return job, fmt.Errorf("import: commit: %w", err)
	}
	return job, nil
}

// insertJob stores the job, active and created now, and returns it with
// its id; a job of that name already there is jobs.ErrJobChanged.
func (s *Store) insertJob(ctx context.Context, tx pgx.Tx, job jobs.Job) (jobs.Job, error) {
	job.State = jobs.JobActive
	job.CreatedAt = s.Now()
	settings, err := json.Marshal(job.Settings)
	if err != nil {
		return job, fmt.Errorf("import: settings: %w", err)
	}
	err = tx.QueryRow(ctx, `INSERT INTO jobs (name, source, fingerprint, default_model, state, created_at, settings)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`, job.Name, job.Source, job.Fingerprint, job.DefaultModel,
		string(job.State), millis(job.CreatedAt), string(settings)).Scan(&job.ID)
	if isUniqueViolation(err) {
		return job, fmt.Errorf("import job %q: %w", job.Name, jobs.ErrJobChanged)
	} else if err != nil {
		return job, fmt.Errorf("import: %w", err)
	}
	return job, nil
}

// invalidKeeper is a RequestSource that keeps invalid lines
// (--skip-invalid): it hands them out with Request.Invalid set, and the
// store then keeps a second use of a custom_id the same way, as a failed
// request, instead of rejecting the file.
type invalidKeeper interface {
	KeepsInvalid() bool
}

// importRequests stores src's requests and returns how many. Each custom_id
// used twice is reported to src with Reject once src has been read to the
// end; or, when src keeps invalid lines, stored as a failed request
// (ClassInvalidInput) on the spot. A request with Invalid set is stored
// failed, with that message; when its custom_id is taken it gets line-N,
// or line-N~2, …
func importRequests(ctx context.Context, tx pgx.Tx, job jobs.Job, src jobs.RequestSource) (int, error) {
	ins := &inserter{tx: tx, jobID: job.ID, file: job.Source, chunk: make([]jobs.Request, 0, copyChunk)}
	if k, ok := src.(invalidKeeper); ok {
		ins.keep = k.KeepsInvalid()
	}
	rd := jobs.ReadAhead(src, readBatch, 8)
	defer rd.Stop()
	for batch := range rd.Batches() {
		for i := range batch {
			if err := ins.add(ctx, &batch[i]); err != nil {
				return 0, err
			}
		}
		rd.Recycle(batch)
	}
	if err := rd.Err(); err != nil {
		return 0, err
	}
	if err := ins.flush(ctx); err != nil {
		return 0, err
	}
	for _, d := range ins.dups {
		src.Reject(d.line, d.reason)
	}
	if err := src.Err(); err != nil {
		return 0, err
	}
	return ins.stored, nil
}

// inserter stores requests in chunks, in one transaction.
type inserter struct {
	tx     pgx.Tx
	jobID  int64
	file   string // the job's source, for the messages of duplicates
	keep   bool   // store duplicates as failed requests (invalidKeeper)
	dups   []rejected
	chunk  []jobs.Request // what the next COPY stores
	size   int            // the bytes of the chunk's bodies and metadata
	stored int
}

// rejected is a line the store found invalid.
type rejected struct {
	line   int
	reason string
}

// add puts r in the chunk, and stores the chunk once it is full.
func (ins *inserter) add(ctx context.Context, r *jobs.Request) error {
	ins.chunk = append(ins.chunk, *r)
	ins.size += len(r.Body) + len(r.Metadata)
	if len(ins.chunk) < copyChunk && ins.size < copyChunkBytes {
		return nil
	}
	return ins.flush(ctx)
}

// flush stores the chunk and empties it.
func (ins *inserter) flush(ctx context.Context) error {
	n, err := ins.insert(ctx, ins.chunk)
	ins.stored += n
	clear(ins.chunk) // let the bodies go
	ins.chunk, ins.size = ins.chunk[:0], 0
	return err
}

// insert stores chunk and returns how many rows it stored: all of them
// by one COPY, unless one of them repeats a custom_id.
func (ins *inserter) insert(ctx context.Context, chunk []jobs.Request) (int, error) {
	if len(chunk) == 0 {
		return 0, nil
	}
	if _, err := ins.tx.Exec(ctx, `SAVEPOINT import_chunk`); err != nil {
		return 0, fmt.Errorf("import: %w", err)
	}
	_, err := ins.tx.CopyFrom(ctx, pgx.Identifier{"requests"}, copyColumns, &copyRows{jobID: ins.jobID, reqs: chunk})
	if err == nil {
		_, err = ins.tx.Exec(ctx, `RELEASE SAVEPOINT import_chunk`)
		if err != nil {
			return 0, fmt.Errorf("import: %w", err)
		}
		return len(chunk), nil
	}
	if !isUniqueViolation(err) {
		return 0, fmt.Errorf("import lines %d-%d: %w", chunk[0].Line, chunk[len(chunk)-1].Line, err)
	}
	// The failed COPY stored none of its rows: find the duplicate.
	if _, err := ins.tx.Exec(ctx, `ROLLBACK TO SAVEPOINT import_chunk`); err != nil {
		return 0, fmt.Errorf("import: %w", err)
	}
	return ins.insertEach(ctx, chunk)
}

// insertEach stores chunk one row at a time.
func (ins *inserter) insertEach(ctx context.Context, chunk []jobs.Request) (int, error) {
	n := 0
	for i := range chunk {
		ok := true
		var err error
		if chunk[i].Invalid != "" {
			err = ins.insertInvalid(ctx, &chunk[i])
		} else {
			ok, err = ins.insertOne(ctx, &chunk[i])
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

// copyRows is a chunk as a pgx.CopyFromSource.
type copyRows struct {
	jobID int64
	reqs  []jobs.Request
	i     int
	vals  []any
}

func (c *copyRows) Next() bool { c.i++; return c.i <= len(c.reqs) }
func (c *copyRows) Err() error { return nil }

func (c *copyRows) Values() ([]any, error) {
	c.vals = appendRow(c.vals[:0], c.jobID, &c.reqs[c.i-1])
	return c.vals, nil
}

// appendRow appends the values of r for copyColumns (and insertColumns):
// pending, or, for a line kept invalid, failed with its message and no
// cache key.
func appendRow(vals []any, jobID int64, r *jobs.Request) []any {
	status, class, msg, key := "pending", (*string)(nil), (*string)(nil), ptrUnlessEmpty(r.CacheKey)
	if r.Invalid != "" {
		c := string(jobs.ClassInvalidInput)
		status, class, msg, key = "failed", &c, &r.Invalid, nil
	}
	return append(vals, jobID, int64(r.Line), r.CustomID, string(r.Endpoint), r.Model, nonNil(r.Body),
		[]byte(r.Metadata), key, status, class, msg)
}

// insertRow stores one row of copyColumns unless its custom_id is taken.
const insertRow = `INSERT INTO requests (job_id, line, custom_id, endpoint, model, body, metadata, cache_key,
	status, error_class, error_message) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
	ON CONFLICT (job_id, custom_id) DO NOTHING`

// insertRequest stores r under its custom_id, and reports false, storing
// nothing, when the job has that custom_id already.
func (ins *inserter) insertRequest(ctx context.Context, r *jobs.Request) (bool, error) {
	tag, err := ins.tx.Exec(ctx, insertRow, appendRow(nil, ins.jobID, r)...)
	if err != nil {
		return false, fmt.Errorf("import line %d: %w", r.Line, err)
	}
	return tag.RowsAffected() == 1, nil
}

// insertInvalid stores r, an invalid line, as a failed request under its
// own custom_id or, when that is taken, the first free one of line-N,
// line-N~2, line-N~3, …
func (ins *inserter) insertInvalid(ctx context.Context, r *jobs.Request) error {
	base := "line-" + strconv.Itoa(r.Line)
	ids := []string{r.CustomID, base}
	for try := 0; try < 100; try++ {
		if try >= len(ids) {
			ids = append(ids, base+"~"+strconv.Itoa(try))
		}
		c := *r
		c.CustomID = ids[try]
		if ok, err := ins.insertRequest(ctx, &c); err != nil || ok {
			return err
		}
	}
	return fmt.Errorf("import line %d: no free custom_id for an invalid line", r.Line)
}

// insertOne stores r, or notes it as a duplicate and reports false.
func (ins *inserter) insertOne(ctx context.Context, r *jobs.Request) (bool, error) {
	if ok, err := ins.insertRequest(ctx, r); err != nil || ok {
		return ok, err
	}
	if ins.keep {
		// An invalid line never costs a valid one its custom_id: it may
		// hold it only because its own could not be read (line-N).
		moved, err := ins.yieldInvalid(ctx, r.CustomID)
		if err != nil {
			return false, err
		}
		if moved {
			if ok, err := ins.insertRequest(ctx, r); err != nil || ok {
				return ok, err
			}
			return false, fmt.Errorf("import line %d: custom_id %q still taken", r.Line, r.CustomID)
		}
	}
	var first int
	if err := ins.tx.QueryRow(ctx, `SELECT line FROM requests WHERE job_id = $1 AND custom_id = $2`,
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
	err := ins.tx.QueryRow(ctx, `SELECT id, line FROM requests
		WHERE job_id = $1 AND custom_id = $2 AND status = 'failed' AND error_class = $3`,
		ins.jobID, customID, string(jobs.ClassInvalidInput)).Scan(&id, &line)
	if errors.Is(err, pgx.ErrNoRows) {
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
		// A taken name is passed over rather than tried: a failed UPDATE
		// would abort the whole transaction.
		tag, err := ins.tx.Exec(ctx, `UPDATE requests SET custom_id = $1 WHERE id = $2
			AND NOT EXISTS (SELECT 1 FROM requests WHERE job_id = $3 AND custom_id = $1)`, cand, id, ins.jobID)
		if err != nil {
			return false, fmt.Errorf("import line %d: %w", line, err)
		}
		if tag.RowsAffected() == 1 {
			return true, nil
		}
	}
	return false, fmt.Errorf("import line %d: no free custom_id for an invalid line", line)
}
