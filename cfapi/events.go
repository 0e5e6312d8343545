package cfapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/cloudfoundry/go-cfclient/v3/resource"
)

// AuditEvent is one audit event as the CF API lists it: what happened
// (Type), when (CreatedAt, in whole seconds), and to what.
type AuditEvent struct {
	GUID      string
	Type      string
	CreatedAt time.Time
	// TargetGUID is what the event is about: the app, for app events
	// (process events included).
	TargetGUID string
	// ProcessGUID is the process of a process event ("" for others).
	ProcessGUID string
}

// Deployment is a rolling or canary deployment of an app that is still
// running.
type Deployment struct {
	GUID    string
	AppGUID string
	// NewProcessGUIDs are the processes the deployment brings up.
	NewProcessGUIDs []string
	// Reason is the status reason: DEPLOYING, PAUSED (a canary waiting
	// for `cf continue-deployment`) or CANCELING.
	Reason string
}

// eventTimeLayout is how the CF API writes and filters on timestamps:
// whole seconds, UTC.
const eventTimeLayout = "2006-01-02T15:04:05Z"

// AuditEvents lists, oldest first, the audit events of the given types
// created at or after since (in whole seconds: the API filters on no finer
// time), in every space the user can see:
// /v3/audit_events?types=…&created_ats[gte]=…&order_by=created_at, 5000 a
// page. Events of since's own second are listed again on every call; the
// caller drops those it has handled, by GUID.
func (c *Client) AuditEvents(ctx context.Context, since time.Time, types []string) ([]AuditEvent, error) {
	if len(types) == 0 {
		return nil, nil
	}
	return listAllOf(ctx, c, "/v3/audit_events", func(e *auditEventResource) (AuditEvent, bool) {
		return AuditEvent{GUID: e.GUID, Type: e.Type, CreatedAt: e.CreatedAt,
			TargetGUID: e.Target.GUID, ProcessGUID: e.Data.ProcessGUID}, true
	},
		"types", strings.Join(types, ","),
		"created_ats[gte]", since.UTC().Format(eventTimeLayout),
		"order_by", "created_at")
}

// ActiveDeployments lists the deployments still running, in every space the
// user can see: /v3/deployments?status_values=ACTIVE, 5000 a page. The end
// of a deployment writes no audit event; it shows as its leaving this list.
func (c *Client) ActiveDeployments(ctx context.Context) ([]Deployment, error) {
	return listAllOf(ctx, c, "/v3/deployments", func(d *deploymentResource) (Deployment, bool) {
		dep := Deployment{GUID: d.GUID, AppGUID: guidOf(&d.Relationships.App), Reason: d.Status.Reason}
		for _, p := range d.NewProcesses {
			dep.NewProcessGUIDs = append(dep.NewProcessGUIDs, p.GUID)
		}
		return dep, d.Status.Value == "ACTIVE"
	}, "status_values", "ACTIVE")
}

// listAllOf is listAll for listings without included resources.
func listAllOf[R, T any](ctx context.Context, c *Client, path string, keep func(*R) (T, bool), params ...string) ([]T, error) {
	items, _, err := listAll(ctx, c, path, keep, params...)
	return items, err
}

// Now is the CF API's clock, from the Date header of its answer to the
// smallest audit event listing (one event): the clock of the servers that
// stamp the events, known to the second. A cursor over audit events starts
// from this clock, not the local one.
func (c *Client) Now(ctx context.Context) (time.Time, error) {
	const path = "/v3/audit_events"
	var date time.Time
	err := c.http.answer(ctx, c.api+path+"?per_page=1", path, func(resp *http.Response) (err error) {
		date, err = http.ParseTime(resp.Header.Get("Date"))
		if err != nil {
			return errors.New("no Date header")
		}
		return nil
	})
	return date.UTC(), err
}

// The parts of audit event and deployment resources this client reads.
type (
	auditEventResource struct {
		GUID      string    `json:"guid"`
		Type      string    `json:"type"`
		CreatedAt time.Time `json:"created_at"`
		Target    struct {
			GUID string `json:"guid"`
		} `json:"target"`
		// Data is what Cloud Controller keeps in the event's metadata
		// column: process events name their process here.
		Data struct {
			ProcessGUID string `json:"process_guid"`
		} `json:"data"`
	}
	deploymentResource struct {
		GUID   string `json:"guid"`
		Status struct {
			Value  string `json:"value"`
			Reason string `json:"reason"`
		} `json:"status"`
		NewProcesses []struct {
			GUID string `json:"guid"`
		} `json:"new_processes"`
		Relationships struct {
			App resource.ToOneRelationship `json:"app"`
		} `json:"relationships"`
	}
)
