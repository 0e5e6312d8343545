package acceptance_test

import (
	"net"
	"net/http"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

const (
	// negotiationApp is scraped by every Prometheus as the documented job
	// does, and by Prometheus 3 also by a job that asks only for the text
	// format, without compression.
	negotiationApp = "negotiation"
	// blankContentTypeApp answers in the text format, whatever Accept
	// asks, and with no Content-Type, as some hand-written /metrics
	// endpoints do. Prometheus 3 also scrapes it by a job without
	// fallback_scrape_protocol.
	blankContentTypeApp = "blank-content-type"
)

// prometheus3Variants are the jobs the Prometheus 3 runs beside the
// documented one (Debian's 2.x knows neither scrape_protocols nor
// enable_compression).
var prometheus3Variants = []jobVariant{
	{app: negotiationApp, job: negotiationApp + "-text-only", changes: map[string]any{
		"scrape_protocols": []string{"PrometheusText0.0.4"}, "enable_compression": false}},
	{app: blankContentTypeApp, job: blankContentTypeApp + "-no-fallback", changes: map[string]any{
		"fallback_scrape_protocol": nil}},
}

var _ = Describe("the exposition format, negotiated end to end through paas-proxy", func() {
	It("gives every Prometheus the format and compression it asks for, and Prometheus reads it", func() {
		app := pushApp(negotiationApp, 1)
		bind(app)
		instance := instances(app.GUID, 1)[0]
		Eventually(everyPrometheus(values(`up{job="negotiation"}`), Equal([]string{"1"})), settle).Should(Succeed())
		Eventually(everyPrometheus(values(`app_instance_info{job="negotiation",instance="`+instance+`",name="negotiation",index="0"}`),
			Equal([]string{"1"})), settle).Should(Succeed())
		// Each Prometheus asks for OpenMetrics first and for gzip; its
		// Accept, Accept-Encoding, User-Agent and scrape timeout reach the
		// app, and the app's Content-Type and Content-Encoding reach it.
		for _, p := range w.proms {
			Expect(w.upstream.exchanges(negotiationApp+"."+appsDomain, p.userAgent())).To(ContainElement(And(
				HaveField("Accept", HavePrefix("application/openmetrics-text;version=1.0.0")),
				HaveField("AcceptEncoding", Equal("gzip")),
				HaveField("ScrapeTimeout", Equal("0.9")),
				HaveField("ContentType", HavePrefix("application/openmetrics-text; version=1.0.0")),
				HaveField("ContentEncoding", Equal("gzip")),
			)), "Prometheus %s", p.version)
		}

		p3 := prometheus3()
		Eventually(values(`up{job="negotiation-text-only"}`), settle).WithArguments(p3).Should(Equal([]string{"1"}))
		Eventually(values(`app_instance_info{job="negotiation-text-only",instance="`+instance+`"}`), settle).
			WithArguments(p3).Should(Equal([]string{"1"}))
		Expect(w.upstream.exchanges(negotiationApp+"."+appsDomain, p3.userAgent())).To(ContainElement(And(
			HaveField("Accept", HavePrefix("text/plain;version=0.0.4")),
			HaveField("AcceptEncoding", Equal("identity")),
			HaveField("ContentType", HavePrefix("text/plain; version=0.0.4")),
			HaveField("ContentEncoding", BeEmpty()),
		)))
	})

	It("reads an answer without Content-Type with the documented jobs; Prometheus 3 fails it without fallback_scrape_protocol", func() {
		app := pushApp(blankContentTypeApp, 1)
		bind(app)
		Eventually(everyPrometheus(values(`up{job="blank-content-type"}`), Equal([]string{"1"})), settle).Should(Succeed())
		Eventually(everyPrometheus(values(`app_instance_info{job="blank-content-type",name="blank-content-type"}`),
			Equal([]string{"1"})), settle).Should(Succeed())
		for _, p := range w.proms {
			Expect(w.upstream.exchanges(blankContentTypeApp+"."+appsDomain, p.userAgent())).To(
				ContainElement(HaveField("ContentType", BeEmpty())), "Prometheus %s", p.version)
		}

		// What a tenant sees when the Prometheus 3 host's job lacks the
		// fallback (README, "Using the service").
		Eventually(targetsOf(blankContentTypeApp+"-no-fallback"), settle).WithArguments(prometheus3()).Should(ConsistOf(And(
			HaveField("Health", "down"),
			HaveField("LastError", ContainSubstring("non-compliant scrape target sending blank Content-Type")),
		)))
	})
})

// exchange is what a scrape asked the app for and what the app answered,
// as the app saw them behind paas-proxy and the router.
type exchange struct {
	Accept, AcceptEncoding, ScrapeTimeout string
	ContentType, ContentEncoding          string
}

// upstreamLog stands in front of the fake router and remembers the
// distinct exchanges of each host and User-Agent. For blankContentTypeApp
// it drops the request's Accept and the answer's Content-Type.
type upstreamLog struct {
	next http.Handler
	mu   sync.Mutex
	seen map[[2]string]map[exchange]bool
}

func newUpstreamLog(next http.Handler) *upstreamLog {
	return &upstreamLog{next: next, seen: map[[2]string]map[exchange]bool{}}
}

func (u *upstreamLog) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	e := exchange{Accept: r.Header.Get("Accept"), AcceptEncoding: r.Header.Get("Accept-Encoding"),
		ScrapeTimeout: r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds")}
	if host == blankContentTypeApp+"."+appsDomain {
		r.Header.Del("Accept")
		rw = &noContentType{ResponseWriter: rw}
	}
	u.next.ServeHTTP(rw, r)
	e.ContentType, e.ContentEncoding = rw.Header().Get("Content-Type"), rw.Header().Get("Content-Encoding")
	key := [2]string{host, r.Header.Get("User-Agent")}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.seen[key] == nil {
		u.seen[key] = map[exchange]bool{}
	}
	u.seen[key][e] = true
}

// exchanges returns the distinct exchanges of scrapes of host by userAgent.
func (u *upstreamLog) exchanges(host, userAgent string) []exchange {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []exchange
	for e := range u.seen[[2]string{host, userAgent}] {
		out = append(out, e)
	}
	return out
}

// noContentType sends an answer without Content-Type: it removes the one
// set, and keeps net/http from sniffing one.
type noContentType struct {
	http.ResponseWriter
	wroteHeader bool
}

func (n *noContentType) WriteHeader(code int) {
	if !n.wroteHeader {
		n.wroteHeader = true
		n.Header()["Content-Type"] = nil
	}
	n.ResponseWriter.WriteHeader(code)
}

func (n *noContentType) Write(b []byte) (int, error) {
	if !n.wroteHeader {
		n.WriteHeader(http.StatusOK)
	}
	return n.ResponseWriter.Write(b)
}
