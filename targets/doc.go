// Package targets is the domain of cf-app-discovery: the apps Prometheus
// scrapes, the file_sd target files rendered for them, the bucket they live
// in, the Cloud Foundry API look-ups that describe them and the reconcile
// that keeps the bucket true.
package targets
