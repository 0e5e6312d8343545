package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/alphagov/cf-app-discovery/scrape"
)

// Instance is the broker's record of one service instance, stored at
// InstanceKey(InstanceGUID). Instances provisioned before the bucket had
// records have none, and still bind and deprovision.
type Instance struct {
	InstanceGUID     string          `json:"instance_guid"`
	ServiceID        string          `json:"service_id"`
	PlanID           string          `json:"plan_id"`
	OrganizationGUID string          `json:"organization_guid"`
	SpaceGUID        string          `json:"space_guid"`
	Parameters       json.RawMessage `json:"parameters,omitempty"`
	CreatedAt        time.Time       `json:"created_at"`
}

// SameAs reports whether two records describe the same instance: all but
// the time they were made agree, parameters compared as JSON values.
func (i Instance) SameAs(other Instance) bool {
	return i.InstanceGUID == other.InstanceGUID && i.ServiceID == other.ServiceID && i.PlanID == other.PlanID &&
		i.OrganizationGUID == other.OrganizationGUID && i.SpaceGUID == other.SpaceGUID &&
		SameParameters(i.Parameters, other.Parameters)
}

// Marshal returns the record's stored form.
func (i Instance) Marshal() ([]byte, error) {
	return json.MarshalIndent(i, "", "  ")
}

// UnmarshalInstance parses and validates a stored instance record.
func UnmarshalInstance(data []byte) (Instance, error) {
	var i Instance
	if err := json.Unmarshal(data, &i); err != nil {
		return Instance{}, fmt.Errorf("instance record: %w", err)
	}
	if err := scrape.CheckGUID("instance record instance_guid", i.InstanceGUID); err != nil {
		return Instance{}, err
	}
	return i, nil
}

// SameParameters reports whether two requests' parameters are the same
// JSON value, whatever the order of keys or the spacing; none, null and {}
// are the same.
func SameParameters(a, b json.RawMessage) bool {
	ca, errA := canonicalParameters(a)
	cb, errB := canonicalParameters(b)
	if errA != nil || errB != nil {
		return bytes.Equal(a, b)
	}
	return bytes.Equal(ca, cb)
}

func canonicalParameters(raw json.RawMessage) ([]byte, error) {
	var v any
	if len(bytes.TrimSpace(raw)) > 0 {
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		if err := d.Decode(&v); err != nil {
			return nil, err
		}
	}
	if m, ok := v.(map[string]any); v == nil || ok && len(m) == 0 {
		return nil, nil
	}
	// Marshalling sorts object keys; numbers keep their text.
	return json.Marshal(v)
}
