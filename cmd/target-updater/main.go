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
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
	"time"

	"code.cloudfoundry.org/lager/v3"
	"github.com/KimMachineGun/automemlimit/memlimit"
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
	memoryLimit, err := limitMemory(memlimit.FromCgroup)
	if err != nil {
		logger.Info("no-memory-limit", lager.Data{"error": err.Error()})
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	rec, cf, err := newReconciler(ctx, s, reg, logger)
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

	// The watch, when on, is made once, for its metrics, and begun at each
	// term of the lease.
	var watch *reconcile.Watch
	if s.WatchInterval > 0 {
		watch = &reconcile.Watch{CF: cf, Apps: rec, Logger: logger}
		watch.Metrics = reconcile.NewWatchMetrics(reg, watch)
	}
	// Several instances may run; the one holding the lease reconciles and
	// watches.
	holder := lease.NewHolderID()
	ls, err := lease.New(lease.Options{Store: rec.Store, Holder: holder, Duration: s.LeaseDuration,
		Logger: logger, Metrics: lease.NewMetrics(reg)})
	if err != nil {
		logger.Error("lease", err)
		return 1
	}
	logger.Info("started", lager.Data{"schedule": s.Schedule, "watch_interval": s.WatchInterval.String(), "port": s.Port,
		"holder": holder, "lease_duration": s.LeaseDuration.String(), "memory_limit": memoryLimit})
	leaseDone := make(chan struct{})
	go func() {
		defer close(leaseDone)
		ls.Run(ctx, func(term context.Context) { lead(term, rec, watch, s, logger) })
	}()

	<-ctx.Done()
	logger.Info("stopping")
	// CF waits 10 s after SIGTERM: let a running reconcile or watch notice
	// the cancelled context and finish its current writes, then release the
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

func newReconciler(ctx context.Context, s settings, reg prometheus.Registerer, logger lager.Logger) (*reconcile.Reconciler, *cfapi.Client, error) {
	st, err := store.Open(ctx, s.Store, reg)
	if err != nil {
		return nil, nil, err
	}
	cf, err := cfapi.New(ctx, cfapi.ConfigFor(s.CF, s.PlanID, reg))
	if err != nil {
		return nil, nil, err
	}
	return &reconcile.Reconciler{
		Store: st, CF: cf, PaaSDomain: s.PaaSDomain, Addressing: s.Addressing, PlanID: s.PlanID,
		Workers: 16, Logger: logger, Metrics: reconcile.NewMetrics(reg),
	}, cf, nil
}

// lead reconciles and watches while this instance holds the lease: a full
// reconcile at once, then on the schedule, and the watch in between, until
// term ends. It returns once the last reconcile and watch have stopped.
func lead(term context.Context, rec *reconcile.Reconciler, watch *reconcile.Watch, s settings, logger lager.Logger) {
	runner := &runner{rec: rec, watch: watch, ctx: term, logger: logger}
	scheduler := cron.New(cron.WithChain(cron.Recover(cronLogger{logger}), cron.SkipIfStillRunning(cronLogger{logger})))
	if _, err := scheduler.AddJob(s.Schedule, runner); err != nil {
		logger.Error("schedule", err)
		return
	}
	if watch != nil {
		// The watch starts where the term's first full reconcile's reads
		// start, by the CF API's clock. If the clock cannot be read now,
		// the first watch reads it.
		if err := watch.Begin(term); err != nil {
			logger.Error("watch-begin", err)
		}
	}
	runner.Run()
	scheduler.Start()
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		if watch != nil {
			runner.watchEvery(s.WatchInterval)
		}
	}()
	<-term.Done()
	<-scheduler.Stop().Done()
	<-watching
}

// The watch's refreshes list the bindings of the apps they refresh only.
var _ reconcile.AppsBindingsReader = (*cfapi.Client)(nil)

// runner runs the full reconciles (it is the cron job) and the watches,
// one at a time: the mutex keeps a watch's refresh from writing while a
// reconcile does, so that neither undoes the other's writes. Cron skips a
// reconcile while the last one runs; a watch or a reconcile that finds the
// other running waits for it.
type runner struct {
	mu     sync.Mutex
	rec    *reconcile.Reconciler
	watch  *reconcile.Watch
	ctx    context.Context
	logger lager.Logger
}

// Run runs a full reconcile.
func (r *runner) Run() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx.Err() != nil {
		return
	}
	// Failures are logged by the reconciler and counted in its metrics.
	_, _ = r.rec.Run(r.ctx)
	// A full reconcile reads every app, binding and listed file, and the
	// updater then idles until the next: give the memory back now rather
	// than hold it at the run's peak until then (one collection of what
	// the reconciler keeps between runs, some 30 MB at 50,000 apps).
	debug.FreeOSMemory()
}

// watchEvery watches every interval until the context ends. A watch that
// takes longer than interval delays the next; none pile up.
func (r *runner) watchEvery(interval time.Duration) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-ticker.C:
		}
		r.mu.Lock()
		if r.ctx.Err() == nil {
			// Failures are logged by the watch and counted in its metrics.
			_, _ = r.watch.Run(r.ctx)
		}
		r.mu.Unlock()
	}
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
