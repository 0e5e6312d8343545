package reconcile

import (
	"errors"

	"code.cloudfoundry.org/lager/v3"

	"github.com/alphagov/cf-app-discovery/targets"
)

// note is what an app's target file leaves out: settings that are invalid
// or that no route serves, and a conflict between its bindings.
type note struct {
	app      string
	ignored  []targets.InvalidSetting
	conflict *targets.ConflictError
}

// settingsOf returns the settings an app's target file is rendered with:
// its bindings' (the oldest binding's where they disagree) over its
// annotations'.
func (w world) settingsOf(app targets.App) (targets.Settings, *note) {
	bound, err := targets.Combine(w.settings[app.GUID])
	settings, ignored := targets.Resolve(app, bound)
	n := note{app: app.GUID, ignored: ignored}
	errors.As(err, &n.conflict)
	if n.conflict == nil && len(ignored) == 0 {
		return settings, nil
	}
	return settings, &n
}

// logNotes logs what the target files leave out, once per run.
func logNotes(logger lager.Logger, notes []note) {
	for _, n := range notes {
		for _, i := range n.ignored {
			action := "setting-ignored"
			if i.Annotation {
				action = "invalid-annotation"
			}
			logger.Info(action, lager.Data{"app_guid": n.app, "key": i.Key, "reason": i.Reason})
		}
		if c := n.conflict; c != nil {
			logger.Info("settings-conflict", lager.Data{"app_guid": n.app, "binding_guid": c.Binding,
				"other_binding_guid": c.Other, "keys": c.Keys})
		}
	}
}
