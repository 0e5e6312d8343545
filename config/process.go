package config

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/alphagov/cf-app-discovery/targets"
)

// Registry returns the registry behind a program's /metrics, holding the
// Go runtime and process metrics; the program registers its own on it.
func Registry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// ClientConfig is the CF API client configuration for these settings, with
// the plan the client lists bindings of and the registry of its metrics.
func (c CF) ClientConfig(planID string, reg prometheus.Registerer) targets.CFConfig {
	return targets.CFConfig{
		API: c.API, Username: c.Username, Password: c.Password,
		ClientID: c.ClientID, ClientSecret: c.ClientSecret,
		PlanID: planID, Registerer: reg,
	}
}
