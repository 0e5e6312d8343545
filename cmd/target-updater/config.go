package main

import (
	"fmt"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/alphagov/cf-app-discovery/config"
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
	// LeaseDuration is the period of the lease that lets one of several
	// updater instances reconcile.
	LeaseDuration time.Duration
}

const (
	defaultSchedule      = "@every 5m"
	defaultLeaseDuration = 30 * time.Second
	// minLeaseDuration keeps renewals (every third of the period) from
	// hammering the bucket.
	minLeaseDuration = time.Second
)

// loadSettings reads the configuration and returns one error naming every
// problem.
func loadSettings(e *config.Env) (settings, error) {
	s := settings{
		Port:       e.Port(0),
		LogLevel:   e.LogLevel(),
		CF:         e.CF(),
		Store:      e.Store(),
		PlanID:     e.Required("PLAN_ID"),
		PaaSDomain: e.Required("PAAS_DOMAIN"),
		Schedule:   e.String("UPDATE_SCHEDULE", ""),

		LeaseDuration: e.Duration("LEASE_DURATION", defaultLeaseDuration, minLeaseDuration),
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
