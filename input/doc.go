// Package input reads and validates llmbatch input files: JSONL with one
// request per line, each either an OpenAI Batch line
// ({"custom_id", "method", "url", "body"}) or a bare request body
// ({"model", "messages"}, {"model", "prompt"} or, for embeddings,
// {"model", "input"}), detected per line.
//
// A Reader streams the file: lines have no length limit and memory does not
// grow with the file. Every problem is reported as FILE:LINE: reason in a
// *jobs.ValidationError. After an invalid line the valid ones are still
// handed out, so that the store finds every duplicate custom_id and all of
// them are listed at once; the import is then rolled back whole, because by
// default nothing of an invalid file is imported.
// Request bodies are the file's own bytes: numbers keep their spelling and
// keys their order; the only edits (dropping custom_id and metadata from a
// bare body, adding the default model) splice the raw object.
package input
