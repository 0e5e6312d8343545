// Package cfapi reads what cf-app-discovery needs from the Cloud Foundry API
// v3: the apps bound to our plan, their processes, routes, org and space,
// and the bindings themselves. Every call returns a complete answer or an
// error, never a partial listing.
package cfapi
