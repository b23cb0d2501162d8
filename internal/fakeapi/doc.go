// Package fakeapi is a fake OpenAI-compatible API server on loopback, with
// fault injection, for the tests of several packages, for end-to-end tests
// of the llmbatch binary, for benchmarks, and as the stand-in provider of
// `llmbatch demo` (cli/demo.go), so it must stay free of test-only
// dependencies but for Start. It imports only the standard
// library (and "testing" only in the Start helper).
//
// The server answers POST requests whose path ends in "/chat/completions",
// "/completions" or "/embeddings" (any prefix; URL returns a base ending in
// "/v1"). Answers are deterministic functions of the request body:
//
//   - chat: one choice per "n" whose content is "echo: " followed by the
//     content of the last user message; completions: one choice per prompt
//     times "n" (index = prompt*n + j) whose text is "echo: " followed by the
//     prompt (token prompts are echoed as numbers separated by spaces).
//   - usage.prompt_tokens is the number of whitespace-separated words in all
//     message contents (or prompts; a token counts as a word) plus 3;
//     completion_tokens is the number of words of all answers. A positive
//     max_tokens (or max_completion_tokens) truncates each answer to that many
//     words and sets finish_reason "length".
//   - chat requests to a model whose name contains one of
//     Config.ReasoningModels (default "r1") also carry reasoning_content
//     "thinking about <content>", whose words are counted in
//     usage.completion_tokens_details.reasoning_tokens and in
//     completion_tokens.
//   - "stream": true answers with server-sent events: a role chunk (chat
//     only), a ": keep-alive" comment, reasoning deltas, content deltas, a
//     finish chunk per choice, a usage chunk with empty choices when
//     stream_options.include_usage is true, then "data: [DONE]".
//   - embeddings: {"object":"list","data":[{"object":"embedding","index":i,
//     "embedding":[...]}],"model":...,"usage":{"prompt_tokens":N,
//     "total_tokens":N}}, one item per input item (a string, each string
//     of an array, a token array, each token array of an array of them),
//     with no id and no "created", so that the same body always gets the
//     same bytes. Each vector is Vector(text, d): d ("dimensions", default
//     DefaultDimensions) float32 values in [-1, 1) drawn from a hash of the
//     item's text (token ids written as numbers separated by spaces); with
//     "encoding_format": "base64" it is the base64 of those float32s,
//     little-endian, as OpenAI sends it. N is the number of words of the
//     input (a token counts as a word), with nothing added. A "stream", an
//     empty text, "dimensions" outside 1..65536 or another encoding_format
//     is a 400.
//
// Config.Style shapes the same answers as other servers do. StyleDeepSeek
// (the default) is described above. StyleVLLM puts the reasoning in
// message.reasoning and delta.reasoning, adds a stop_reason to every
// finished choice (the request's first "stop" string when the choice
// stopped and the request set one, else null; in a stream only on the
// finish chunk, as vLLM sends it) and a top-level service_tier (the
// request's, else null). StyleOpenRouter puts the reasoning in reasoning,
// repeats the role (and an empty content) in every delta, adds a
// native_finish_reason to every choice and the top-level "provider":
// "FakeInfra". Config.FloatUsage writes every usage count as a float (20.0).
// A stream takes both from the Config it is answered under; a plain answer
// takes them where Server.respond shapes its reply with reply.styled.
//
// Every response carries "X-Request-Id: req-<N>", N being the 1-based call
// number, which also appears in the id ("chatcmpl-<N>", "cmpl-<N>"; an
// embeddings answer has none). Errors
// have OpenAI's shape {"error":{"message","type","param","code"}}: 400 for a
// body that is not JSON, empty messages, a missing or malformed prompt, or n
// outside 1..128; 401 when Config.Key is set and the bearer token differs
// (the message never repeats the token); 404 and 405 for other paths and
// methods.
//
// Faults are chosen per call: first Config.Script, then the random
// Config.Faults drawn from Config.Seed and the call number; an embeddings
// call meets them as a plain chat call does (the stream faults aside).
// Stats counts what was really written: only complete 2xx answers (for
// streams, the [DONE] event) count as served and add to the token usage.
//
// The Batch API is OpenAI's, on the same key: POST files (multipart, purpose
// "batch", the file's name kept, at most 256 MB) stores an input file; GET
// files[?purpose=] lists the files newest first, GET files/{id} gives one,
// GET files/{id}/content its bytes. POST batches {input_file_id, endpoint,
// completion_window "24h" (or whole hours up to "168h", echoed), metadata}
// creates a batch; GET batches/{id},
// GET batches?limit=N&after=ID (newest first) and POST batches/{id}/cancel
// follow it. Ids are "file-<N>" and "batch_<N>", counted from 1 by each
// Server. A batch lives by Config.BatchClock, worked out from the clock on
// each request about it (no goroutine): validating for the first tenth of
// Config.BatchDelay, then failed or in_progress (its lines answered in
// file order, evenly, request_counts growing) until nine tenths,
// finalizing, and completed (or expired) at BatchDelay; a cancel stops the
// answering at once and is cancelling for a tenth of BatchDelay, then
// cancelled. An unpolled batch does not progress, and its lines are
// counted in Stats only when a request about it (or a list) catches it up.
//
// Each line is answered as the online endpoint would answer its body, with
// an id of its own call number: the same 400s, Config.Script (Call.BatchID
// and Call.CustomID set; Latency, ChunkInterval and the random Faults do
// not apply, nor the faults that damage a connection), and the plain answer
// for a line that asks for a stream. A 2xx answer goes to the output file
// as {"id":"batch_req_<N>","custom_id":…,"response":{"status_code":200,
// "request_id":"req_<N>","body":{…}},"error":null} and counts as served;
// any other to the error file in the same shape with its status and error
// body. A line whose url is not the batch's endpoint is a 400 (param
// "url"), and so is a stream under Config.BatchRefuseStream (message
// "stream is not supported in batch", param "stream"). A line that expires
// (Config.BatchExpireFraction) is in the error file of its expired batch as
// {"id":…,"custom_id":…,"response":null,"error":{"code":"batch_expired",
// "message":…}}, and counted in request_counts.failed. Output and error
// files (purpose "batch_output", named "<batch id>_output.jsonl" and
// "<batch id>_error.jsonl") exist only when they have a line. A failed
// batch lists its errors as {"object":"list","data":[{"code","message",
// "param","line"}]}: too_many_requests (Config.BatchMaxLines), mixed_models
// (Config.BatchOneModel), invalid_file (Config.BatchFailNth), and for a
// malformed file invalid_json_line, missing_required_parameter (custom_id,
// url), invalid_request (method, body), duplicate_custom_id, empty_file.
// Config.BatchStall holds an answer back after its effect, so that a test
// can stop a client there.
//
// A typical test:
//
//	s := fakeapi.Start(t, fakeapi.Config{
//		Key: "sk-test",
//		Script: func(c fakeapi.Call) fakeapi.Fault {
//			if c.Attempt == 1 {
//				return fakeapi.Fault{Status: 429, Header: map[string]string{"Retry-After": "0"}}
//			}
//			return fakeapi.Fault{}
//		},
//	})
//	// run the client against s.URL(), then:
//	st := s.Stats()
//	if st.ServedByKey["prompt-1"] != 1 { ... }
package fakeapi
