// Package reconcile makes the bucket match Cloud Foundry: every bound app
// that the CF API shows has exactly one target file, rendered from its
// current state, and nothing else has one.
package reconcile
