package cfapi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cloudfoundry/go-cfclient/v3/resource"

	"github.com/alphagov/cf-app-discovery/scrape"
)

// Binding is an app binding as the CF API lists it.
type Binding struct {
	GUID      string
	AppGUID   string
	PlanGUID  string
	CreatedAt time.Time
	// Deleting is true while Cloud Controller is unbinding it (last
	// operation "delete" in progress): CC marks it so before calling the
	// broker, and removes it once the broker has answered.
	Deleting bool
}

// bindingResource is the fields of a service credential binding the client
// reads. go-cfclient's resource.ServiceCredentialBinding decodes every
// field, links and labels included: listing 10,000 bindings with it
// allocated 32 MB in 320,000 objects (BenchmarkPlanBindings10k), with this
// 18 MB in 81,000.
type bindingResource struct {
	GUID          string    `json:"guid"`
	CreatedAt     time.Time `json:"created_at"`
	LastOperation struct {
		Type  string `json:"type"`
		State string `json:"state"`
	} `json:"last_operation"`
	Relationships struct {
		App             resource.ToOneRelationship `json:"app"`
		ServiceInstance resource.ToOneRelationship `json:"service_instance"`
	} `json:"relationships"`
}

func bindingOf(b *bindingResource, plan string) Binding {
	return Binding{
		GUID: b.GUID, AppGUID: guidOf(&b.Relationships.App), PlanGUID: plan, CreatedAt: b.CreatedAt,
		Deleting: b.LastOperation.Type == "delete" && b.LastOperation.State == "in progress",
	}
}

// Binding looks up one service credential binding by guid, with the plan of
// its service instance. An unknown binding gives an error wrapping
// ErrBindingNotFound.
func (c *Client) Binding(ctx context.Context, guid string) (Binding, error) {
	if err := scrape.CheckGUID("binding guid", guid); err != nil {
		return Binding{}, fmt.Errorf("%w: %w", ErrBindingNotFound, err)
	}
	var b struct {
		bindingResource
		Included *resource.ServiceCredentialBindingIncluded `json:"included"`
	}
	err := c.get(ctx, "/v3/service_credential_bindings/"+guid+"?include=service_instance", decodeInto(&b))
	if statusOf(err, "/v3/service_credential_bindings/:guid") == http.StatusNotFound {
		return Binding{}, fmt.Errorf("binding %s: %w", guid, ErrBindingNotFound)
	}
	if err != nil {
		return Binding{}, err
	}
	if b.GUID != guid {
		return Binding{}, malformed("/v3/service_credential_bindings/:guid", "the answer is not the binding asked for")
	}
	plan := ""
	if b.Included != nil {
		for _, in := range b.Included.ServiceInstances {
			if in.GUID == guidOf(&b.Relationships.ServiceInstance) {
				plan = guidOf(in.Relationships.ServicePlan)
			}
		}
	}
	return bindingOf(&b.bindingResource, plan), nil
}

// AppBindings returns the app bindings of our plan for one app, oldest
// first.
func (c *Client) AppBindings(ctx context.Context, appGUID string) ([]Binding, error) {
	if err := scrape.CheckGUID("app guid", appGUID); err != nil {
		return nil, err
	}
	return c.planBindings(ctx, "app_guids", appGUID)
}

// AppsBindings returns the app bindings of our plan for the given apps,
// oldest first: the same listing as PlanBindings, filtered by app guids in
// batches short enough for the API's front proxy (one request per 100 apps
// and plan). Strings that are not GUIDs are left out.
func (c *Client) AppsBindings(ctx context.Context, appGUIDs []string) ([]Binding, error) {
	valid, _ := validGUIDs(appGUIDs)
	if len(valid) == 0 {
		return nil, nil
	}
	var out []Binding
	for _, batch := range c.batches(valid) {
		bindings, err := c.planBindings(ctx, "app_guids", strings.Join(batch, ","))
		if err != nil {
			return nil, err
		}
		out = append(out, bindings...)
	}
	sortOldestFirst(out)
	return out, nil
}

// PlanBindings returns every app binding of our plan that CF shows, oldest
// first: the plan's guids come from
// /v3/service_plans?broker_catalog_ids=PlanID (cached), the bindings from
// /v3/service_credential_bindings 5000 a page.
func (c *Client) PlanBindings(ctx context.Context) ([]Binding, error) {
	return c.planBindings(ctx)
}

func (c *Client) planBindings(ctx context.Context, filter ...string) ([]Binding, error) {
	plans, err := c.plans(ctx)
	if err != nil {
		return nil, err
	}
	var out []Binding
	for _, plan := range plans {
		// One listing per plan guid: a binding names its service instance,
		// not its plan, so the filter is what tells the plan.
		bindings, _, err := listAll(ctx, c, "/v3/service_credential_bindings",
			func(b *bindingResource) (Binding, bool) { return bindingOf(b, plan), true },
			append([]string{"service_plan_guids", plan, "type", "app"}, filter...)...)
		if err != nil {
			return nil, err
		}
		out = append(out, bindings...)
	}
	sortOldestFirst(out)
	return out, nil
}

// plans returns the guids of the service plans with our broker catalog id.
// A plan CF does not show is an error: reconciling against an empty list of
// bindings would drop every target.
func (c *Client) plans(ctx context.Context) ([]string, error) {
	c.mu.Lock()
	cached := c.planGUIDs
	c.mu.Unlock()
	if cached != nil {
		return cached, nil
	}
	if c.planID == "" {
		return nil, errors.New("the broker catalog plan id is not configured")
	}
	guids, _, err := listAll(ctx, c, "/v3/service_plans",
		func(p *resource.ServicePlan) (string, bool) { return p.GUID, p.BrokerCatalog.ID == c.planID },
		"broker_catalog_ids", c.planID)
	if err != nil {
		return nil, err
	}
	if len(guids) == 0 {
		return nil, fmt.Errorf("%w: no service plan with broker catalog id %q is visible", ErrUnavailable, c.planID)
	}
	c.mu.Lock()
	c.planGUIDs = guids
	c.mu.Unlock()
	return guids, nil
}

// sortOldestFirst orders bindings by creation, then guid.
func sortOldestFirst(bindings []Binding) {
	slices.SortFunc(bindings, func(a, b Binding) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.GUID, b.GUID))
	})
}

// validGUIDs keeps the GUIDs among guids, each once, in their order, and
// says which they are: a filter is never built from anything else.
func validGUIDs(guids []string) (ordered []string, set map[string]bool) {
	set = map[string]bool{}
	for _, g := range guids {
		if scrape.ValidGUID(g) && !set[g] {
			set[g] = true
			ordered = append(ordered, g)
		}
	}
	return ordered, set
}
