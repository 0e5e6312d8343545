// Package cfcli drives the cf CLI for the acceptance suite's run against a
// real Cloud Foundry: each method is one cf command with a timeout, and
// its error carries cf's output with every secret redacted.
//
// Secrets never reach cf's command line: cf auth reads CF_USERNAME and
// CF_PASSWORD, and cf create-service-broker reads CF_BROKER_PASSWORD, from
// the environment of that one command only. cf runs with a CF_HOME of its
// own and sees only the few variables of the test process it needs, so
// that neither its configuration nor the test's other secrets (AWS keys)
// reach it.
package cfcli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Default timeouts of one cf command.
const (
	DefaultTimeout     = 2 * time.Minute
	DefaultPushTimeout = 10 * time.Minute
)

// Redacted replaces every secret in the output and errors of the CLI.
const Redacted = "[REDACTED]"

// passedThrough are the variables of the test process cf may see: what it
// needs to find its way out (proxies, CA bundles) and to run at all.
var passedThrough = []string{
	"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL",
	"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
	"SSL_CERT_FILE", "SSL_CERT_DIR",
}

// CLI runs cf commands. The zero value is not usable: set Home.
type CLI struct {
	// Path is the cf executable; "cf" (looked up on PATH) when empty.
	Path string
	// Home is cf's CF_HOME, where it keeps its target and token: a
	// directory of the run's own, so that the user's cf configuration is
	// neither read nor changed.
	Home string
	// Timeout bounds one command (DefaultTimeout when zero).
	Timeout time.Duration
	// PushTimeout bounds cf push and cf start, which stage and start
	// instances (DefaultPushTimeout when zero).
	PushTimeout time.Duration
	// Log, when set, receives each command line and its output, redacted.
	Log io.Writer

	mu      sync.Mutex
	secrets []string
}

// AddSecret makes the CLI redact s from every output and error it gives.
func (c *CLI) AddSecret(s string) {
	if s == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.secrets = append(c.secrets, s)
}

// API runs `cf api URL`, with --skip-ssl-validation when skipSSL is set.
func (c *CLI) API(ctx context.Context, apiURL string, skipSSL bool) error {
	args := []string{"api", apiURL}
	if skipSSL {
		args = append(args, "--skip-ssl-validation")
	}
	_, err := c.run(ctx, c.timeout(), nil, args...)
	return err
}

// Auth runs `cf auth` with the credentials in CF_USERNAME and CF_PASSWORD
// of its environment, never on its command line.
func (c *CLI) Auth(ctx context.Context, username, password string) error {
	c.AddSecret(password)
	_, err := c.run(ctx, c.timeout(), []string{"CF_USERNAME=" + username, "CF_PASSWORD=" + password}, "auth")
	return err
}

// Target runs `cf target -o ORG -s SPACE`.
func (c *CLI) Target(ctx context.Context, org, space string) error {
	_, err := c.run(ctx, c.timeout(), nil, "target", "-o", org, "-s", space)
	return err
}

// App is what Push pushes: a directory holding a ready-to-run program.
type App struct {
	Name      string
	Path      string // the directory pushed
	Buildpack string // e.g. binary_buildpack
	Command   string // the start command
	Instances int
	Memory    string // e.g. 32M
	Disk      string // e.g. 64M
}

// Push runs `cf push` of app, ignoring any manifest, and waits until its
// instances run.
func (c *CLI) Push(ctx context.Context, app App) error {
	args := []string{"push", app.Name, "--no-manifest", "-p", app.Path}
	if app.Buildpack != "" {
		args = append(args, "-b", app.Buildpack)
	}
	if app.Command != "" {
		args = append(args, "-c", app.Command)
	}
	if app.Instances > 0 {
		args = append(args, "-i", strconv.Itoa(app.Instances))
	}
	if app.Memory != "" {
		args = append(args, "-m", app.Memory)
	}
	if app.Disk != "" {
		args = append(args, "-k", app.Disk)
	}
	_, err := c.run(ctx, c.pushTimeout(), nil, args...)
	return err
}

// CreateServiceBroker runs `cf create-service-broker NAME USERNAME URL`,
// --space-scoped when spaceScoped is set, with the password in
// CF_BROKER_PASSWORD of its environment.
func (c *CLI) CreateServiceBroker(ctx context.Context, name, username, password, brokerURL string, spaceScoped bool) error {
	c.AddSecret(password)
	args := []string{"create-service-broker", name, username, brokerURL}
	if spaceScoped {
		args = append(args, "--space-scoped")
	}
	_, err := c.run(ctx, c.timeout(), []string{"CF_BROKER_PASSWORD=" + password}, args...)
	return err
}

// CreateService runs `cf create-service OFFERING PLAN INSTANCE -b BROKER`:
// the broker is named so that an offering of the same name from another
// broker is not taken.
func (c *CLI) CreateService(ctx context.Context, offering, plan, instance, broker string) error {
	_, err := c.run(ctx, c.timeout(), nil, "create-service", offering, plan, instance, "-b", broker)
	return err
}

// BindService runs `cf bind-service APP INSTANCE`.
func (c *CLI) BindService(ctx context.Context, app, instance string) error {
	_, err := c.run(ctx, c.timeout(), nil, "bind-service", app, instance)
	return err
}

// UnbindService runs `cf unbind-service APP INSTANCE`.
func (c *CLI) UnbindService(ctx context.Context, app, instance string) error {
	_, err := c.run(ctx, c.timeout(), nil, "unbind-service", app, instance)
	return err
}

