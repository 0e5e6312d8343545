// Package router is a fake Cloud Foundry router (gorouter) for the
// acceptance suite and the demo, over the state of a fake CF API. Like the
// real one it sends a request to the app instance that X-CF-APP-INSTANCE
// or X-CF-PROCESS-INSTANCE names, and answers 400 with X-Cf-Routererror
// when that header is malformed or the instance does not exist. Behind it,
// each instance serves metrics only to a bearer token equal to its app
// guid, as the apps' metrics libraries do, and says which instance it is.
package router

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/alphagov/cf-app-discovery/acceptance/fakecf"
)

// Headers gorouter reads and writes.
const (
	AppInstanceHeader     = "X-CF-APP-INSTANCE"
	ProcessInstanceHeader = "X-CF-PROCESS-INSTANCE"
	RouterErrorHeader     = "X-Cf-Routererror"
)

// Router errors, as gorouter names them in RouterErrorHeader.
const (
	UnknownRoute                 = "unknown_route"
	InvalidAppInstanceHeader     = "invalid_cf_app_instance_header"
	InvalidProcessInstanceHeader = "invalid_cf_process_instance_header"
)

// Apps is where the router learns the apps it routes to (a
// *fakecf.Server).
type Apps interface {
	// AppRouting returns the app with this guid.
	AppRouting(appGUID string) (fakecf.Routing, bool)
	// ProcessRouting returns the app one of whose web processes has this
	// guid.
	ProcessRouting(processGUID string) (fakecf.Routing, bool)
}

// Router serves the apps' metrics endpoints.
type Router struct {
	Apps Apps
	// PaaSDomain makes <app name>.<PaaSDomain> reach the app, as the
	// platform's default route does.
	PaaSDomain string

	next atomic.Uint64 // spreads requests over a process's instances
}

// gorouter accepts lowercase GUIDs only, and an index for the app header.
var (
	appInstance     = regexp.MustCompile(`^([0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}):(\d+)$`)
	processInstance = regexp.MustCompile(`^([0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12})(?::(\d+))?$`)
)

// ServeHTTP answers a scrape as the CF router and the app instance would:
// 400 when the instance header is malformed or names no instance of an app
// with this host among its routes, 401 unless the bearer token is the app
// guid, 404 off the metrics path, the instance's metrics otherwise:
// OpenMetrics when Accept asks for it, the text format otherwise, gzipped
// when Accept-Encoding asks for it, as the apps' metrics libraries answer.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	in, routerError := rt.lookup(r, host)
	switch routerError {
	case "":
	case UnknownRoute:
		status, message := unknownInstance(r, host)
		routerFailure(w, status, routerError, message)
		return
	case InvalidAppInstanceHeader:
		routerFailure(w, http.StatusBadRequest, routerError, "Invalid X-CF-App-Instance Header")
		return
	default:
		routerFailure(w, http.StatusBadRequest, routerError, "Invalid X-CF-Process-Instance Header")
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+in.app.AppGUID {
		http.Error(w, "bearer token does not match the app", http.StatusUnauthorized)
		return
	}
	if !strings.HasSuffix(r.URL.Path, "metrics") {
		http.NotFound(w, r)
		return
	}
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "app_instance_info", Help: "The app instance that answered."},
		[]string{"name", "process", "index"})
	info.WithLabelValues(in.app.Name, in.process, strconv.Itoa(in.index)).Set(1)
	registry := prometheus.NewRegistry()
	registry.MustRegister(info)
	promhttp.HandlerFor(registry, promhttp.HandlerOpts{EnableOpenMetrics: true}).ServeHTTP(w, r)
}

// instance is the app instance a request reaches: an index of one web
// process of an app.
type instance struct {
	app     fakecf.Routing
	process string
	index   int
}

