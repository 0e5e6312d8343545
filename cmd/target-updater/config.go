package main

import (
	"fmt"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/alphagov/cf-app-discovery/config"
	"github.com/alphagov/cf-app-discovery/targets"
)

// settings is the target updater's configuration (README, "Configuration").
type settings struct {
	Port       int // 0: no HTTP listener
	LogLevel   string
	CF         config.CF
	Store      config.Store
	PlanID     string
	PaaSDomain string
	Schedule   string
	Addressing targets.Addressing
	// WatchInterval is how often the updater follows CF's audit events and
	// deployments between reconciles; 0 turns watching off.
	WatchInterval time.Duration
	// LeaseDuration is the period of the lease that lets one of several
	// updater instances reconcile.
	LeaseDuration time.Duration
}

const (
	defaultSchedule      = "@every 5m"
	defaultWatchInterval = 10 * time.Second
	// minWatchInterval keeps a mistyped interval from hammering the CF API.
	minWatchInterval     = time.Second
	defaultLeaseDuration = 30 * time.Second
	// minLeaseDuration keeps renewals (every third of the period) from
	// hammering the bucket.
	minLeaseDuration = time.Second
)

// loadSettings reads the configuration and returns one error naming every
// problem.
func loadSettings(e *config.Env) (settings, error) {
	s := settings{
		Port:          e.Port(0),
		LogLevel:      e.LogLevel(),
		CF:            e.CF(),
		Store:         e.Store(),
		PlanID:        e.Required("PLAN_ID"),
		PaaSDomain:    e.Required("PAAS_DOMAIN"),
		Schedule:      e.String("UPDATE_SCHEDULE", ""),
		Addressing:    addressing(e),
		WatchInterval: e.Duration("WATCH_INTERVAL", defaultWatchInterval, 0),
		LeaseDuration: e.Duration("LEASE_DURATION", defaultLeaseDuration, minLeaseDuration),
	}
	if s.WatchInterval > 0 && s.WatchInterval < minWatchInterval {
		e.Problem("WATCH_INTERVAL must be 0 (off) or at least %s, got %s", minWatchInterval, s.WatchInterval)
	}
	if s.Schedule == "" {
		s.Schedule = defaultSchedule
		// The Ruby service's setting, still accepted.
		if _, ok := e.Lookup("UPDATE_TARGETS_RATE_SECONDS"); ok {
			s.Schedule = fmt.Sprintf("@every %ds", e.Int("UPDATE_TARGETS_RATE_SECONDS", 300, 60, 86400))
		}
	}
	if _, err := cron.ParseStandard(s.Schedule); err != nil {
		e.Problem("UPDATE_SCHEDULE %q is not a cron spec: %v", s.Schedule, err)
	}
	return s, e.Err()
}

// addressing reads INSTANCE_ADDRESSING.
func addressing(e *config.Env) targets.Addressing {
	a, err := targets.ParseAddressing(e.String("INSTANCE_ADDRESSING", ""))
	if err != nil {
		e.Problem("INSTANCE_ADDRESSING %v", err)
	}
	return a
}
