package fakecf

import "time"

// Org is a Cloud Foundry organization.
type Org struct {
	GUID      string
	Name      string
	CreatedAt time.Time
}

// Space is a space of an org.
type Space struct {
	GUID      string
	Name      string
	OrgGUID   string
	CreatedAt time.Time
}

// App states, as the CF API spells them.
const (
	Started = "STARTED"
	Stopped = "STOPPED"
)

// App is a Cloud Foundry app. AddApp also gives it a web process with
// Instances instances.
type App struct {
	GUID      string
	Name      string
	State     string // Started or Stopped; empty means Started
	SpaceGUID string
	Instances int
	CreatedAt time.Time
	// Annotations are the app's metadata annotations (cf set-annotation).
	Annotations map[string]string
}

// Domain is a shared domain. Internal domains carry container-to-container
// routes; TCP domains carry tcp routes.
type Domain struct {
	GUID     string
	Name     string
	Internal bool
	TCP      bool
}

// Route protocols.
const (
	HTTP1 = "http1"
	HTTP2 = "http2"
	TCP   = "tcp"
)

// Route is a route in a space, mapped to zero or more app processes.
type Route struct {
	GUID       string
	Host       string
	DomainGUID string
	Path       string
	Protocol   string // HTTP1 (default), HTTP2 or TCP
	Port       int    // tcp routes only
	// SpaceGUID defaults to the space of the first destination's app.
	SpaceGUID    string
	CreatedAt    time.Time
	Destinations []Destination
}

// Destination maps a route to one process of an app.
type Destination struct {
	GUID        string // derived when empty
	AppGUID     string
	ProcessType string // "web" when empty
	Port        int    // 8080 when 0
}

// ServicePlan is a plan of a broker's service offering.
type ServicePlan struct {
	GUID            string
	Name            string
	BrokerCatalogID string
}

// Binding types.
const (
	AppBinding = "app"
	KeyBinding = "key"
)

// Last operation types and states.
const (
	OpCreate     = "create"
	OpDelete     = "delete"
	OpSucceeded  = "succeeded"
	OpInProgress = "in progress"
	OpFailed     = "failed"
)

// LastOperation is a binding's last operation.
type LastOperation struct {
	Type  string // OpCreate (default) or OpDelete
	State string // OpSucceeded (default), OpInProgress or OpFailed
}

// Binding is a service credential binding: an app binding or a service key.
type Binding struct {
	GUID     string
	Type     string // AppBinding (default) or KeyBinding
	AppGUID  string // app bindings only
	PlanGUID string
	// ServiceInstanceGUID defaults to one instance per plan and space.
	ServiceInstanceGUID string
	// SpaceGUID is the space of a service key; app bindings use the app's.
	SpaceGUID     string
	CreatedAt     time.Time
	LastOperation LastOperation
}

// Process is one process of an app, as GET /v3/processes lists it.
type Process struct {
	GUID      string
	AppGUID   string
	Type      string
	Instances int
	CreatedAt time.Time
}

// Deployment strategies.
const (
	Rolling = "rolling"
	Canary  = "canary"
)

// Deployment states. The CF API no longer shows the state (it shows
// status.value and status.reason); the fake keeps it to know what the
// deployment updater does next.
const (
	StateDeploying = "DEPLOYING"
	StatePrepaused = "PREPAUSED" // a canary before its first instance runs
	StatePaused    = "PAUSED"
	StateDeployed  = "DEPLOYED"
	StateCanceling = "CANCELING"
	StateCanceled  = "CANCELED"
)

// Deployment status values and reasons.
const (
	StatusActive    = "ACTIVE"
	StatusFinalized = "FINALIZED"

	ReasonDeploying  = "DEPLOYING"
	ReasonPaused     = "PAUSED"
	ReasonCanceling  = "CANCELING"
	ReasonDeployed   = "DEPLOYED"
	ReasonCanceled   = "CANCELED"
	ReasonSuperseded = "SUPERSEDED"
)

// Deployment is a rolling or canary deployment of an app.
type Deployment struct {
	GUID         string
	AppGUID      string
	Strategy     string // Rolling or Canary
	State        string
	StatusValue  string
	StatusReason string
	// NewProcessGUID is the web process the deployment brings up (empty
	// when the app was stopped: Cloud Controller then starts the app's
	// process at once).
	NewProcessGUID string
	// OriginalInstances is the web instance count the deployment aims at.
	OriginalInstances int
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// Active reports whether the deployment still runs.
func (d Deployment) Active() bool {
	return d.StatusValue == StatusActive
}
