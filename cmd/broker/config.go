package main

import (
	"github.com/alphagov/cf-app-discovery/broker"
	"github.com/alphagov/cf-app-discovery/config"
)

// settings is the broker's configuration (README, "Configuration").
type settings struct {
	Port        int
	LogLevel    string
	Credentials broker.Credentials
	Catalog     config.Catalog
	CF          config.CF
	Store       config.Store
	PaaSDomain  string
}

// loadSettings reads the configuration and returns one error naming every
// problem.
func loadSettings(e *config.Env) (settings, error) {
	s := settings{
		Port:     e.Port(8080),
		LogLevel: e.LogLevel(),
		Credentials: broker.Credentials{
			Username: e.Required("BROKER_USERNAME"),
			Password: e.Required("BROKER_PASSWORD"),
		},
		Catalog:    e.Catalog(),
		CF:         e.CF(),
		Store:      e.Store(),
		PaaSDomain: e.Required("PAAS_DOMAIN"),
	}
	return s, e.Err()
}
