package fakecf

import (
	"cmp"
	"slices"
	"strconv"
	"time"
)

// Audit event types the fake records, as Cloud Controller names them.
const (
	EventStart              = "audit.app.start"
	EventStop               = "audit.app.stop"
	EventRestart            = "audit.app.restart"
	EventUpdate             = "audit.app.update"
	EventDeleteRequest      = "audit.app.delete-request"
	EventMapRoute           = "audit.app.map-route"
	EventUnmapRoute         = "audit.app.unmap-route"
	EventProcessCreate      = "audit.app.process.create"
	EventProcessDelete      = "audit.app.process.delete"
	EventProcessScale       = "audit.app.process.scale"
	EventDeploymentCreate   = "audit.app.deployment.create"
	EventDeploymentCancel   = "audit.app.deployment.cancel"
	EventDeploymentContinue = "audit.app.deployment.continue"
	EventRouteDeleteRequest = "audit.route.delete-request"
)

// The user every recorded event names: the fake's actions are a tenant's,
// done through the cf CLI.
var actorGUID = deriveGUID("user", "admin")

const actorName = "admin"

// eventRec is one audit event. created keeps the clock's sub-second part,
// as Cloud Controller's database does; answers show whole seconds.
type eventRec struct {
	guid       string
	seq        uint64
	created    time.Time
	typ        string
	targetGUID string
	targetType string
	targetName string
	spaceGUID  string
	orgGUID    string
	data       map[string]any
	raw        []byte
}

// record stores an audit event at the clock's time. Events stay sorted by
// time, then by order of recording, which is how Cloud Controller lists
// events that share a timestamp.
func (st *state) record(e eventRec) {
	st.eventSeq++
	e.seq = st.eventSeq
	e.guid = deriveGUID("event", strconv.FormatUint(e.seq, 10))
	e.created = st.now().UTC()
	at, _ := slices.BinarySearchFunc(st.events, &e, func(a, b *eventRec) int {
		if c := a.created.Compare(b.created); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	st.events = slices.Insert(st.events, at, &e)
}

// recordAppEvent records an event whose target is an app. Cloud Controller
// stores an event's details in a column named metadata and shows them as
// "data": process events carry the process in data.process_guid and
// data.process_type, and target.guid is always the app.
func (st *state) recordAppEvent(typ string, a *appRec, data map[string]any) {
	sp := st.spaces[a.SpaceGUID]
	st.record(eventRec{
		typ: typ, targetGUID: a.GUID, targetType: "app", targetName: a.Name,
		spaceGUID: sp.GUID, orgGUID: sp.OrgGUID, data: data,
	})
}

func processData(p *procRec) map[string]any {
	return map[string]any{"process_guid": p.guid, "process_type": p.typ}
}

func destinationData(r Route, d Destination) map[string]any {
	return map[string]any{
		"route_guid": r.GUID, "app_port": 8080, "route_mapping_guid": d.GUID, "destination_guid": d.GUID,
		"process_type": d.ProcessType, "weight": nil, "protocol": r.Protocol,
	}
}

func renderEvent(base string, e *eventRec) []byte {
	data := e.data
	if data == nil {
		data = map[string]any{}
	}
	return mustJSON(map[string]any{
		"guid": e.guid, "created_at": stamp(e.created), "updated_at": stamp(e.created),
		"type":         e.typ,
		"actor":        map[string]any{"guid": actorGUID, "type": "user", "name": actorName},
		"target":       map[string]any{"guid": e.targetGUID, "type": e.targetType, "name": e.targetName},
		"data":         data,
		"space":        map[string]any{"guid": e.spaceGUID},
		"organization": map[string]any{"guid": e.orgGUID},
		"links":        map[string]link{"self": {Href: base + "/v3/audit_events/" + e.guid}},
	})
}
