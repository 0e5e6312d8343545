package main

import (
	"net"
	"strconv"

	"github.com/alphagov/cf-app-discovery/config"
	"github.com/alphagov/cf-app-discovery/proxy"
)

// settings is paas-proxy's configuration (README, "Configuration").
type settings struct {
	ListenAddr     string
	AllowList      proxy.AllowList
	UpstreamScheme string
	UpstreamAddr   string
	LogLevel       string
}

const defaultListenAddr = "127.0.0.1:8080"

// defaultListenHost is where PORT alone makes the proxy listen: a forward
// proxy is for its own host's Prometheus, never for the network.
const defaultListenHost = "127.0.0.1"

// loadSettings reads the configuration and returns one error naming every
// problem. LISTEN_ADDR is where the proxy listens; PORT alone means
// 127.0.0.1 on that port. ALLOWED_DOMAINS is required: without it the proxy would be an
// open proxy.
func loadSettings(e *config.Env) (settings, error) {
	port := e.Port(0)
	listenAddr, hasListenAddr := e.Lookup("LISTEN_ADDR")
	if !hasListenAddr {
		listenAddr = defaultListenAddr
		if port != 0 {
			listenAddr = net.JoinHostPort(defaultListenHost, strconv.Itoa(port))
		}
	}
	s := settings{
		ListenAddr:     listenAddr,
		UpstreamScheme: e.OneOf("UPSTREAM_SCHEME", "https", "https", "http"),
		UpstreamAddr:   e.String("UPSTREAM_ADDR", ""),
		LogLevel:       e.LogLevel(),
	}
	if !validHostPort(s.ListenAddr, true) {
		e.Problem("LISTEN_ADDR must be host:port (e.g. 127.0.0.1:8080), got %q", s.ListenAddr)
	} else if _, p, _ := net.SplitHostPort(s.ListenAddr); hasListenAddr && port != 0 && p != strconv.Itoa(port) {
		e.Problem("LISTEN_ADDR %q and PORT %d name different ports: set one of them", s.ListenAddr, port)
	}
	if s.UpstreamAddr != "" && !validHostPort(s.UpstreamAddr, false) {
		e.Problem("UPSTREAM_ADDR must be host:port (e.g. 10.0.0.1:443), got %q", s.UpstreamAddr)
	}
	if domains := e.List("ALLOWED_DOMAINS"); len(domains) == 0 {
		e.Problem("ALLOWED_DOMAINS is required: a comma-separated list of the domains apps are scraped on (e.g. cloudapps.digital)")
	} else if allow, err := proxy.ParseAllowList(domains); err != nil {
		e.Problem("ALLOWED_DOMAINS: %v", err)
	} else {
		s.AllowList = allow
	}
	return s, e.Err()
}

// validHostPort accepts host:port with a port in 1..65535 (0 too when
// listening: the system picks one). The host of a listen address may be
// empty (all interfaces).
func validHostPort(addr string, listen bool) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || (host == "" && !listen) {
		return false
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return false
	}
	if listen {
		return n >= 0 && n <= 65535
	}
	return n >= 1 && n <= 65535
}
