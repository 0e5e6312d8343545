package targets

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
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

// processInstanceLabel makes Prometheus send the scrape parameter
// cf_process_instance, from which paas-proxy sends X-CF-PROCESS-INSTANCE.
//
// TODO: take the label and processInstance from package scrape (Params
// with a ProcessGUID) once the proxy speaks the parameter.
const processInstanceLabel = "__param_cf_process_instance"

// processInstance is the "<process_guid>:<index>" form the CF router
// understands.
func processInstance(processGUID string, index int) string {
	return processGUID + ":" + strconv.Itoa(index)
}

// instance is one instance a target group addresses.
type instance struct {
	index int
	// process is the guid of the web process whose instance this is; ""
	// addresses the app's instance index, of whichever process has it.
	process string
	// older is true for the instances of every web process but the
	// newest: their instance label names the process, not the app.
	older bool
}

// instances lists the instances app's groups address, in the order the
// groups are written.
func (a Addressing) instances(app App) []instance {
	var out []instance
	if a != ProcessAddressing || len(app.Processes) < 2 {
		for i := range app.Instances() {
			out = append(out, instance{index: i})
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
			out = append(out, instance{index: i, process: p.GUID, older: n > 0})
		}
	}
	return out
}
