// Command target-updater reconciles every bound app with the CF API on a
// schedule, so that the bucket's target files follow scaling, stops, starts,
// renames, route changes and deletions.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"code.cloudfoundry.org/lager/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/robfig/cron/v3"

	"github.com/alphagov/cf-app-discovery/cfapi"
	"github.com/alphagov/cf-app-discovery/config"
	"github.com/alphagov/cf-app-discovery/lease"
	"github.com/alphagov/cf-app-discovery/reconcile"
	"github.com/alphagov/cf-app-discovery/store"
)

func main() {
	once := flag.Bool("once", false, "run one reconcile and exit: 0 on success, non-zero on failure")
	flag.Parse()
	os.Exit(run(*once))
}

func run(once bool) int {
	s, err := loadSettings(config.FromEnvironment())
	if err != nil {
		fmt.Fprintln(os.Stderr, "target-updater:", err)
		return 2
	}
	logger := config.Logger("target-updater", s.LogLevel, os.Stdout)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	rec, err := newReconciler(ctx, s, reg, logger)
	if err != nil {
		logger.Error("start", err)
		return 1
	}
	if once {
		if _, err := rec.Run(ctx); err != nil {
			return 1
		}
		return 0
	}

	var server *http.Server
	if s.Port != 0 {
		server, err = serve(s.Port, reg, logger)
		if err != nil {
			logger.Error("listen", err)
			return 1
		}
	}

	// Several instances may run; the one holding the lease reconciles.
	holder := lease.NewHolderID()
	ls, err := lease.New(lease.Options{Store: rec.Store, Holder: holder, Duration: s.LeaseDuration,
		Logger: logger, Metrics: lease.NewMetrics(reg)})
	if err != nil {
		logger.Error("lease", err)
		return 1
	}
	logger.Info("started", lager.Data{"schedule": s.Schedule, "port": s.Port, "holder": holder, "lease_duration": s.LeaseDuration.String()})
	leaseDone := make(chan struct{})
	go func() {
		defer close(leaseDone)
		ls.Run(ctx, func(term context.Context) { lead(term, rec, s.Schedule, logger) })
	}()

	<-ctx.Done()
	logger.Info("stopping")
	// CF waits 10 s after SIGTERM: let a running reconcile notice the
	// cancelled context and finish its current writes, then release the
	// lease.
	select {
	case <-leaseDone:
	case <-time.After(8 * time.Second):
	}
	if server != nil {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = server.Shutdown(shutdownCtx)
	}
	logger.Info("stopped")
	return 0
}

func newReconciler(ctx context.Context, s settings, reg prometheus.Registerer, logger lager.Logger) (*reconcile.Reconciler, error) {
	st, err := store.Open(ctx, s.Store, reg)
	if err != nil {
		return nil, err
	}
	cf, err := cfapi.New(ctx, cfapi.ConfigFor(s.CF, s.PlanID, reg))
	if err != nil {
		return nil, err
	}
	return &reconcile.Reconciler{
		Store: st, CF: cf, PaaSDomain: s.PaaSDomain, PlanID: s.PlanID,
		Workers: 16, Logger: logger, Metrics: reconcile.NewMetrics(reg),
	}, nil
}

// lead reconciles while this instance holds the lease: at once, then on the
// schedule, until term ends. It returns once the last run has stopped.
func lead(term context.Context, rec *reconcile.Reconciler, schedule string, logger lager.Logger) {
	runner := &runner{rec: rec, ctx: term, logger: logger}
	scheduler := cron.New(cron.WithChain(cron.Recover(cronLogger{logger}), cron.SkipIfStillRunning(cronLogger{logger})))
	if _, err := scheduler.AddJob(schedule, runner); err != nil {
		logger.Error("schedule", err)
		return
	}
	runner.Run()
	scheduler.Start()
	<-term.Done()
	<-scheduler.Stop().Done()
}

// runner is the cron job. The mutex makes "runs never overlap" hold for the
// run at start too, not only for the scheduled ones.
type runner struct {
	mu     sync.Mutex
	rec    *reconcile.Reconciler
	ctx    context.Context
	logger lager.Logger
}

func (r *runner) Run() {
	if !r.mu.TryLock() {
		r.logger.Info("skip-overlapping-run")
		return
	}
	defer r.mu.Unlock()
	if r.ctx.Err() != nil {
		return
	}
	// Failures are logged by the reconciler and counted in its metrics.
	_, _ = r.rec.Run(r.ctx)
}

func serve(port int, reg *prometheus.Registry, logger lager.Logger) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return nil, err
	}
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10}
	go func() {
		if err := server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("serve", err)
		}
	}()
	return server, nil
}

// cronLogger adapts lager to cron's logger interface.
type cronLogger struct{ logger lager.Logger }

func (l cronLogger) Info(msg string, kv ...any) {
	l.logger.Debug("cron", lager.Data{"msg": msg, "kv": fmt.Sprint(kv...)})
}

func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.logger.Error("cron", err, lager.Data{"msg": msg, "kv": fmt.Sprint(kv...)})
}
