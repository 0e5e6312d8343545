// Package ccsim plays Cloud Controller's part around the broker, for the
// acceptance suite and the demo: it sends OSB requests with Cloud
// Controller's headers and bodies, and keeps the fake CF API's service
// bindings in step the way Cloud Controller does (a binding exists, in
// progress, while the broker works on it, and is marked for deletion
// before the broker is asked to unbind it).
package ccsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/alphagov/cf-app-discovery/acceptance/fakecf"
)

// Controller sends OSB requests to one broker.
type Controller struct {
	// Broker is the broker's base URL.
	Broker string
	// Username and Password are the broker's basic-auth credentials.
	Username, Password string
	// ServiceID and PlanID are the catalog ids; PlanGUID is the plan's guid
	// in the fake CF API.
	ServiceID, PlanID, PlanGUID string
	// OrgGUID, SpaceGUID and their names go into the bind context.
	OrgGUID, SpaceGUID, OrgName, SpaceName string
	// CF is the fake CF API whose bindings follow the OSB calls; nil
	// leaves it alone.
	CF *fakecf.Server
	// Client sends the OSB requests; nil means http.DefaultClient.
	Client *http.Client
}

// Response is a broker's answer.
type Response struct {
	// Status is the HTTP status, 0 when the broker did not answer.
	Status int
	// Body is the answer decoded as a JSON object, nil if it is not one.
	Body map[string]any
	// Raw is the answer as sent, or the transport error.
	Raw string
	// OrphanMitigation is the status of the unbind sent after a failed
	// bind, 0 when none was sent or it got no answer.
	OrphanMitigation int
}

// Provision creates a service instance, as `cf create-service` does.
func (c *Controller) Provision(instance string) Response {
	return c.do("PUT", "/v2/service_instances/"+instance+"?accepts_incomplete=true", map[string]any{
		"service_id": c.ServiceID, "plan_id": c.PlanID,
		"organization_guid": c.OrgGUID, "space_guid": c.SpaceGUID,
		"context": c.context(),
	})
}

// Bind binds app, as `cf bind-service` does.
func (c *Controller) Bind(instance, binding, app string) Response {
	return c.BindWithParameters(instance, binding, app, nil)
}

// BindWithParameters binds app with bind parameters, as `cf bind-service
// -c '<parameters as JSON>'` (or `parameters:` in a manifest) does; nil
// sends the empty object Cloud Controller sends without -c.
func (c *Controller) BindWithParameters(instance, binding, app string, parameters map[string]any) Response {
	if parameters == nil {
		parameters = map[string]any{}
	}
	return c.bind(instance, binding, app, map[string]any{
		"service_id": c.ServiceID, "plan_id": c.PlanID, "app_guid": app,
		"bind_resource": map[string]any{"app_guid": app, "space_guid": c.SpaceGUID},
		"context":       c.context(), "parameters": parameters,
	})
}

// CreateServiceKey asks for a binding without an app, as `cf
// create-service-key` does.
func (c *Controller) CreateServiceKey(instance, binding string) Response {
	return c.do("PUT", bindingPath(instance, binding), map[string]any{
		"service_id": c.ServiceID, "plan_id": c.PlanID,
		"bind_resource": map[string]any{"credential_client_id": "cc_service_key_client"},
		"context":       c.context(),
	})
}

// Unbind unbinds, as `cf unbind-service` (and `cf delete` of an app) does.
func (c *Controller) Unbind(instance, binding string) Response {
	c.markDeleting(binding)
	r := c.do("DELETE", bindingPath(instance, binding)+"?service_id="+c.ServiceID+"&plan_id="+c.PlanID+"&accepts_incomplete=true", nil)
	c.afterUnbind(binding, r.Status)
	return r
}

func (c *Controller) bind(instance, binding, app string, body map[string]any) Response {
	c.beforeBind(binding, app)
	r := c.do("PUT", bindingPath(instance, binding)+"?accepts_incomplete=true", body)
	if r.Status == 0 || r.Status >= 500 {
		// Orphan mitigation: after a 5xx, a timeout or no answer, Cloud
		// Controller asks the broker to unbind what it may have created.
		r.OrphanMitigation = c.do("DELETE", bindingPath(instance, binding)+"?service_id="+c.ServiceID+"&plan_id="+c.PlanID, nil).Status
	}
	c.afterBind(binding, r.Status)
	return r
}

