package postgres

// inOpenBatch is true of a request (of the statement's table requests)
// that belongs to an open provider batch: running in it, which nothing but
// recording its answer and collecting the batch may change. A request
// whose batch is collected is an ordinary one again; most requests never
// were in a batch, and the NULL test spares them the lookup.
const inOpenBatch = `(requests.provider_batch IS NOT NULL AND EXISTS (SELECT 1 FROM provider_batches b
	WHERE b.id = requests.provider_batch AND b.state <> 'collected'))`
