//go:build integration

package integration

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"
)

// Fault is what the proxy does to one request.
type Fault int

const (
	// Pass forwards the request.
	Pass Fault = iota
	// Reset reads part of the request, then drops the connection with a
	// TCP reset.
	Reset
	// Stall stops reading the request and never answers it.
	Stall
	// SlowDown answers 503 SlowDown, S3's "reduce your request rate".
	SlowDown
	// Forbidden answers 403 AccessDenied.
	Forbidden
)

var faultNames = map[Fault]string{Pass: "pass", Reset: "reset", Stall: "stall", SlowDown: "503", Forbidden: "403"}

// FaultProxy sits on loopback between our binary and a server, and breaks
// the requests its Rule picks. It only proxies: requests keep the Host they
// were signed for.
type FaultProxy struct {
	Endpoint string // http://127.0.0.1:PORT

	mu    sync.Mutex
	rule  func(r *http.Request) Fault
	seen  map[Fault]int
	stop  chan struct{}
	proxy *httputil.ReverseProxy
}

// StartFaultProxy proxies to target (http://HOST:PORT) until the test ends.
func StartFaultProxy(t testing.TB, target string) *FaultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &FaultProxy{seen: map[Fault]int{}, stop: make(chan struct{}),
		rule: func(*http.Request) Fault { return Pass }}
	p.proxy = &httputil.ReverseProxy{
		Director: func(r *http.Request) { r.URL.Scheme, r.URL.Host = u.Scheme, u.Host },
		// A fresh connection per request: a server restarted behind the
		// proxy must not be reached through a dead pooled one.
		Transport: &http.Transport{DisableKeepAlives: true},
		// A dead server behind the proxy is the point of some tests.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.Endpoint = "http://" + l.Addr().String()
	srv := &http.Server{Handler: p}
	go srv.Serve(l)
	t.Cleanup(func() {
		close(p.stop)
		srv.Close()
	})
	return p
}

// SetRule changes which requests break from now on.
func (p *FaultProxy) SetRule(rule func(r *http.Request) Fault) {
	p.mu.Lock()
	p.rule = rule
	p.mu.Unlock()
}

// Seen counts the requests that got each fault.
func (p *FaultProxy) Seen(f Fault) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen[f]
}

func (p *FaultProxy) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := ""
	for f, n := range p.seen {
		out += fmt.Sprintf(" %s=%d", faultNames[f], n)
	}
	return "proxy saw" + out
}

// IsPart is true for an S3 UploadPart request.
func IsPart(r *http.Request) bool {
	return r.Method == http.MethodPut && r.URL.Query().Has("partNumber")
}

func (p *FaultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	f := p.rule(r)
	p.seen[f]++
	p.mu.Unlock()
	switch f {
	case Pass:
		p.proxy.ServeHTTP(w, r)
	case SlowDown, Forbidden:
		io.Copy(io.Discard, r.Body)
		code, msg := http.StatusServiceUnavailable, "<Code>SlowDown</Code><Message>Please reduce your request rate.</Message>"
		if f == Forbidden {
			code, msg = http.StatusForbidden, "<Code>AccessDenied</Code><Message>Access Denied.</Message>"
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(code)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error>%s<Resource>%s</Resource><RequestId>fault</RequestId></Error>`, msg, r.URL.Path)
	case Reset:
		io.CopyN(io.Discard, r.Body, 64<<10)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		conn.(*net.TCPConn).SetLinger(0) // close with RST, not FIN
		conn.Close()
	case Stall:
		select {
		case <-p.stop:
		case <-time.After(5 * time.Minute):
		}
	}
}
