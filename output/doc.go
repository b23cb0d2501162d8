// Package output turns a job's records into export files and its figures
// into every view people read: the progress bar and log lines of a run
// (drawn with mpb) with its errors as they happen and, for run --verbose,
// a line per failed attempt (AttemptLog); the dry run's plan, the status
// report and the job list, and the HTML report. The exports are JSONL
// (openai, flat, merged) and tabular (csv, parquet, with parquet-go).
//
// It imports jobs, the standard library and mpb, never worker or store,
// and it never prints on its own: every function writes to an io.Writer it
// is given.
//
// # Export formats
//
// FormatOpenAI, FormatFlat and FormatMerged write one JSON object per
// request, "\n"-terminated; FormatCSV and FormatParquet one row per request
// with typed columns (see Columns). All write the records in the order they
// are given (input order, as the store yields them). Pending and running
// requests are not written; Exporter.Counts reports how many were skipped.
// Raw JSON from the provider or the input (a response body, an error body,
// the line's metadata) is embedded byte for byte, so key order and number
// spelling survive; only insignificant white space is removed when the raw
// text spans several lines, so that every record stays on one line.
// Strings are escaped as encoding/json does, except that <, > and & are
// left as they are.
//
// FormatOpenAI writes the OpenAI Batch output line:
//
//	{"id":"batch_req_<job>_<request id>","custom_id":"...","response":{"status_code":200,"request_id":"...","body":{...}},"error":null}
//
// A failed request that got an HTTP answer has that answer in response, as
// OpenAI's Batch API writes it, and "error":null: status_code is the
// answer's, request_id the provider's (its x-request-id header, else the
// error body's id, else ""), and body the provider's error body: embedded
// when it is JSON, a JSON string when it is not, {} when it was empty.
// Only a request that never got an HTTP answer (a network error, a
// timeout, a line kept invalid at import) has "response":null and
// error:{"code":<error class>,"message":...}; a cancelled request too,
// with the error code "cancelled". When the input
// line had metadata, "metadata" follows as the last member; it is absent
// otherwise, so such lines have exactly OpenAI's shape. An embeddings
// answer's body is kept as it is too, its vectors as the provider sent
// them.
//
// FormatFlat writes the text and the numbers without the envelope:
//
//	{"custom_id":"...","status":"succeeded","model":"...","content":"...","reasoning_content":"...","finish_reason":"stop","usage":{"prompt_tokens":1,"completion_tokens":2,"reasoning_tokens":0,"cached_tokens":0,"total_tokens":3},"latency_ms":812,"error":null,"metadata":null}
//
// Every member is always present, in that order. For a succeeded request
// content, reasoning_content and finish_reason are strings (possibly ""),
// latency_ms is a whole number of milliseconds and error is null; usage is
// null when the response reported none. For a failed or cancelled request
// content, reasoning_content, finish_reason, usage and latency_ms are null,
// and error is {"code":...,"message":...,"status_code":...}, with status_code
// null when no HTTP answer arrived. model is the model that answered, or the
// model the request asked for when there was no answer. metadata is the
// line's metadata, or null. An embeddings request has "embedding" after
// finish_reason: the first vector of its answer as a JSON array (the
// provider's numbers as spelled, a base64 vector decoded to float32s), or
// null; its content, reasoning_content and finish_reason are null. With
// ExportOptions.WithRequest, "request" (the body as sent) and "prompt" (the
// text of its prompt, or null) follow metadata.
//
// FormatCSV and FormatParquet write the same columns: custom_id, status,
// model, the text, the usage's counts, latency_ms, attempts, the error's
// code and message, metadata as JSON text and the embedding (a list of
// float32s in parquet, a JSON array in csv); sample with --samples K, the
// request and its prompt with WithRequest, and a dataset job's fields.
// A value that is missing (no result, no usage) is null.
package output
