package main

import (
	"time"

	"github.com/alphagov/cf-app-discovery/broker"
	"github.com/alphagov/cf-app-discovery/config"
	"github.com/alphagov/cf-app-discovery/httpsd"
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
	SD          sdSettings
}

// sdSettings configure the http_sd endpoint, which is off unless both
// credentials are set.
type sdSettings struct {
	Credentials     httpsd.Credentials
	RefreshInterval time.Duration
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
	s.SD = loadSD(e, s.Credentials)
	return s, e.Err()
}

// loadSD reads SD_USERNAME, SD_PASSWORD and SD_REFRESH_INTERVAL (default
// 15s, at least 1s).
func loadSD(e *config.Env, osb broker.Credentials) sdSettings {
	sd := sdSettings{
		Credentials: httpsd.Credentials{
			Username: e.String("SD_USERNAME", ""),
			Password: e.String("SD_PASSWORD", ""),
		},
		RefreshInterval: e.Duration("SD_REFRESH_INTERVAL", 15*time.Second, time.Second),
	}
	c := sd.Credentials
	if (c.Username == "") != (c.Password == "") {
		e.Problem("SD_USERNAME and SD_PASSWORD go together: set both to serve http_sd, or neither")
	}
	if c.Password != "" && c.Password == osb.Password {
		e.Problem("SD_PASSWORD must differ from BROKER_PASSWORD: the OSB credentials never open http_sd")
	}
	return sd
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
