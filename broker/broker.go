// Package broker is the Open Service Broker of cf-app-discovery: binding an
// app to the service writes the app's Prometheus target file; unbinding its
// last binding removes it.
package broker

import (
	"context"
	"sync"
	"time"

	"code.cloudfoundry.org/lager/v3"
	"github.com/pivotal-cf/brokerapi/v10/domain"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/alphagov/cf-app-discovery/cfapi"
	"github.com/alphagov/cf-app-discovery/store"
	"github.com/alphagov/cf-app-discovery/targets"
)

// AppLookup describes an app as the CF API shows it to the monitoring user.
type AppLookup interface {
	App(ctx context.Context, appGUID string) (targets.App, error)
}

// BindingLookup finds bindings in the CF API: unbind needs them for buckets
// written by the Ruby service (no record) and to know whether a binding is
// an app's last.
type BindingLookup interface {
	Binding(ctx context.Context, guid string) (cfapi.Binding, error)
	AppBindings(ctx context.Context, appGUID string) ([]cfapi.Binding, error)
}

// Catalog is the one service and plan the broker offers.
type Catalog struct {
	ServiceID   string
	ServiceName string
	PlanID      string
	PlanName    string
	// DocumentationURL is shown in the marketplace; DefaultDocumentationURL
	// when empty.
	DocumentationURL string
}

// Broker implements domain.ServiceBroker.
type Broker struct {
	catalog    Catalog
	bucket     *store.Bucket
	apps       AppLookup
	bindings   BindingLookup
	paasDomain string
	addressing targets.Addressing
	// monitoringUser names the CF user tenants must grant Space Auditor to.
	monitoringUser string
	// grantCommand is the cf command that grants it, with placeholders.
	grantCommand string
	logger       lager.Logger
	now          func() time.Time
	locks        keyedMutex
	metrics      *metrics
}

// Options are the broker's collaborators and settings.
type Options struct {
	Catalog        Catalog
	Store          store.Store
	Apps           AppLookup
	Bindings       BindingLookup
	PaaSDomain     string
	MonitoringUser string
	// MonitoringClient says MonitoringUser is a UAA client id (the broker
	// signs in with client credentials), which `cf set-space-role` names
	// with --client.
	MonitoringClient bool
	Logger           lager.Logger
	// Now is the clock of binding records; time.Now when nil.
	Now func() time.Time
	// Registerer takes the operations metrics; none are registered when nil.
	Registerer prometheus.Registerer
	// Addressing is how target files name an app's instances.
	Addressing targets.Addressing
}

// New returns a broker. It registers its metrics on o.Registerer, so it
// is called once per registry.
func New(o Options) *Broker {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	logger := o.Logger
	if logger == nil {
		logger = lager.NewLogger("broker")
	}
	return &Broker{catalog: o.Catalog, bucket: store.NewBucket(o.Store), apps: o.Apps, bindings: o.Bindings,
		paasDomain: o.PaaSDomain, addressing: o.Addressing, monitoringUser: o.MonitoringUser,
		grantCommand: grantCommand(o.MonitoringUser, o.MonitoringClient), logger: logger, now: now,
		metrics: newMetrics(o.Registerer)}
}

var _ domain.ServiceBroker = (*Broker)(nil)

// keyedMutex serialises the operations on one app within this process, so
// that concurrent binds and unbinds of the app cannot interleave their
// writes. Across instances, an unbind that removed a target file looks at
// the app's bindings again and writes it again if a bind came in meanwhile
// (settleTargets).
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	sync.Mutex
	users int
}

func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyLock{}
	}
	l := k.locks[key]
	if l == nil {
		l = &keyLock{}
		k.locks[key] = l
	}
	l.users++
	k.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		k.mu.Lock()
		l.users--
		if l.users == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}

// grantCommand is the command a tenant runs to let the monitoring user (or
// UAA client) see the apps of a space.
func grantCommand(user string, client bool) string {
	if user == "" {
		user = "<monitoring user>"
	}
	cmd := "cf set-space-role " + user + " <org> <space> SpaceAuditor"
	if client {
		cmd += " --client"
	}
	return cmd
}
