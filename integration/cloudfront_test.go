//go:build integration

package integration

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// frontHosts are the cloud hosts a CloudFront answers for: the storage
// and identity services of Azure and Google.
var frontHosts = []string{
	"devstoreaccount1.blob.core.windows.net", "login.microsoftonline.com",
	"storage.googleapis.com", "oauth2.googleapis.com", "sts.googleapis.com", "iamcredentials.googleapis.com",
}

// CloudFront lets our binary reach the real cloud hosts' names, over
// HTTPS, on loopback: it is the HTTPS proxy of the run (HTTPS_PROXY),
// answers CONNECT for the hosts above only (nothing leaves the machine),
// presents a certificate for them from a CA of its own that the run
// trusts (SSL_CERT_FILE), and passes each request on, unchanged, to the
// loopback server standing for that host: Azurite, fake-gcs-server, or
// an identity service. So the clients run exactly as against the
// cloud: same URLs, TLS, the SDKs' own authentication. It records what
// went to each host.
type CloudFront struct {
	CAFile, CertFile, KeyFile string
	URL                       string // http://127.0.0.1:PORT, for HTTPS_PROXY
	caPool                    *x509.CertPool

	mu       sync.Mutex
	backends map[string]*httputil.ReverseProxy
	seen     []FrontRequest
}

// FrontRequest is one request a CloudFront passed on.
type FrontRequest struct {
	Host, Method, Path, Query, Authorization string
}

// StartCloudFront makes the CA and certificate and starts the proxy.
func StartCloudFront(t testing.TB) *CloudFront {
	t.Helper()
	dir := t.TempDir()
	f := &CloudFront{CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem"),
		backends: map[string]*httputil.ReverseProxy{}}
	cert := f.makeCerts(t)
	inner := &chanListener{conns: make(chan net.Conn), done: make(chan struct{})}
	// TLS ends here; the requests inside go to the host's backend.
	front := &http.Server{Handler: http.HandlerFunc(f.pass), ReadHeaderTimeout: 30 * time.Second}
	go front.Serve(tls.NewListener(inner, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}))
	proxy := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, port, _ := net.SplitHostPort(r.Host)
		if r.Method != http.MethodConnect || port != "443" || !f.serves(host) {
			http.Error(w, "not a host of this test", http.StatusForbidden)
			return
		}
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		buf.WriteString("HTTP/1.1 200 Connection established\r\n\r\n")
		buf.Flush()
		select {
		case inner.conns <- &bufConn{Conn: conn, r: buf.Reader}:
		case <-inner.done:
			conn.Close()
		}
	}), ReadHeaderTimeout: 30 * time.Second}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go proxy.Serve(l)
	f.URL = "http://" + l.Addr().String()
	t.Cleanup(func() { proxy.Close(); inner.Close(); front.Close() })
	return f
}

// Route sends the requests for host to backend (http or https; an https
// backend's certificate must be this CloudFront's).
func (f *CloudFront) Route(host, backend string) {
	u, err := url.Parse(backend)
	if err != nil {
		panic(err)
	}
	p := httputil.NewSingleHostReverseProxy(u)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: f.caPool}
	tr.Proxy = nil
	p.Transport = tr
	f.mu.Lock()
	f.backends[host] = p
	f.mu.Unlock()
}

func (f *CloudFront) serves(host string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.backends[host] != nil
}

func (f *CloudFront) pass(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	f.mu.Lock()
	p := f.backends[host]
	f.seen = append(f.seen, FrontRequest{Host: host, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
		Authorization: r.Header.Get("Authorization")})
	f.mu.Unlock()
	if p == nil {
		http.Error(w, "no backend", http.StatusBadGateway)
		return
	}
	// The Host header stays the cloud's: Azurite reads the account from
	// it, as Azure does.
	p.ServeHTTP(w, r)
}

// Requests returns the requests passed on so far to host whose path or
// query names the key prefix (so that runs in parallel tell theirs
// apart).
func (f *CloudFront) Requests(host, prefix string) []FrontRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var seen []FrontRequest
	escaped := url.QueryEscape(prefix)
	for _, r := range f.seen {
		if r.Host == host && (strings.Contains(r.Path, "/"+prefix+"/") || strings.HasSuffix(r.Path, "/"+prefix) ||
			strings.Contains(r.Query, "="+escaped+"%2F") || strings.Contains(r.Query, "="+escaped+"&") || strings.HasSuffix(r.Query, "="+escaped)) {
			seen = append(seen, r)
		}
	}
	return seen
}

// AllRequests returns every request passed on so far to host.
func (f *CloudFront) AllRequests(host string) []FrontRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var seen []FrontRequest
	for _, r := range f.seen {
		if r.Host == host {
			seen = append(seen, r)
		}
	}
	return seen
}

// Env points a run at the CloudFront and makes it trust its CA only.
func (f *CloudFront) Env() []string {
	return []string{"HTTPS_PROXY=" + f.URL, "https_proxy=" + f.URL, "NO_PROXY=", "no_proxy=",
		"SSL_CERT_FILE=" + f.CAFile, "SSL_CERT_DIR=" + filepath.Dir(f.CAFile)}
}

// TLSConfig trusts the CloudFront's CA, for the test's own clients.
func (f *CloudFront) TLSConfig() *tls.Config { return &tls.Config{RootCAs: f.caPool} }

func (f *CloudFront) makeCerts(t testing.TB) tls.Certificate {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bcb test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: frontHosts[0]},
		DNSNames: append([]string{"localhost"}, frontHosts...), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	write := func(path, kind string, der []byte) {
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(f.CAFile, "CERTIFICATE", caDER)
	write(f.CertFile, "CERTIFICATE", der)
	write(f.KeyFile, "PRIVATE KEY", keyDER)
	f.caPool = x509.NewCertPool()
	f.caPool.AddCert(caCert)
	cert, err := tls.X509KeyPair(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// chanListener hands the tunnelled connections to the TLS server.
type chanListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// bufConn reads first what the proxy's reader already buffered.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }
