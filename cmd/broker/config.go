package main

import (
	"github.com/alphagov/cf-app-discovery/broker"
	"github.com/alphagov/cf-app-discovery/config"
	"github.com/alphagov/cf-app-discovery/targets"
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
	Addressing  targets.Addressing
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
		Addressing: addressing(e),
	}
	return s, e.Err()
}

// addressing reads INSTANCE_ADDRESSING: the broker renders target files as
// the updater does.
func addressing(e *config.Env) targets.Addressing {
	a, err := targets.ParseAddressing(e.String("INSTANCE_ADDRESSING", ""))
	if err != nil {
		e.Problem("INSTANCE_ADDRESSING %v", err)
	}
	return a
}