func (c *Controller) beforeBind(binding, app string) {
	if c.CF != nil && app != "" {
		_, _ = c.CF.AddBinding(fakecf.Binding{GUID: binding, AppGUID: app, PlanGUID: c.PlanGUID,
			LastOperation: fakecf.LastOperation{Type: fakecf.OpCreate, State: fakecf.OpInProgress}})
	}
}

func (c *Controller) afterBind(binding string, status int) {
	if c.CF == nil {
		return
	}
	if status == http.StatusCreated || status == http.StatusOK {
		_ = c.CF.SetBindingLastOperation(binding, fakecf.LastOperation{Type: fakecf.OpCreate, State: fakecf.OpSucceeded})
	} else {
		_ = c.CF.DeleteBinding(binding)
	}
}

func (c *Controller) markDeleting(binding string) {
	if c.CF != nil {
		_ = c.CF.SetBindingLastOperation(binding, fakecf.LastOperation{Type: fakecf.OpDelete, State: fakecf.OpInProgress})
	}
}

func (c *Controller) afterUnbind(binding string, status int) {
	if c.CF == nil {
		return
	}
	if status == http.StatusOK || status == http.StatusGone {
		_ = c.CF.DeleteBinding(binding)
	} else {
		_ = c.CF.SetBindingLastOperation(binding, fakecf.LastOperation{Type: fakecf.OpDelete, State: fakecf.OpFailed})
	}
}

func (c *Controller) context() map[string]any {
	return map[string]any{"platform": "cloudfoundry", "organization_guid": c.OrgGUID, "space_guid": c.SpaceGUID,
		"organization_name": c.OrgName, "space_name": c.SpaceName}
}

func bindingPath(instance, binding string) string {
	return "/v2/service_instances/" + instance + "/service_bindings/" + binding
}

var requestCounter atomic.Int64

func (c *Controller) do(method, path string, body any) Response {
	var reader io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		reader = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.Broker+path, reader)
	if err != nil {
		return Response{Raw: err.Error()}
	}
	req.SetBasicAuth(c.Username, c.Password)
	req.Header.Set("X-Broker-API-Version", "2.15")
	req.Header.Set("X-Broker-API-Originating-Identity", "cloudfoundry eyJ1c2VyX2lkIjoiYWNjZXB0YW5jZSJ9")
	req.Header.Set("X-Broker-API-Request-Identity", fmt.Sprintf("00000000-0000-4000-8000-%012d", requestCounter.Add(1)))
	req.Header.Set("Content-Type", "application/json")
	return c.send(req)
}

func (c *Controller) send(req *http.Request) Response {
	client := c.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return Response{Raw: err.Error()}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := Response{Status: resp.StatusCode, Raw: string(raw)}
	_ = json.Unmarshal(raw, &r.Body)
	return r
}

// ServeHTTP forwards OSB requests (from curl, in the demo) to the broker
// unchanged, keeping the fake CF API's bindings in step around binds and
// unbinds as Cloud Controller would.
func (c *Controller) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	binding := ""
	if len(parts) == 5 && parts[3] == "service_bindings" {
		binding = parts[4]
	}
	switch {
	case binding != "" && r.Method == http.MethodPut:
		var details struct {
			AppGUID      string `json:"app_guid"`
			BindResource struct {
				AppGUID string `json:"app_guid"`
			} `json:"bind_resource"`
		}
		_ = json.Unmarshal(body, &details)
		app := details.BindResource.AppGUID
		if app == "" {
			app = details.AppGUID
		}
		c.beforeBind(binding, app)
	case binding != "" && r.Method == http.MethodDelete:
		c.markDeleting(binding)
	}
	req, err := http.NewRequest(r.Method, c.Broker+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req.Header = r.Header.Clone()
	resp := c.send(req)
	switch {
	case binding != "" && r.Method == http.MethodPut:
		c.afterBind(binding, resp.Status)
	case binding != "" && r.Method == http.MethodDelete:
		c.afterUnbind(binding, resp.Status)
	}
	if resp.Status == 0 {
		http.Error(w, "broker unreachable: "+resp.Raw, http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(resp.Status)
	_, _ = io.WriteString(w, resp.Raw)
}
