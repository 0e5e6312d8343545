package targets

// App is what the target files are rendered from: one app as the CF API
// describes it, with the names of its org and space and the routes mapped to
// its web process.
type App struct {
	GUID  string
	Name  string
	State string // "STARTED" or "STOPPED", as in the CF API
	// Instances is the desired instance count of the app's web process.
	Instances int
	Org       string
	Space     string
	// Routes are the routes with a destination on the app's web process,
	// oldest first.
	Routes []Route
}

// Route is one route of an app, with what route choice needs of its domain.
type Route struct {
	Host     string
	Domain   string
	Path     string
	Protocol string // "http1", "http2" or "tcp"
	Internal bool   // the route's domain is an internal (container-to-container) domain
}

// Started reports whether the app's target file belongs in active/.
func (a App) Started() bool {
	return a.State == "STARTED"
}
