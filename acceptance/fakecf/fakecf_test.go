package fakecf_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/acceptance/fakecf"
)

type listing struct {
	Pagination struct {
		TotalResults int `json:"total_results"`
		TotalPages   int `json:"total_pages"`
		Next         *struct {
			Href string `json:"href"`
		} `json:"next"`
		Previous *struct {
			Href string `json:"href"`
		} `json:"previous"`
	} `json:"pagination"`
	Resources []map[string]any            `json:"resources"`
	Included  map[string][]map[string]any `json:"included"`
}

type cfErrors struct {
	Errors []struct {
		Code   int    `json:"code"`
		Title  string `json:"title"`
		Detail string `json:"detail"`
	} `json:"errors"`
}

var _ = Describe("fakecf", func() {
	var (
		server *fakecf.Server
		pop    fakecf.Population
		token  string
	)

	fetchToken := func(form url.Values, user, pass string) (int, map[string]any) {
		req, err := http.NewRequest(http.MethodPost, server.URL()+"/oauth/token", strings.NewReader(form.Encode()))
		Expect(err).NotTo(HaveOccurred())
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(user, pass)
		resp, err := http.DefaultClient.Do(req)
		Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		var body map[string]any
		Expect(json.NewDecoder(resp.Body).Decode(&body)).To(Succeed())
		return resp.StatusCode, body
	}

	// get sends an authenticated GET (to a path or an absolute URL).
	get := func(target string) (*http.Response, []byte) {
		if strings.HasPrefix(target, "/") {
			target = server.URL() + target
		}
		req, err := http.NewRequest(http.MethodGet, target, nil)
		Expect(err).NotTo(HaveOccurred())
		if token != "" {
			req.Header.Set("Authorization", "bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		Expect(err).NotTo(HaveOccurred())
		return resp, body
	}

	list := func(target string) listing {
		resp, body := get(target)
		ExpectWithOffset(1, resp.StatusCode).To(Equal(http.StatusOK), string(body))
		var l listing
		ExpectWithOffset(1, json.Unmarshal(body, &l)).To(Succeed())
		return l
	}

	guids := func(resources []map[string]any) []string {
		out := make([]string, len(resources))
		for i, r := range resources {
			out[i] = r["guid"].(string)
		}
		return out
	}

	BeforeEach(func() {
		server = fakecf.New(fakecf.Options{})
		DeferCleanup(server.Close)
		var err error
		pop, err = server.Populate(fakecf.Fleet{Orgs: 2, SpacesPerOrg: 2, Apps: 120, Bound: 30, ExtraRoutes: 10})
		Expect(err).NotTo(HaveOccurred())
		status, body := fetchToken(url.Values{"grant_type": {"client_credentials"}}, fakecf.DefaultClientID, fakecf.DefaultClientSecret)
		Expect(status).To(Equal(http.StatusOK))
		token = body["access_token"].(string)
	})

	Describe("GET /", func() {
		It("points the UAA and login links at itself", func() {
			token = ""
			resp, body := get("/")
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			var root struct {
				Links map[string]*struct {
					Href string `json:"href"`
				} `json:"links"`
			}
			Expect(json.Unmarshal(body, &root)).To(Succeed())
			Expect(root.Links["uaa"].Href).To(Equal(server.URL()))
			Expect(root.Links["login"].Href).To(Equal(server.URL()))
			Expect(root.Links["self"].Href).To(Equal(server.URL()))
		})
	})

	Describe("POST /oauth/token", func() {
		It("issues a bearer token for the password grant with the cf client", func() {
			status, body := fetchToken(url.Values{"grant_type": {"password"}, "username": {fakecf.DefaultUsername}, "password": {fakecf.DefaultPassword}}, "cf", "")
			Expect(status).To(Equal(http.StatusOK))
			Expect(body).To(HaveKeyWithValue("token_type", "bearer"))
			Expect(body).To(HaveKey("refresh_token"))
			Expect(body["expires_in"]).To(BeNumerically(">", 0))
		})

		It("refuses a wrong password and a wrong client secret", func() {
			status, _ := fetchToken(url.Values{"grant_type": {"password"}, "username": {fakecf.DefaultUsername}, "password": {"nope"}}, "cf", "")
			Expect(status).To(Equal(http.StatusUnauthorized))
			status, _ = fetchToken(url.Values{"grant_type": {"client_credentials"}}, fakecf.DefaultClientID, "nope")
			Expect(status).To(Equal(http.StatusUnauthorized))
		})

		It("counts token requests", func() {
			Expect(server.TokenRequests()).To(Equal(1))
			fetchToken(url.Values{"grant_type": {"client_credentials"}}, fakecf.DefaultClientID, fakecf.DefaultClientSecret)
			Expect(server.TokenRequests()).To(Equal(2))
			Expect(server.TokensIssued()).To(Equal(2))
		})
	})

	Describe("authentication", func() {
		It("answers 401 without a token", func() {
			token = ""
			resp, body := get("/v3/apps")
			Expect(resp.StatusCode).To(Equal(http.StatusUnauthorized))
			var e cfErrors
			Expect(json.Unmarshal(body, &e)).To(Succeed())
			Expect(e.Errors[0].Title).To(Equal("CF-NotAuthenticated"))
		})

		It("answers 401 for an unknown or revoked token", func() {
			server.RevokeTokens()
			resp, body := get("/v3/apps")
			Expect(resp.StatusCode).To(Equal(http.StatusUnauthorized))
			var e cfErrors
			Expect(json.Unmarshal(body, &e)).To(Succeed())
			Expect(e.Errors[0].Title).To(Equal("CF-InvalidAuthToken"))
		})
	})

	Describe("pagination", func() {
		It("walks every page through next.href and ends with null", func() {
			var seen []string
			next := "/v3/apps?per_page=50"
			pages := 0
			for next != "" {
				l := list(next)
				pages++
				Expect(l.Pagination.TotalResults).To(Equal(120))
				Expect(l.Pagination.TotalPages).To(Equal(3))
				seen = append(seen, guids(l.Resources)...)
				next = ""
				if l.Pagination.Next != nil {
					next = l.Pagination.Next.Href
					Expect(next).To(HavePrefix(server.URL() + "/v3/apps?"))
				}
			}
			Expect(pages).To(Equal(3))
			Expect(seen).To(HaveLen(120))
			want := make([]string, 120)
			for i := range want {
				want[i] = fakecf.GUID("app", i)
			}
			Expect(seen).To(Equal(want), "oldest first, no repeats")
		})

		It("has no previous link on the first page and one on later pages", func() {
			Expect(list("/v3/apps?per_page=50").Pagination.Previous).To(BeNil())
			Expect(list("/v3/apps?per_page=50&page=2").Pagination.Previous).NotTo(BeNil())
		})

		It("defaults to 50 per page", func() {
			Expect(list("/v3/apps").Resources).To(HaveLen(50))
		})

		It("answers an empty list with one page", func() {
			l := list("/v3/apps?names=nothing")
			Expect(l.Pagination.TotalResults).To(Equal(0))
			Expect(l.Pagination.TotalPages).To(Equal(1))
			Expect(l.Resources).To(BeEmpty())
			Expect(l.Pagination.Next).To(BeNil())
		})

		DescribeTable("per_page bounds",
			func(perPage string, status int) {
				resp, body := get("/v3/apps?per_page=" + perPage)
				Expect(resp.StatusCode).To(Equal(status))
				if status == http.StatusBadRequest {
					var e cfErrors
					Expect(json.Unmarshal(body, &e)).To(Succeed())
					Expect(e.Errors).To(HaveLen(1))
					Expect(e.Errors[0].Code).To(Equal(10005))
					Expect(e.Errors[0].Title).To(Equal("CF-BadQueryParameter"))
					Expect(e.Errors[0].Detail).To(ContainSubstring("Per page must be between 1 and 5000"))
				}
			},
			Entry("0", "0", http.StatusBadRequest),
			Entry("1", "1", http.StatusOK),
			Entry("5000", "5000", http.StatusOK),
			Entry("5001", "5001", http.StatusBadRequest),
			Entry("not a number", "x", http.StatusBadRequest),
		)

		It("refuses unknown query parameters", func() {
			resp, body := get("/v3/apps?fields[apps]=name")
			Expect(resp.StatusCode).To(Equal(http.StatusBadRequest))
			Expect(string(body)).To(ContainSubstring("Unknown query parameter"))
		})
	})

	Describe("filters", func() {
		It("ORs comma-separated guids", func() {
			a, b := fakecf.GUID("app", 3), fakecf.GUID("app", 77)
			Expect(guids(list("/v3/apps?guids=" + a + "," + b).Resources)).To(Equal([]string{a, b}))
		})

		It("filters apps by names and space", func() {
			Expect(guids(list("/v3/apps?names=app-5,app-6").Resources)).To(ConsistOf(fakecf.GUID("app", 5), fakecf.GUID("app", 6)))
			l := list("/v3/apps?space_guids=" + pop.Spaces[1].GUID)
			Expect(l.Pagination.TotalResults).To(Equal(30))
		})

		It("filters processes by app and type", func() {
			Expect(server.SetProcess(fakecf.GUID("app", 1), "worker", 3)).To(Succeed())
			l := list("/v3/processes?app_guids=" + fakecf.GUID("app", 1) + "," + fakecf.GUID("app", 2) + "&types=web")
			Expect(l.Resources).To(HaveLen(2))
			for _, p := range l.Resources {
				Expect(p["type"]).To(Equal("web"))
				Expect(p["instances"]).To(BeNumerically("==", 2))
			}
			Expect(list("/v3/processes?app_guids=" + fakecf.GUID("app", 1)).Resources).To(HaveLen(2))
		})

		It("filters routes by destination app", func() {
			l := list("/v3/routes?app_guids=" + fakecf.GUID("app", 4))
			Expect(l.Resources).To(HaveLen(2), "its own route and its /metrics route")
			dest := l.Resources[0]["destinations"].([]any)[0].(map[string]any)
			Expect(dest["app"]).To(HaveKeyWithValue("guid", fakecf.GUID("app", 4)))
			Expect(dest["app"]).To(HaveKeyWithValue("process", map[string]any{"type": "web"}))
		})

		It("filters service plans by broker catalog id", func() {
			Expect(guids(list("/v3/service_plans?broker_catalog_ids=prometheus-plan").Resources)).To(Equal([]string{pop.Plan.GUID}))
			Expect(list("/v3/service_plans?broker_catalog_ids=other").Resources).To(BeEmpty())
		})

		It("filters bindings by plan, type and app", func() {
			Expect(list("/v3/service_credential_bindings?service_plan_guids=" + pop.Plan.GUID + "&type=app").Pagination.TotalResults).To(Equal(30))
			Expect(list("/v3/service_credential_bindings?type=key").Resources).To(BeEmpty())
			l := list("/v3/service_credential_bindings?app_guids=" + fakecf.GUID("app", 2))
			Expect(guids(l.Resources)).To(Equal([]string{fakecf.GUID("binding", 2)}))
		})
	})

	Describe("include", func() {
		It("includes each space and org of a page once", func() {
			l := list("/v3/apps?per_page=5000&include=space.organization")
			Expect(l.Resources).To(HaveLen(120))
			Expect(guids(l.Included["spaces"])).To(ConsistOf(pop.Spaces[0].GUID, pop.Spaces[1].GUID, pop.Spaces[2].GUID, pop.Spaces[3].GUID))
			Expect(guids(l.Included["organizations"])).To(ConsistOf(pop.Orgs[0].GUID, pop.Orgs[1].GUID))
		})

		It("returns an included object even when the page is empty", func() {
			resp, body := get("/v3/apps?names=nothing&include=space.organization")
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			Expect(string(body)).To(ContainSubstring(`"included":{"spaces":[],"organizations":[]}`))
		})

		It("includes domains of routes", func() {
			l := list("/v3/routes?include=domain&app_guids=" + fakecf.GUID("app", 1))
			Expect(l.Included["domains"]).To(HaveLen(1))
			Expect(l.Included["domains"][0]).To(HaveKeyWithValue("internal", false))
		})

		It("includes the space and org of one app", func() {
			resp, body := get("/v3/apps/" + fakecf.GUID("app", 0) + "?include=space.organization")
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			var app struct {
				Name     string                      `json:"name"`
				Included map[string][]map[string]any `json:"included"`
			}
			Expect(json.Unmarshal(body, &app)).To(Succeed())
			Expect(app.Name).To(Equal("app-0"))
			Expect(app.Included["spaces"][0]).To(HaveKeyWithValue("name", "space-0"))
			Expect(app.Included["organizations"][0]).To(HaveKeyWithValue("name", "org-0"))
		})

		It("refuses an unknown include", func() {
			resp, _ := get("/v3/apps?include=routes")
			Expect(resp.StatusCode).To(Equal(http.StatusBadRequest))
		})
	})

	Describe("show", func() {
		It("answers 404 with a CF error for an unknown app", func() {
			resp, body := get("/v3/apps/" + fakecf.GUID("app", 9999))
			Expect(resp.StatusCode).To(Equal(http.StatusNotFound))
			var e cfErrors
			Expect(json.Unmarshal(body, &e)).To(Succeed())
			Expect(e.Errors[0].Code).To(Equal(10010))
			Expect(e.Errors[0].Title).To(Equal("CF-ResourceNotFound"))
			Expect(e.Errors[0].Detail).To(Equal("App not found"))
		})

		It("shows a binding with its last operation", func() {
			guid := fakecf.GUID("binding", 1)
			Expect(server.SetBindingLastOperation(guid, fakecf.LastOperation{Type: fakecf.OpDelete, State: fakecf.OpInProgress})).To(Succeed())
			resp, body := get("/v3/service_credential_bindings/" + guid)
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			var b map[string]any
			Expect(json.Unmarshal(body, &b)).To(Succeed())
			Expect(b["last_operation"]).To(HaveKeyWithValue("type", "delete"))
			Expect(b["last_operation"]).To(HaveKeyWithValue("state", "in progress"))
			Expect(b["relationships"]).To(HaveKeyWithValue("app", map[string]any{"data": map[string]any{"guid": fakecf.GUID("app", 1)}}))
		})
	})

	Describe("visibility", func() {
		BeforeEach(func() {
			server.RestrictToSpaces(pop.Spaces[0].GUID)
		})

		It("lists only resources in the user's spaces", func() {
			Expect(list("/v3/apps").Pagination.TotalResults).To(Equal(30))
			Expect(list("/v3/service_credential_bindings").Pagination.TotalResults).To(Equal(8))
			Expect(list("/v3/organizations").Resources).To(HaveLen(1))
		})

		It("answers 404 for an app in another space", func() {
			resp, _ := get("/v3/apps/" + fakecf.GUID("app", 1))
			Expect(resp.StatusCode).To(Equal(http.StatusNotFound))
			resp, _ = get("/v3/apps/" + fakecf.GUID("app", 4))
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
		})
	})

	Describe("mutations", func() {
		It("deleting an app removes its processes, route destinations and bindings", func() {
			app := fakecf.GUID("app", 7)
			Expect(server.DeleteApp(app)).To(Succeed())
			Expect(list("/v3/processes?app_guids=" + app).Resources).To(BeEmpty())
			Expect(list("/v3/routes?app_guids=" + app).Resources).To(BeEmpty())
			Expect(list("/v3/service_credential_bindings?app_guids=" + app).Resources).To(BeEmpty())
			resp, _ := get("/v3/routes/" + fakecf.GUID("route", 7))
			Expect(resp.StatusCode).To(Equal(http.StatusOK), "the route stays, unmapped")
		})

		It("scales, stops and renames", func() {
			app := fakecf.GUID("app", 8)
			Expect(server.Scale(app, 5)).To(Succeed())
			Expect(server.StopApp(app)).To(Succeed())
			Expect(server.Rename(app, "renamed")).To(Succeed())
			l := list("/v3/apps?guids=" + app)
			Expect(l.Resources[0]).To(HaveKeyWithValue("state", "STOPPED"))
			Expect(l.Resources[0]).To(HaveKeyWithValue("name", "renamed"))
			Expect(list("/v3/processes?app_guids=" + app).Resources[0]).To(HaveKeyWithValue("instances", BeNumerically("==", 5)))
		})

		It("refuses references to unknown resources", func() {
			Expect(server.Scale(fakecf.GUID("app", 5000), 1)).NotTo(Succeed())
			_, err := server.AddBinding(fakecf.Binding{AppGUID: fakecf.GUID("app", 1), PlanGUID: fakecf.GUID("plan", 9)})
			Expect(err).To(HaveOccurred())
		})
	})

	Describe("request line limit", func() {
		It("answers 414 above 8192 bytes and serves up to it", func() {
			path := "/v3/apps?names="
			long := strings.Repeat("a", fakecf.MaxRequestLine-len("GET ")-len(path))
			resp, _ := get(path + long)
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			resp, _ = get(path + long + "a")
			Expect(resp.StatusCode).To(Equal(http.StatusRequestURITooLong))
		})
	})

	Describe("instrumentation and faults", func() {
		It("counts requests per path", func() {
			server.ResetCounts()
			list("/v3/apps")
			list("/v3/apps?page=2")
			list("/v3/routes")
			Expect(server.RequestsTo("/v3/apps")).To(Equal(2))
			Expect(server.RequestsTo("/v3/routes")).To(Equal(1))
			Expect(server.Requests()).To(Equal(3))
			Expect(server.APIRequests()).To(Equal(3))
			Expect(server.RequestLog()).To(ContainElement("GET /v3/apps?page=2"))
		})

		It("fails the next N matching requests with the given status", func() {
			server.InjectFault(fakecf.Fault{Path: "/v3/apps", Times: 2, Status: http.StatusTooManyRequests, RetryAfter: "1"})
			resp, _ := get("/v3/routes")
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			resp, _ = get("/v3/apps")
			Expect(resp.StatusCode).To(Equal(http.StatusTooManyRequests))
			Expect(resp.Header.Get("Retry-After")).To(Equal("1"))
			resp, _ = get("/v3/apps")
			Expect(resp.StatusCode).To(Equal(http.StatusTooManyRequests))
			resp, _ = get("/v3/apps")
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
		})

		It("fails every request until cleared", func() {
			server.InjectFault(fakecf.Fault{})
			for range 3 {
				resp, _ := get("/v3/domains")
				Expect(resp.StatusCode).To(Equal(http.StatusInternalServerError))
			}
			server.ClearFaults()
			resp, _ := get("/v3/domains")
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
		})

		It("truncates one page of a listing", func() {
			server.InjectFault(fakecf.Fault{Path: "/v3/apps", TruncatePage: 2, Times: 1})
			list("/v3/apps?per_page=50")
			resp, body := get("/v3/apps?per_page=50&page=2")
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			var l listing
			Expect(json.Unmarshal(body, &l)).NotTo(Succeed())
			list("/v3/apps?per_page=50&page=2")
		})

		It("hangs until the client gives up", func() {
			server.InjectFault(fakecf.Fault{Path: "/v3/apps", Hang: true, Times: 1})
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, server.URL()+"/v3/apps", nil)
			Expect(err).NotTo(HaveOccurred())
			req.Header.Set("Authorization", "bearer "+token)
			_, err = http.DefaultClient.Do(req)
			Expect(err).To(MatchError(context.DeadlineExceeded))
			list("/v3/apps")
		})

	})
})
