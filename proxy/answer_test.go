package proxy_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/proxy"
)

// rawUpstream answers every request on every connection with the same raw
// bytes, then closes the connection when closeAfter is set.
func rawUpstream(answer string, closeAfter bool) string {
	return rawServer(func(int, *http.Request) (string, bool) { return answer, closeAfter })
}

// rawServer is an upstream that answers each request with the raw bytes
// answer returns for it (given the connection's number, from 1), then
// closes the connection when told to.
func rawServer(answer func(conn int, r *http.Request) (raw string, close bool)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(ln.Close)
	go func() {
		for n := 1; ; n++ {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				br := bufio.NewReader(conn)
				for {
					r, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					raw, closing := answer(n, r)
					if _, err := io.WriteString(conn, raw); err != nil || closing {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

var _ = Describe("Answering with the upstream's response", func() {
	It("never pools an upstream connection that sent more than it framed", func() {
		// A 204 announcing a body, then a whole second response: the
		// second must never answer the next scrape.
		answer := "HTTP/1.1 204 No Content\r\nContent-Length: 50\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nPOISON\n"
		p, _ := newProxy(proxy.Options{UpstreamScheme: "http", UpstreamAddr: rawUpstream(answer, false)}, nil)
		DeferCleanup(p.CloseIdleConnections)
		addr := startProxy(p)
		for range 3 {
			w := send(addr, httptest.NewRequest("GET", "http://my-app.example.com/metrics?"+scrapeQuery(appGUID, "0"), nil))
			Expect(w.Code).To(Equal(http.StatusNoContent))
			Expect(w.Body.String()).To(BeEmpty())
		}
	})

	big := strings.Repeat("x", 100<<10)

	DescribeTable("upstream's raw response -> what the client gets",
		func(answer string, closeAfter bool, clientProto string, wantStatus int, wantBody string, wantFraming string, wantClosed bool) {
			p, _ := newProxy(proxy.Options{UpstreamScheme: "http", UpstreamAddr: rawUpstream(answer, closeAfter)}, nil)
			DeferCleanup(p.CloseIdleConnections)
			conn, err := net.Dial("tcp", startProxy(p))
			Expect(err).NotTo(HaveOccurred())
			defer conn.Close()
			_, err = io.WriteString(conn, "GET http://my-app.example.com/metrics?"+scrapeQuery(appGUID, "0")+" "+clientProto+"\r\nHost: my-app.example.com\r\n\r\n")
			Expect(err).NotTo(HaveOccurred())
			Expect(conn.SetReadDeadline(time.Now().Add(5 * time.Second))).To(Succeed())
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			Expect(err).NotTo(HaveOccurred())
			body, err := io.ReadAll(resp.Body)
			if wantBody == "truncated" {
				Expect(err).To(HaveOccurred())
				return
			}
			Expect(err).NotTo(HaveOccurred())
			Expect(resp.StatusCode).To(Equal(wantStatus))
			Expect(string(body)).To(ContainSubstring(wantBody))
			switch wantFraming {
			case "length":
				Expect(resp.ContentLength).To(Equal(int64(len(body))))
			case "chunked":
				Expect(resp.TransferEncoding).To(Equal([]string{"chunked"}))
			case "close":
				Expect(resp.ContentLength).To(Equal(int64(-1)))
				Expect(resp.TransferEncoding).To(BeNil())
			}
			Expect(conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))).To(Succeed())
			_, err = br.ReadByte()
			var ne net.Error
			closed := errors.Is(err, io.EOF)
			Expect(closed || errors.As(err, &ne) && ne.Timeout()).To(BeTrue(), "%v", err)
			Expect(closed).To(Equal(wantClosed))
		},
		Entry("Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nup 1\n", false, "HTTP/1.1", 200, "up 1\n", "length", false),
		Entry("a 60 KiB body with Content-Length, read whole", "HTTP/1.1 200 OK\r\nContent-Length: 61440\r\n\r\n"+big[:60<<10], false, "HTTP/1.1", 200, big[:60<<10], "length", false),
		Entry("a header longer than the read buffer (40 KiB)", "HTTP/1.1 200 OK\r\nX-Big: "+big[:40<<10]+"\r\nContent-Length: 5\r\n\r\nup 1\n", false, "HTTP/1.1", 200, "up 1\n", "length", false),
		Entry("a header over 64 KiB: 502", "HTTP/1.1 200 OK\r\nX-Big: "+big[:65<<10]+"\r\nContent-Length: 5\r\n\r\nup 1\n", false, "HTTP/1.1", 502, "exceeds", "length", false),
		Entry("a large body with Content-Length, streamed", "HTTP/1.1 200 OK\r\nContent-Length: 102400\r\n\r\n"+big, false, "HTTP/1.1", 200, big, "length", false),
		Entry("chunked with a trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nup 1\n\r\n0\r\nX-T: 1\r\n\r\n", false, "HTTP/1.1", 200, "up 1\n", "chunked", false),
		Entry("chunked, to an HTTP/1.0 client", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nup 1\n\r\n0\r\n\r\n", false, "HTTP/1.0", 200, "up 1\n", "close", true),
		Entry("ended by the upstream closing", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nup 1\n", true, "HTTP/1.1", 200, "up 1\n", "chunked", false),
		Entry("an HTTP/1.0 upstream", "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nup 1\n", false, "HTTP/1.1", 200, "up 1\n", "length", false),
		Entry("103 Early Hints first", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nup 1\n", false, "HTTP/1.1", 200, "up 1\n", "length", false),
		Entry("a status without a reason", "HTTP/1.1 299\r\nContent-Length: 5\r\n\r\nup 1\n", false, "HTTP/1.1", 299, "up 1\n", "length", false),
		Entry("204", "HTTP/1.1 204 No Content\r\n\r\n", false, "HTTP/1.1", 204, "", "", false),
		Entry("101 unasked: 502", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n", false, "HTTP/1.1", 502, "switched protocols", "length", false),
		Entry("a small body cut short: 502", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nup 1\n", true, "HTTP/1.1", 502, "cut short", "length", false),
		Entry("a small chunked body cut short: 502", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nup 1\n\r\n40\r\nup 2", true, "HTTP/1.1", 502, "cut short", "length", false),
		Entry("a large chunked body: streamed after what was read", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n19000\r\n"+big+"\r\n0\r\n\r\n", false, "HTTP/1.1", 200, big, "chunked", false),
		Entry("a large body cut short: truncated", "HTTP/1.1 200 OK\r\nContent-Length: 204800\r\n\r\n"+big, true, "HTTP/1.1", 0, "truncated", "", true),
		Entry("a malformed status line: 502", "HTTP/1.1 OK\r\n\r\n", true, "HTTP/1.1", 502, "malformed", "length", false),
		Entry("conflicting lengths: 502", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nup 1\n", true, "HTTP/1.1", 502, "Content-Length", "length", false),
	)
})