// Scale runs `cf scale APP -i N`.
func (c *CLI) Scale(ctx context.Context, app string, instances int) error {
	_, err := c.run(ctx, c.timeout(), nil, "scale", app, "-i", strconv.Itoa(instances))
	return err
}

// Stop runs `cf stop APP`.
func (c *CLI) Stop(ctx context.Context, app string) error {
	_, err := c.run(ctx, c.timeout(), nil, "stop", app)
	return err
}

// Start runs `cf start APP` and waits until its instances run.
func (c *CLI) Start(ctx context.Context, app string) error {
	_, err := c.run(ctx, c.pushTimeout(), nil, "start", app)
	return err
}

// CreateServiceKey runs `cf create-service-key INSTANCE KEY`.
func (c *CLI) CreateServiceKey(ctx context.Context, instance, key string) error {
	_, err := c.run(ctx, c.timeout(), nil, "create-service-key", instance, key)
	return err
}

// DeleteServiceKey runs `cf delete-service-key INSTANCE KEY -f`.
func (c *CLI) DeleteServiceKey(ctx context.Context, instance, key string) error {
	_, err := c.run(ctx, c.timeout(), nil, "delete-service-key", instance, key, "-f")
	return err
}

// Delete runs `cf delete APP -f -r`: the app, its bindings (Cloud
// Controller unbinds them first) and its routes.
func (c *CLI) Delete(ctx context.Context, app string) error {
	_, err := c.run(ctx, c.timeout(), nil, "delete", app, "-f", "-r")
	return err
}

// DeleteService runs `cf delete-service INSTANCE -f`.
func (c *CLI) DeleteService(ctx context.Context, instance string) error {
	_, err := c.run(ctx, c.timeout(), nil, "delete-service", instance, "-f")
	return err
}

// DeleteServiceBroker runs `cf delete-service-broker NAME -f`.
func (c *CLI) DeleteServiceBroker(ctx context.Context, name string) error {
	_, err := c.run(ctx, c.timeout(), nil, "delete-service-broker", name, "-f")
	return err
}

// AppGUID returns the guid of the app named name, from
// `cf curl /v3/apps?names=NAME`. It is an error unless exactly one app
// has that name.
func (c *CLI) AppGUID(ctx context.Context, name string) (string, error) {
	path := "/v3/apps?names=" + url.QueryEscape(name)
	out, err := c.run(ctx, c.timeout(), nil, "curl", path)
	if err != nil {
		return "", err
	}
	var body struct {
		Resources []struct {
			GUID string `json:"guid"`
		} `json:"resources"`
		Errors []struct {
			Detail string `json:"detail"`
			Title  string `json:"title"`
		} `json:"errors"`
	}
	if err := json.Unmarshal([]byte(out), &body); err != nil {
		return "", fmt.Errorf("cf curl %s: not a JSON answer (%v): %s", path, err, c.redact(out))
	}
	if len(body.Errors) > 0 {
		return "", fmt.Errorf("cf curl %s: %s: %s", path, body.Errors[0].Title, c.redact(body.Errors[0].Detail))
	}
	switch len(body.Resources) {
	case 1:
		return body.Resources[0].GUID, nil
	case 0:
		return "", fmt.Errorf("cf curl %s: no app is named %q", path, name)
	default:
		return "", fmt.Errorf("cf curl %s: %d apps are named %q", path, len(body.Resources), name)
	}
}

func (c *CLI) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

func (c *CLI) pushTimeout() time.Duration {
	if c.PushTimeout > 0 {
		return c.PushTimeout
	}
	return DefaultPushTimeout
}

// run runs cf with args and the extra environment env, and returns its
// standard output. The error names the command and holds all of cf's
// output; both are redacted.
func (c *CLI) run(ctx context.Context, timeout time.Duration, env []string, args ...string) (string, error) {
	path := c.Path
	if path == "" {
		path = "cf"
	}
	line := c.redact("cf " + strings.Join(args, " "))
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append(c.environ(), env...)
	// A killed cf may leave a child holding its output open; stop waiting
	// for it soon after.
	cmd.WaitDelay = 2 * time.Second
	var stdout bytes.Buffer
	all := &lockedBuffer{}
	cmd.Stdout = io.MultiWriter(&stdout, all)
	cmd.Stderr = all
	err := cmd.Run()
	output := c.redact(all.String())
	if c.Log != nil {
		fmt.Fprintf(c.Log, "$ %s\n%s", line, output)
	}
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return "", fmt.Errorf("%s: timed out after %s; output:\n%s", line, timeout, output)
	case ctx.Err() != nil:
		return "", fmt.Errorf("%s: %w; output:\n%s", line, ctx.Err(), output)
	case err != nil:
		return "", fmt.Errorf("%s: %w; output:\n%s", line, err, output)
	}
	return stdout.String(), nil
}

// environ is the environment every cf command gets.
func (c *CLI) environ() []string {
	env := []string{"CF_HOME=" + c.Home, "CF_COLOR=false", "CF_TRACE=false"}
	for _, name := range passedThrough {
		if v, ok := os.LookupEnv(name); ok {
			env = append(env, name+"="+v)
		}
	}
	return env
}

// bearer matches a token cf might print (with CF_TRACE, or in an error).
var bearer = regexp.MustCompile(`(?i)(bearer\s+)[a-z0-9._~+/=-]+`)

func (c *CLI) redact(s string) string {
	c.mu.Lock()
	secrets := append([]string(nil), c.secrets...)
	c.mu.Unlock()
	for _, secret := range secrets {
		s = strings.ReplaceAll(s, secret, Redacted)
	}
	return bearer.ReplaceAllString(s, "${1}"+Redacted)
}

// lockedBuffer takes stdout and stderr, written from two goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
