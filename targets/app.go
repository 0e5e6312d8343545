package targets

import "time"

// App is what the target files are rendered from: one app as the CF API
// describes it, with the names of its org and space and the routes mapped to
// its web process.
type App struct {
	GUID  string
	Name  string
	State string // "STARTED" or "STOPPED", as in the CF API
	// Processes are the app's web processes, oldest first: one, except
	// while a rolling or canary deployment runs, when the old and the new
	// process are both listed, each numbering its instances from 0.
	Processes []Process
	Org       string
	Space     string
	// Routes are the routes with a destination on the app's web process,
	// oldest first.
	Routes []Route
	// Annotations are the app's metadata annotations, as every app
	// listing of the CF API carries them.
	Annotations map[string]string
}

// Process is one web process of an app.
type Process struct {
	GUID string
	// Instances is the process's desired instance count.
	Instances int
	CreatedAt time.Time
}

// Instances is how many instance indexes the app's web processes use: the
// largest desired count among them (0 with no process).
func (a App) Instances() int {
	n := 0
	for _, p := range a.Processes {
		n = max(n, p.Instances)
	}
	return n
}

// Route is one route of an app, with what route choice needs of its domain.
type Route struct {
	Host     string
	Domain   string
	Path     string
	Protocol string // "http1", "http2" or "tcp"
	Internal bool   // the route's domain is an internal (container-to-container) domain
	// Port is the port of the route's destination on the app's web
	// process; 0 means CF's default, DefaultPort. A route whose
	// destinations on the process use several ports is listed once per
	// port.
	Port int
}

// DefaultPort is the port of a route destination that names none.
const DefaultPort = 8080

// Started reports whether the app's target file belongs in active/.
func (a App) Started() bool {
	return a.State == "STARTED"
}
