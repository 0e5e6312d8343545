// Package targets is the domain of cf-app-discovery: the apps Prometheus
// scrapes, the routes they are reached by, which route is scraped, and the
// file_sd target groups rendered for them. It knows nothing of where the
// groups are stored or how the apps were read; docs/design.md describes the
// target format and its rules.
package targets
