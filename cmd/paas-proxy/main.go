// Command paas-proxy is the forward proxy on each Prometheus host through
// which Prometheus scrapes app instances on Cloud Foundry. It replaces the
// nginx of the Ruby service.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"code.cloudfoundry.org/lager/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/alphagov/cf-app-discovery/config"
	"github.com/alphagov/cf-app-discovery/proxy"
)

func main() {
	os.Exit(run())
}

func run() int {
	s, err := loadSettings(config.FromEnvironment())
	if err != nil {
		fmt.Fprintln(os.Stderr, "paas-proxy:", err)
		return 2
	}
	logger := config.Logger("paas-proxy", s.LogLevel, os.Stdout)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	p, err := proxy.New(proxy.Options{
		AllowList:      s.AllowList,
		UpstreamScheme: s.UpstreamScheme,
		UpstreamAddr:   s.UpstreamAddr,
		Registerer:     reg,
		Metrics:        promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}),
		Logger:         logger,
	})
	if err != nil {
		logger.Error("start", err)
		return 1
	}
	defer p.CloseIdleConnections()

	ln, err := net.Listen("tcp", s.ListenAddr)
	if err != nil {
		logger.Error("listen", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	server := p.Server()
	served := make(chan error, 1)
	go func() { served <- server.Serve(ln) }()
	logger.Info("started", lager.Data{
		"addr": ln.Addr().String(), "allowed_domains": s.AllowList.String(),
		"upstream_scheme": s.UpstreamScheme, "upstream_addr": s.UpstreamAddr,
	})

	select {
	case err := <-served:
		logger.Error("serve", err)
		return 1
	case <-ctx.Done():
	}
	logger.Info("stopping")
	// Let scrapes in flight finish; Prometheus' own timeout is about 10 s.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := server.ShutdownWithContext(shutdownCtx); err != nil {
		logger.Error("shutdown", err)
	}
	if err := <-served; err != nil {
		logger.Error("serve", err)
	}
	logger.Info("stopped")
	return 0
}
