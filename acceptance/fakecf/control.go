package fakecf

import (
	"errors"
	"net/http"
	"strconv"
)

// controlPrefix is where the fake's own control endpoints live, apart from
// anything the CF API serves.
const controlPrefix = "/fake/"

// controlHandler serves the tenant's actions over HTTP, for the demo and
// benchmarks that run the fake in another process. No token is needed; the
// requests are neither counted nor delayed nor failed by faults.
//
//	POST /fake/apps/{guid}/deploy?strategy=rolling|canary  Deploy (default rolling)
//	POST /fake/apps/{guid}/deploy/step                     StepDeployment
//	POST /fake/apps/{guid}/deploy/finish                   FinishDeployment
//	POST /fake/apps/{guid}/deploy/continue                 ContinueDeployment
//	POST /fake/apps/{guid}/deploy/cancel                   CancelDeployment
//	POST /fake/apps/{guid}/scale?instances=N               Scale
//	POST /fake/apps/{guid}/stop, /start, /restart          StopApp, StartApp, RestartApp
//	GET  /fake/apps/{guid}/processes                       WebProcesses
//
// Deployment actions answer the deployment as JSON, the others 204; an
// unknown app gets 404, an action the app's state refuses 422.
func (s *Server) controlHandler() http.Handler {
	mux := http.NewServeMux()
	deployment := func(action func(appGUID string) (Deployment, error)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			d, err := action(r.PathValue("guid"))
			if err != nil {
				controlError(w, err)
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{
				"guid": d.GUID, "app_guid": d.AppGUID, "strategy": d.Strategy, "state": d.State,
				"status":           map[string]string{"value": d.StatusValue, "reason": d.StatusReason},
				"new_process_guid": d.NewProcessGUID,
			})
		}
	}
	done := func(action func(appGUID string) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if err := action(r.PathValue("guid")); err != nil {
				controlError(w, err)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}
	}
	mux.HandleFunc("POST /fake/apps/{guid}/deploy", func(w http.ResponseWriter, r *http.Request) {
		strategy := r.URL.Query().Get("strategy")
		if strategy == "" {
			strategy = Rolling
		}
		deployment(func(app string) (Deployment, error) { return s.Deploy(app, strategy) })(w, r)
	})
	mux.Handle("POST /fake/apps/{guid}/deploy/step", deployment(s.StepDeployment))
	mux.Handle("POST /fake/apps/{guid}/deploy/finish", deployment(s.FinishDeployment))
	mux.Handle("POST /fake/apps/{guid}/deploy/continue", deployment(s.ContinueDeployment))
	mux.Handle("POST /fake/apps/{guid}/deploy/cancel", deployment(s.CancelDeployment))
	mux.HandleFunc("POST /fake/apps/{guid}/scale", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("instances"))
		if err != nil || n < 0 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "instances must be a whole number, 0 or more"})
			return
		}
		done(func(app string) error { return s.Scale(app, n) })(w, r)
	})
	mux.Handle("POST /fake/apps/{guid}/stop", done(s.StopApp))
	mux.Handle("POST /fake/apps/{guid}/start", done(s.StartApp))
	mux.Handle("POST /fake/apps/{guid}/restart", done(s.RestartApp))
	mux.HandleFunc("GET /fake/apps/{guid}/processes", func(w http.ResponseWriter, r *http.Request) {
		procs, err := s.WebProcesses(r.PathValue("guid"))
		if err != nil {
			controlError(w, err)
			return
		}
		out := make([]map[string]any, len(procs))
		for i, p := range procs {
			out[i] = map[string]any{"guid": p.GUID, "instances": p.Instances, "created_at": stamp(p.CreatedAt)}
		}
		writeJSON(w, http.StatusOK, out)
	})
	return mux
}

func controlError(w http.ResponseWriter, err error) {
	status := http.StatusBadRequest
	switch {
	case errors.Is(err, ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, ErrInvalidState):
		status = http.StatusUnprocessableEntity
	}
	writeJSON(w, status, map[string]string{"error": err.Error()})
}
