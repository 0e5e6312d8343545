package cfcli

import (
	"fmt"
	"strings"
	"time"
)

// Required names every variable a run against a real Cloud Foundry needs.
var Required = []string{
	"CF_API", "CF_USERNAME", "CF_PASSWORD", "CF_ORG", "CF_SPACE",
	"CF_BROKER_URL", "CF_BROKER_USERNAME", "CF_BROKER_PASSWORD",
	"BUCKET_NAME", "AWS_REGION",
}

// Settings are the environment of a run against a real Cloud Foundry.
type Settings struct {
	// API, Username, Password, Org and Space: the CF API and the user the
	// suite acts as (CF_API, CF_USERNAME, CF_PASSWORD, CF_ORG, CF_SPACE).
	API, Username, Password, Org, Space string
	// SkipSSLValidation is CF_SKIP_SSL_VALIDATION=true.
	SkipSSLValidation bool
	// BrokerURL, BrokerUsername and BrokerPassword reach the deployed
	// broker (CF_BROKER_URL, CF_BROKER_USERNAME, CF_BROKER_PASSWORD); the
	// suite registers it space-scoped under a name of its own.
	BrokerURL, BrokerUsername, BrokerPassword string
	// ServiceName and PlanName are the deployed broker's catalog names
	// (CF_SERVICE_NAME, CF_PLAN_NAME; default gds-prometheus, prometheus).
	ServiceName, PlanName string
	// Bucket, Region and Endpoint are the deployed broker's and updater's
	// bucket (BUCKET_NAME, AWS_REGION, S3_ENDPOINT); credentials come from
	// the AWS SDK's usual sources.
	Bucket, Region, Endpoint string
	// ReconcileTimeout is how long the suite waits for the deployed target
	// updater to pick a change up (CF_RECONCILE_TIMEOUT, default 6m: the
	// default schedule is every 5 minutes).
	ReconcileTimeout time.Duration
}

// LoadSettings reads the settings with lookup (os.LookupEnv) and checks
// with lookPath (exec.LookPath) that cf is on PATH. Its error names
// everything that is missing or invalid, so that a skipped run says what
// to set.
func LoadSettings(lookup func(string) (string, bool), lookPath func(string) (string, error)) (Settings, error) {
	get := func(name string) string {
		v, ok := lookup(name)
		if !ok {
			return ""
		}
		return strings.TrimSpace(v)
	}
	var missing, problems []string
	for _, name := range Required {
		if get(name) == "" {
			missing = append(missing, name)
		}
	}
	s := Settings{
		API: get("CF_API"), Username: get("CF_USERNAME"), Password: get("CF_PASSWORD"),
		Org: get("CF_ORG"), Space: get("CF_SPACE"),
		BrokerURL: get("CF_BROKER_URL"), BrokerUsername: get("CF_BROKER_USERNAME"), BrokerPassword: get("CF_BROKER_PASSWORD"),
		ServiceName: or(get("CF_SERVICE_NAME"), "gds-prometheus"), PlanName: or(get("CF_PLAN_NAME"), "prometheus"),
		Bucket: get("BUCKET_NAME"), Region: get("AWS_REGION"), Endpoint: get("S3_ENDPOINT"),
		ReconcileTimeout: 6 * time.Minute,
	}
	// Passwords are kept as given: spaces may be part of them.
	s.Password, _ = lookup("CF_PASSWORD")
	s.BrokerPassword, _ = lookup("CF_BROKER_PASSWORD")
	switch v := get("CF_SKIP_SSL_VALIDATION"); v {
	case "", "false":
	case "true":
		s.SkipSSLValidation = true
	default:
		problems = append(problems, fmt.Sprintf("CF_SKIP_SSL_VALIDATION must be true or false, not %q", v))
	}
	if v := get("CF_RECONCILE_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			problems = append(problems, fmt.Sprintf("CF_RECONCILE_TIMEOUT must be a positive duration such as 6m, not %q", v))
		} else {
			s.ReconcileTimeout = d
		}
	}
	if len(missing) > 0 {
		problems = append([]string{"set " + strings.Join(missing, ", ")}, problems...)
	}
	if _, err := lookPath("cf"); err != nil {
		problems = append(problems, "put the cf CLI on PATH")
	}
	if len(problems) > 0 {
		return s, fmt.Errorf("a run against a real Cloud Foundry needs more: %s (see README.md, \"Against a real Cloud Foundry\")",
			strings.Join(problems, "; "))
	}
	return s, nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
