// Package router is a fake Cloud Foundry router for the acceptance suite and
// the demo. Like the real one it picks the app instance named by
// X-CF-APP-INSTANCE and answers 404 with X-Cf-Routererror: unknown_route
// when that instance does not exist; behind it, each instance serves
// metrics only to a bearer token equal to its app guid, and in the format
// and compression the scrape asks for, as the apps' metrics libraries do.
package router

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/alphagov/cf-app-discovery/scrape"
	"github.com/alphagov/cf-app-discovery/targets"
)

// Apps is where the router learns the current state of apps.
type Apps interface {
	App(ctx context.Context, appGUID string) (targets.App, error)
}

// Router serves the apps' metrics endpoints.
type Router struct {
	Apps Apps
	// PaaSDomain makes <app name>.<PaaSDomain> reach the app, as the
	// platform's default route does.
	PaaSDomain string
}

// ServeHTTP answers a scrape as the CF router and the app instance would:
// 404 unknown_route unless the instance exists and the host is the app's,
// 401 unless the bearer token is the app guid, metrics otherwise:
// OpenMetrics when Accept asks for it, the text format otherwise, gzipped
// when Accept-Encoding asks for it.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	guid, index, ok := parseInstance(r.Header.Get(scrape.HeaderAppInstance))
	if !ok {
		unknownRoute(w)
		return
	}
	app, err := rt.Apps.App(r.Context(), guid)
	if err != nil || !app.Started() || index >= app.Instances() || !rt.serves(app, r.Host) {
		unknownRoute(w)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+guid {
		http.Error(w, "bearer token does not match the app", http.StatusUnauthorized)
		return
	}
	if !strings.HasSuffix(r.URL.Path, "metrics") {
		http.NotFound(w, r)
		return
	}
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "app_instance_info", Help: "The app instance that answered."},
		[]string{"name", "index"})
	info.WithLabelValues(app.Name, strconv.Itoa(index)).Set(1)
	registry := prometheus.NewRegistry()
	registry.MustRegister(info)
	promhttp.HandlerFor(registry, promhttp.HandlerOpts{EnableOpenMetrics: true}).ServeHTTP(w, r)
}

// serves reports whether host is one of app's routes or its default route.
func (rt *Router) serves(app targets.App, host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == app.Name+"."+rt.PaaSDomain {
		return true
	}
	for _, route := range app.Routes {
		if !route.Internal && route.Address() == host {
			return true
		}
	}
	return false
}

func parseInstance(v string) (string, int, bool) {
	guid, idx, found := strings.Cut(v, ":")
	if !found || !scrape.ValidGUID(guid) {
		return "", 0, false
	}
	n, err := strconv.Atoi(idx)
	return guid, n, err == nil && n >= 0
}

func unknownRoute(w http.ResponseWriter) {
	w.Header().Set(scrape.HeaderRouterError, "unknown_route")
	http.Error(w, "404 Not Found: Requested route does not exist.", http.StatusNotFound)
}
