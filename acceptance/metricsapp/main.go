// Command metricsapp is the sample app the acceptance suite pushes to a
// real Cloud Foundry: it serves Prometheus text on /metrics, and, like a
// tenant's app, answers only scrapes that carry its own guid as bearer
// token (what paas-proxy sends).
package main

import (
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"time"
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
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		if appGUID != "" && r.Header.Get("Authorization") != "Bearer "+appGUID {
			http.Error(w, "a bearer token with this app's guid is required", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# HELP sample_up Always 1.\n# TYPE sample_up gauge\nsample_up{cf_instance_index=%q} 1\n", index)
	})
	return mux
}