// lookup finds the instance a request names, or the router error, as
// gorouter does: the app header wins, and then the process header is not
// read.
func (rt *Router) lookup(r *http.Request, host string) (instance, string) {
	if v := r.Header.Get(AppInstanceHeader); v != "" {
		m := appInstance.FindStringSubmatch(v)
		if m == nil {
			return instance{}, InvalidAppInstanceHeader
		}
		return rt.byApp(m[1], m[2], host)
	}
	if v := r.Header.Get(ProcessInstanceHeader); v != "" {
		m := processInstance.FindStringSubmatch(v)
		if m == nil {
			return instance{}, InvalidProcessInstanceHeader
		}
		return rt.byProcess(m[1], m[2], host)
	}
	return instance{}, UnknownRoute
}

// byApp finds an app's instance. gorouter takes the last endpoint of the
// route whose app guid and index match. While a deployment runs, two web
// processes both have an instance 0; the newer one registered last, so the
// fake picks the newest process that has the index.
func (rt *Router) byApp(appGUID, index, host string) (instance, string) {
	i, err := strconv.Atoi(index)
	app, ok := rt.Apps.AppRouting(appGUID)
	if err != nil || !ok || !rt.routes(app, host) {
		return instance{}, UnknownRoute
	}
	for _, p := range slices.Backward(app.Processes) {
		if i < p.Instances {
			return instance{app, p.GUID, i}, ""
		}
	}
	return instance{}, UnknownRoute
}

// byProcess finds a process's instance. Without an index gorouter balances
// over the process's instances; the fake takes them in turn.
func (rt *Router) byProcess(processGUID, index, host string) (instance, string) {
	app, ok := rt.Apps.ProcessRouting(processGUID)
	if !ok || !rt.routes(app, host) {
		return instance{}, UnknownRoute
	}
	at := slices.IndexFunc(app.Processes, func(p fakecf.Process) bool { return p.GUID == processGUID })
	if at < 0 {
		return instance{}, UnknownRoute
	}
	instances := app.Processes[at].Instances
	if index == "" {
		if instances == 0 {
			return instance{}, UnknownRoute
		}
		return instance{app, processGUID, int(rt.next.Add(1)-1) % instances}, ""
	}
	i, err := strconv.Atoi(index)
	if err != nil || i >= instances {
		return instance{}, UnknownRoute
	}
	return instance{app, processGUID, i}, ""
}

// routes reports whether the router sends host to the app: the app runs
// and host is one of its routes or its default route.
func (rt *Router) routes(app fakecf.Routing, host string) bool {
	return app.Started() && (host == app.Name+"."+rt.PaaSDomain || slices.Contains(app.Addresses, host))
}

// unknownInstance is gorouter's status and message for a request whose
// route or instance does not exist: 400 when an instance header named one,
// 404 otherwise. (The fake routes only requests that name an instance.)
func unknownInstance(r *http.Request, host string) (int, string) {
	status, message := http.StatusNotFound, fmt.Sprintf("Requested route ('%s') does not exist.", host)
	if m := appInstance.FindStringSubmatch(r.Header.Get(AppInstanceHeader)); m != nil {
		status, message = http.StatusBadRequest, fmt.Sprintf("Requested instance ('%s') with guid ('%s') does not exist for route ('%s')", m[2], m[1], host)
	}
	if v := r.Header.Get(ProcessInstanceHeader); v != "" {
		var guid, index string
		if m := processInstance.FindStringSubmatch(v); m != nil {
			guid, index = m[1], m[2]
		}
		status, message = http.StatusBadRequest, fmt.Sprintf("Requested instance ('%s') with process guid ('%s') does not exist for route ('%s')", index, guid, host)
		if index == "" {
			message = fmt.Sprintf("Requested instance with process guid ('%s') does not exist for route ('%s')", guid, host)
		}
	}
	return status, message
}

// routerFailure answers as gorouter's plain-text error writer does.
func routerFailure(w http.ResponseWriter, status int, routerError, message string) {
	w.Header().Set(RouterErrorHeader, routerError)
	w.Header().Set("Cache-Control", "no-cache, no-store")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	fmt.Fprintf(w, "%d %s: %s\n", status, http.StatusText(status), message)
}
