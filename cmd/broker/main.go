// Command broker is the Open Service Broker of cf-app-discovery: `cf
// bind-service` makes it write the app's Prometheus target file.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/alphagov/cf-app-discovery/broker"
	"github.com/alphagov/cf-app-discovery/cfapi"
	"github.com/alphagov/cf-app-discovery/config"
	"github.com/alphagov/cf-app-discovery/httpsd"
	"github.com/alphagov/cf-app-discovery/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

func main() {
	os.Exit(run())
}

func run() int {
	s, err := loadSettings(config.FromEnvironment())
	if err != nil {
		fmt.Fprintln(os.Stderr, "broker:", err)
		return 2
	}
	logger := config.Logger("broker", s.LogLevel, os.Stdout)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	st, err := store.Open(ctx, s.Store, reg)
	if err != nil {
		logger.Error("open-store", err)
		return 1
	}
	cf, err := cfapi.New(ctx, cfapi.ConfigFor(s.CF, s.Catalog.PlanID, reg))
	if err != nil {
		logger.Error("connect-cf-api", err)
		return 1
	}
	monitoringUser := s.CF.Username
	if monitoringUser == "" {
		monitoringUser = s.CF.ClientID
	}
	b := broker.New(broker.Options{
		Catalog: broker.Catalog{
			ServiceID: s.Catalog.ServiceID, ServiceName: s.Catalog.ServiceName,
			PlanID: s.Catalog.PlanID, PlanName: s.Catalog.PlanName,
		},
		Store: st, Apps: cf, Bindings: cf, PaaSDomain: s.PaaSDomain, Addressing: s.Addressing,
		MonitoringUser: monitoringUser, MonitoringClient: s.CF.Username == "", Logger: logger, Registerer: reg,
	})

	ln, err := net.Listen("tcp", ":"+strconv.Itoa(s.Port))
	if err != nil {
		logger.Error("listen", err)
		return 1
	}
	handler := broker.NewHandler(b, logger, s.Credentials, reg, reg)
	if s.SD.Credentials.Enabled() {
		view := httpsd.NewView(httpsd.ViewOptions{Store: st, Logger: logger, Registerer: reg})
		go view.Run(ctx, s.SD.RefreshInterval)
		handler = httpsd.Mount(httpsd.NewHandler(view, s.SD.Credentials, reg), handler)
	}
	server := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// Cloud Controller gives a bind 60 s.
		WriteTimeout:   55 * time.Second,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 32 << 10,
	}
	served := make(chan error, 1)
	go func() { served <- server.Serve(ln) }()
	logger.Info("started", map[string]any{"port": s.Port, "http_sd": s.SD.Credentials.Enabled()})

	select {
	case err := <-served:
		if !errors.Is(err, http.ErrServerClosed) {
			logger.Error("serve", err)
			return 1
		}
	case <-ctx.Done():
	}
	logger.Info("stopping")
	// CF waits 10 s after SIGTERM: let binds in flight finish.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	if err := server.Shutdown(shutdownCtx); err != nil {
		logger.Error("shutdown", err)
		return 1
	}
	logger.Info("stopped")
	return 0
}
