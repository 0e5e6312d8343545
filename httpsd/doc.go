// Package httpsd serves the target groups of every active/ target file to
// Prometheus' http_sd_configs, so that a Prometheus host needs neither a
// bucket sync nor AWS credentials.
//
// A View keeps the groups in memory and refreshes them from the bucket by
// listing active/ and reading only the objects whose ETag changed; a Handler
// answers GET /v1/targets from the view, behind basic auth of its own. The
// view answers 503 until it has read the bucket once, and a failed refresh
// keeps what the view had: a bucket outage never empties Prometheus.
package httpsd
