// Package store keeps target files and the broker's records in a bucket: an
// S3 bucket or a local directory with the same layout, both behind Store,
// with their metrics. The keys are built in keys.go and nowhere else, and
// Bucket keeps the rules of the layout (where a target file goes, how it
// moves, how records are written); docs/design.md describes them.
package store
