// Command metricsapp is the sample app the acceptance suite pushes to a
// real Cloud Foundry: it serves metrics on /metrics and, like a tenant's
// app, answers only scrapes that carry its own guid as bearer token (what
// paas-proxy sends), in the format and compression the scrape asks for
// (OpenMetrics or the text format; gzip or not), as client libraries do.
package main

import (
	"encoding/json"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	var vcap struct {
		ApplicationID string `json:"application_id"`
	}
	if v := os.Getenv("VCAP_APPLICATION"); v != "" {
		if err := json.Unmarshal([]byte(v), &vcap); err != nil {
			log.Fatalf("reading VCAP_APPLICATION: %v", err)
		}
	}
	srv := &http.Server{
		Addr:              ":" + port,
		Handler:           handler(vcap.ApplicationID, os.Getenv("CF_INSTANCE_INDEX")),
		ReadHeaderTimeout: 10 * time.Second,
	}
	log.Fatal(srv.ListenAndServe())
}

// handler serves /metrics for the app appGUID (any caller when empty)
// and instance index.
func handler(appGUID, index string) http.Handler {
	registry := prometheus.NewRegistry()
	registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sample_up", Help: "Always 1.",
		ConstLabels: prometheus.Labels{"cf_instance_index": index}}, func() float64 { return 1 }))
	metrics := promhttp.HandlerFor(registry, promhttp.HandlerOpts{EnableOpenMetrics: true})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		if appGUID != "" && r.Header.Get("Authorization") != "Bearer "+appGUID {
			http.Error(w, "a bearer token with this app's guid is required", http.StatusUnauthorized)
			return
		}
		metrics.ServeHTTP(w, r)
	})
	return mux
}
