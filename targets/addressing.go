package targets

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/alphagov/cf-app-discovery/scrape"
)

// Addressing is how an app's target groups name its instances
// (INSTANCE_ADDRESSING). docs/design.md, "Instances", explains both modes.
type Addressing string

const (
	// AppAddressing (the default, for every CF) gives one group per
	// instance index; the router picks the instance from the app guid and
	// the index, of whichever web process has one.
	AppAddressing Addressing = "app"
	// ProcessAddressing (for routers that read X-CF-PROCESS-INSTANCE,
	// routing-release 0.332.0 or later) gives an app with several web
	// processes one group per instance of each process.
	ProcessAddressing Addressing = "process"
)

// ParseAddressing reads an INSTANCE_ADDRESSING value; "" is AppAddressing.
func ParseAddressing(s string) (Addressing, error) {
	switch a := Addressing(s); a {
	case "":
		return AppAddressing, nil
	case AppAddressing, ProcessAddressing:
		return a, nil
	}
	return "", fmt.Errorf("must be %s or %s, got %q", AppAddressing, ProcessAddressing, s)
}

// instance is one instance a target group addresses: its scrape
// parameters (with the process when the group addresses one process's
// instance), and its instance label.
type instance struct {
	params scrape.Params
	label  string
}

// oldSuffix marks the instance labels of an app's first web process while
// a newer one runs (see olderInstance).
const oldSuffix = ":old"

// olderInstance is the instance label of an instance of a web process older
// than the app's newest: "<process_guid>:<index>". CF gives an app's first
// web process the app's own guid, which would repeat the newest process's
// "<app_guid>:<index>": that process's instances are "<app_guid>:<index>:old".
func olderInstance(p scrape.Params) string {
	label := p.ProcessInstance()
	if p.ProcessGUID == p.AppGUID {
		label += oldSuffix
	}
	return label
}

// instances lists the instances app's groups address, in the order the
// groups are written.
func (a Addressing) instances(app App) []instance {
	var out []instance
	if a != ProcessAddressing || len(app.Processes) < 2 {
		for i := range app.Instances() {
			p := scrape.Params{AppGUID: app.GUID, Index: i}
			out = append(out, instance{params: p, label: p.Instance()})
		}
		return out
	}
	// Newest first (the same order as the processes' created_at, then
	// guid, whatever order they came in): its instances keep the labels of
	// app addressing, so that the process that survives a deployment keeps
	// its series.
	processes := slices.Clone(app.Processes)
	slices.SortFunc(processes, func(x, y Process) int {
		return cmp.Or(y.CreatedAt.Compare(x.CreatedAt), cmp.Compare(y.GUID, x.GUID))
	})
	for n, p := range processes {
		for i := range p.Instances {
			params := scrape.Params{AppGUID: app.GUID, Index: i, ProcessGUID: p.GUID}
			in := instance{params: params, label: params.Instance()}
			if n > 0 {
				in.label = olderInstance(params)
			}
			out = append(out, in)
		}
	}
	return out
}
