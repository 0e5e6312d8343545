package store

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/alphagov/cf-app-discovery/scrape"
)

// Binding is the broker's record of one service binding, stored at
// BindingKey(BindingGUID). It lets unbind find the app without asking CF and
// lets several bindings of one app coexist.
type Binding struct {
	BindingGUID  string          `json:"binding_guid"`
	InstanceGUID string          `json:"instance_guid"`
	AppGUID      string          `json:"app_guid"`
	ServiceID    string          `json:"service_id,omitempty"`
	PlanID       string          `json:"plan_id"`
	Parameters   json.RawMessage `json:"parameters,omitempty"`
	CreatedAt    time.Time       `json:"created_at"`
	// Source says who wrote the record: SourceBroker or SourceReconcile.
	Source string `json:"source,omitempty"`
}

// Record sources.
const (
	// SourceBroker marks a record written on bind.
	SourceBroker = "broker"
	// SourceReconcile marks a record the updater wrote for a binding the CF
	// API listed without one (a bucket taken over from the Ruby service).
	SourceReconcile = "reconcile"
)

// Marshal returns the record's stored form.
func (b Binding) Marshal() ([]byte, error) {
	return json.MarshalIndent(b, "", "  ")
}

// UnmarshalBinding parses and validates a stored record.
func UnmarshalBinding(data []byte) (Binding, error) {
	var b Binding
	if err := json.Unmarshal(data, &b); err != nil {
		return Binding{}, fmt.Errorf("binding record: %w", err)
	}
	if err := scrape.CheckGUID("binding record binding_guid", b.BindingGUID); err != nil {
		return Binding{}, err
	}
	if err := scrape.CheckGUID("binding record app_guid", b.AppGUID); err != nil {
		return Binding{}, err
	}
	return b, nil
}
