//go:build integration

package integration

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strconv"
	"strings"
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
	// LostReply forwards the request, lets the server act on it, then
	// drops the connection before the answer reaches the client.
	LostReply
	// Delay forwards the request, lets the server act on it, then holds
	// the whole answer, headers included, for the proxy's delay
	// (SetDelay): a store slow to answer.
	Delay
)

var faultNames = map[Fault]string{Pass: "pass", Reset: "reset", Stall: "stall", SlowDown: "503", Forbidden: "403", LostReply: "lost", Delay: "delay"}

// FaultProxy sits on loopback between our binary and a server, and breaks
// the requests its Rule picks. It only proxies: requests keep the Host they
// were signed for.
type FaultProxy struct {
	Endpoint string // http://127.0.0.1:PORT
	// RewriteHost sends the server's own Host: for servers that route by
	// it (fake-gcs-server) and whose clients do not sign it.
	RewriteHost bool

	mu    sync.Mutex
	rule  func(r *http.Request) Fault
	seen  map[Fault]int
	stop  chan struct{}
	proxy *httputil.ReverseProxy
	// rules are the stores' rules in force (StoreRules), and refused the
	// requests they turned down.
	rules   StoreRules
	refused []string
	parts   map[string]map[int]int64 // part sizes by upload ID
	// requests records every request's method, query and headers.
	requests []RecordedRequest
	// delay is how long a Delay answer is held.
	delay time.Duration
}

// RecordedRequest is what the proxy saw of one request.
type RecordedRequest struct {
	Method, Path string
	Query        url.Values
	Header       http.Header
	Host         string
	Size         int64
	// Body is kept for small requests (up to 64 KiB): XML and JSON.
	Body []byte
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
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = u.Scheme, u.Host
			if p.RewriteHost {
				pr.Out.Host = u.Host
			}
		},
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

// SetDelay sets how long Delay holds an answer.
func (p *FaultProxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
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
	rules, delay := p.rules, p.delay
	p.mu.Unlock()
	if rules != (StoreRules{}) || f == Pass {
		// Rules read the body: hold it, and give the server a copy.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		p.record(r, body)
		if code, msg := p.check(rules, r, body); code != 0 {
			p.refuse(w, r, code, msg)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	switch f {
	case Pass:
		p.proxy.ServeHTTP(w, r)
	case LostReply:
		rec := httptest.NewRecorder()
		p.proxy.ServeHTTP(rec, r) // the server acts
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		conn.(*net.TCPConn).SetLinger(0) // and the answer never arrives
		conn.Close()
	case Delay:
		rec := httptest.NewRecorder()
		p.proxy.ServeHTTP(rec, r) // the server acts
		select {
		case <-time.After(delay):
		case <-r.Context().Done(): // the client gave up waiting
			return
		case <-p.stop:
			return
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
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

// StoreRules are rules real S3-compatible stores enforce and MinIO does
// not; each is switched on alone or with others.
type StoreRules struct {
	// RequireMD5 refuses a body without a Content-MD5 that matches it
	// (AWS with Object Lock; 400 InvalidDigest or BadDigest).
	RequireMD5 bool
	// RefuseStreaming refuses aws-chunked bodies and checksum headers or
	// trailers (400), as GCS's XML API, Backblaze B2 and several gateways
	// do.
	RefuseStreaming bool
	// EqualParts refuses to complete an upload whose parts, but the last,
	// differ in size (Cloudflare R2's rule).
	EqualParts bool
	// MaxParts refuses part numbers above it (Scaleway: 1000); 0 is S3's
	// 10,000.
	MaxParts int
	// NoTagging answers 501 to a request that sets tags.
	NoTagging bool
}

// SetStoreRules puts rules in force from now on.
func (p *FaultProxy) SetStoreRules(r StoreRules) {
	p.mu.Lock()
	p.rules, p.refused = r, nil
	p.mu.Unlock()
}

// Refused lists the requests the rules turned down, with why.
func (p *FaultProxy) Refused() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.refused...)
}

// Requests lists what the proxy saw, in order.
func (p *FaultProxy) Requests() []RecordedRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]RecordedRequest(nil), p.requests...)
}

