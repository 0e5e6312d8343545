// Package store keeps target files and the broker's records in a bucket: an
// S3 bucket or a local directory with the same layout, both behind Store,
// with their metrics. The layout (which key holds what) is built here and
// nowhere else; docs/design.md describes it and its invariants.
package store