func (p *FaultProxy) record(r *http.Request, body []byte) {
	rec := RecordedRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(),
		Header: r.Header.Clone(), Host: r.Host, Size: int64(len(body))}
	if len(body) <= 64<<10 {
		rec.Body = body
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests = append(p.requests, rec)
}

// check applies the rules to one request: a status and a message to
// refuse it with, or 0.
func (p *FaultProxy) check(rules StoreRules, r *http.Request, body []byte) (int, string) {
	q := r.URL.Query()
	hasBody := r.Method == http.MethodPut && (q.Has("partNumber") || len(q) == 0)
	if rules.RefuseStreaming {
		for k := range r.Header {
			if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-amz-checksum") || lk == "x-amz-trailer" || lk == "x-amz-sdk-checksum-algorithm" {
				return http.StatusBadRequest, "<Code>InvalidArgument</Code><Message>unsupported header " + k + "</Message>"
			}
		}
		if strings.HasPrefix(r.Header.Get("X-Amz-Content-Sha256"), "STREAMING-") || strings.Contains(r.Header.Get("Content-Encoding"), "aws-chunked") {
			return http.StatusBadRequest, "<Code>InvalidRequest</Code><Message>aws-chunked encoding is not supported</Message>"
		}
	}
	if rules.RequireMD5 && hasBody {
		want := r.Header.Get("Content-Md5")
		if want == "" {
			return http.StatusBadRequest, "<Code>InvalidRequest</Code><Message>Missing required header for this request: Content-MD5</Message>"
		}
		sum := md5.Sum(body)
		if want != base64.StdEncoding.EncodeToString(sum[:]) {
			return http.StatusBadRequest, "<Code>BadDigest</Code><Message>The Content-MD5 you specified did not match what we received.</Message>"
		}
	}
	if rules.NoTagging && (r.Header.Get("X-Amz-Tagging") != "" || q.Has("tagging")) {
		return http.StatusNotImplemented, "<Code>NotImplemented</Code><Message>Tagging is not implemented</Message>"
	}
	if n, err := strconv.Atoi(q.Get("partNumber")); err == nil && r.Method == http.MethodPut {
		if rules.MaxParts > 0 && n > rules.MaxParts {
			return http.StatusBadRequest, fmt.Sprintf("<Code>InvalidArgument</Code><Message>Part number must be an integer between 1 and %d, inclusive</Message>", rules.MaxParts)
		}
		p.mu.Lock()
		if p.parts == nil {
			p.parts = map[string]map[int]int64{}
		}
		if p.parts[q.Get("uploadId")] == nil {
			p.parts[q.Get("uploadId")] = map[int]int64{}
		}
		p.parts[q.Get("uploadId")][n] = int64(len(body))
		p.mu.Unlock()
	}
	if rules.EqualParts && r.Method == http.MethodPost && q.Has("uploadId") {
		p.mu.Lock()
		sizes := p.parts[q.Get("uploadId")]
		p.mu.Unlock()
		var nums []int
		for n := range sizes {
			nums = append(nums, n)
		}
		sort.Ints(nums)
		for i := 1; i < len(nums)-1; i++ {
			if sizes[nums[i]] != sizes[nums[0]] {
				return http.StatusBadRequest, "<Code>InvalidPart</Code><Message>All non-trailing parts must have the same length.</Message>"
			}
		}
	}
	return 0, ""
}

func (p *FaultProxy) refuse(w http.ResponseWriter, r *http.Request, code int, msg string) {
	p.mu.Lock()
	p.refused = append(p.refused, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery+": "+msg)
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(code)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error>%s<Resource>%s</Resource><RequestId>rules</RequestId></Error>`, msg, r.URL.Path)
}
