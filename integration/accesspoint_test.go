//go:build integration

package integration

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/minio/minio-go/v7/pkg/signer"
)

// scopeProxy stands where a store's host would be and enforces what AWS
// checks before anything else: the Host a request names and the scope its
// SigV4 signature was made for (region and service). What passes goes to
// MinIO with its Host kept, and MinIO checks the signature itself. MinIO
// knows no s3-outposts service: a request signed for it is checked, then
// signed again for s3 with the same Host, so MinIO still checks the rest.
type scopeProxy struct {
	URL string // http://HOST:PORT, HOST a name /etc/hosts maps to loopback
	// check returns why a request would be refused, or "".
	check func(r *http.Request, region, service string) string

	mu       sync.Mutex
	requests int
	refused  []string
}

// credentialScope is the Credential of a SigV4 Authorization header:
// KEY/DATE/REGION/SERVICE/aws4_request.
var credentialScope = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request,`)

func startScopeProxy(t *testing.T, m *MinIO, host string, check func(r *http.Request, region, service string) string) *scopeProxy {
	t.Helper()
	target, _ := url.Parse(m.Endpoint)
	p := &scopeProxy{check: check}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = target.Scheme, target.Host
			if scope := credentialScope.FindStringSubmatch(pr.In.Header.Get("Authorization")); scope != nil && scope[2] == "s3-outposts" {
				pr.Out.Header.Del("Authorization")
				pr.Out.Header = signer.SignV4(*pr.Out, m.AccessKey, m.SecretKey, "", scope[1]).Header
			}
		},
		Transport: &http.Transport{DisableKeepAlives: true},
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.URL = fmt.Sprintf("http://%s:%d", host, l.Addr().(*net.TCPAddr).Port)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		why := "not signed with SigV4"
		if scope := credentialScope.FindStringSubmatch(r.Header.Get("Authorization")); scope != nil {
			why = p.check(r, scope[1], scope[2])
		}
		p.mu.Lock()
		p.requests++
		if why != "" {
			p.refused = append(p.refused, fmt.Sprintf("%s %s%s: %s", r.Method, r.Host, r.URL.Path, why))
		}
		p.mu.Unlock()
		if why != "" {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>%s</Message></Error>`, why)
			return
		}
		proxy.ServeHTTP(w, r)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return p
}

// Refused lists the requests the proxy turned down, with why.
func (p *scopeProxy) Refused() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.refused...)
}

// Requests is how many requests reached the proxy.
func (p *scopeProxy) Requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}

// port is the proxy's port, for names other than its own.
func (p *scopeProxy) port() string {
	u, _ := url.Parse(p.URL)
	return u.Port()
}

// An access point's ARN in place of the bucket, as Barman 3.20 takes it:
// every request goes to NAME-ACCOUNT under the endpoint (AWS's
// s3-accesspoint host, a VPC endpoint, here a proxy under that very name)
// and is signed for the ARN's region, not the profile's; on Outposts,
// NAME-ACCOUNT.OUTPOST under the endpoint, signed for s3-outposts. The
// objects are Barman's layout: Barman 3.4 restores the backup through the
// bucket behind the access point, and our restore through the ARN.
func TestAccessPoints(t *testing.T) {
	const (
		account = "123456789012"
		outpost = "op-01234567890abcdef"
		apHost  = "s3-accesspoint.us-east-1.amazonaws.com"
		opHost  = "s3-outposts.us-east-1.amazonaws.com"
	)
	label := "pgap-" + account
	hostsEntry(t, apHost, label+"."+apHost, opHost, label+"."+outpost+"."+opHost)
	// MinIO serves NAME-ACCOUNT under either domain as bucket NAME-ACCOUNT.
	m := StartMinIODomain(t, apHost+","+outpost+"."+opHost, label)
	w := &world{store: minioBucket{m, label}, env: m.Env(), cloud: []string{"--endpoint-url", m.Endpoint},
		dest: "s3://" + label + "/pg", prefix: "pg", server: "main"}
	w.startSource(t, nil)
	// The profile names another region: the ARN's must win.
	config := filepath.Join(t.TempDir(), "config")
	os.WriteFile(config, []byte("[default]\nregion = eu-west-3\n"), 0o600)
	env := append(append([]string{}, m.Env()...), "AWS_CONFIG_FILE="+config, "AWS_REGION=", "AWS_DEFAULT_REGION=")

	for i, tc := range []struct {
		name, arn, endpointHost, wantHost, service, codec, data string
	}{
		{"access point", "arn:aws:s3:us-east-1:" + account + ":accesspoint/pgap", apHost, label + "." + apHost, "s3", "-z", "data.tar.gz"},
		{"outposts", "arn:aws:s3-outposts:us-east-1:" + account + ":outpost/" + outpost + "/accesspoint/pgap", opHost,
			label + "." + outpost + "." + opHost, "s3-outposts", "--lz4", "data.tar.lz4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p *scopeProxy
			p = startScopeProxy(t, m, tc.endpointHost, func(r *http.Request, region, service string) string {
				if want := tc.wantHost + ":" + p.port(); r.Host != want {
					return fmt.Sprintf("Host %s, want %s", r.Host, want)
				}
				if region != "us-east-1" || service != tc.service {
					return fmt.Sprintf("signed for %s/%s, want us-east-1/%s", region, service, tc.service)
				}
				if strings.HasPrefix(r.URL.Path, "/"+label) {
					return "the access point's label is in the path: " + r.URL.Path
				}
				return ""
			})
			ap := &world{store: w.store, env: env, cloud: []string{"--endpoint-url", p.URL}, dest: "s3://" + tc.arn + "/pg",
				prefix: w.prefix, server: w.server, src: w.src}
			if r := runCmd(t, env, binary, "-t", "--endpoint-url", p.URL, ap.dest, ap.server); r.code != 0 {
				t.Fatalf("-t through %s: exit %d:\n%s\nrefused: %q", tc.arn, r.code, r.stderr, p.Refused())
			}
			id := ap.backupTo(t, tc.codec)
			if refused := p.Refused(); len(refused) > 0 || p.Requests() < 5 {
				t.Fatalf("%d requests, refused: %q", p.Requests(), refused)
			}
			names := w.names(t, id)
			if !contains(names, tc.data) || !contains(names, "backup.info") {
				t.Fatalf("objects %v", names)
			}
			w.change(t, 65+i)
			if tc.codec == "-z" {
				// Barman 3.4 restores it from the bucket behind the access
				// point, with nothing to change.
				w.checkRestored(t, w.restoreWithBarman(t, id))
				return
			}
			dir, _ := ap.restoreWithOurs(t, id)
			// WAL comes from the archive Barman's tools write, path-style.
			w.checkRestored(t, w.startRestored(t, dir))
			if refused := p.Refused(); len(refused) > 0 {
				t.Fatalf("restore refused: %q", refused)
			}
		})
	}

	// An access point cannot be reached path-style: one line, exit 4 as
	// for any destination its options cannot reach.
	r := runCmd(t, env, binary, "-t", "--addressing-style", "path", "s3://arn:aws:s3:us-east-1:"+account+":accesspoint/pgap/pg", w.server)
	if r.code != 4 || !strings.Contains(r.stderr, "--addressing-style path cannot reach access point arn:aws:s3:us-east-1:"+account+":accesspoint/pgap") {
		t.Errorf("path style to an access point: exit %d:\n%s", r.code, r.stderr)
	}
}

// --addressing-style (Barman 3.18) picks how requests name the bucket,
// over the AWS profile's s3 addressing_style, as botocore's client
// setting does; the TOML key s3.addressing_style does the same.
func TestAddressingStyleOption(t *testing.T) {
	hostsEntry(t, "s3.bcb.test", "vhost.s3.bcb.test")
	m := StartMinIODomain(t, "s3.bcb.test", "vhost")
	w := &world{store: minioBucket{m, "vhost"}, env: m.Env(), cloud: []string{"--endpoint-url", m.Endpoint},
		dest: "s3://vhost/pg", prefix: "pg", server: "main"}
	w.startSource(t, nil)
	virtualProfile := filepath.Join(t.TempDir(), "config")
	os.WriteFile(virtualProfile, []byte("[default]\nregion = us-east-1\ns3 =\n    addressing_style = virtual\n"), 0o600)
	toml := filepath.Join(t.TempDir(), "bcb.toml")
	os.WriteFile(toml, []byte("[s3]\naddressing_style = \"virtual\"\n"), 0o600)

	var p *scopeProxy
	var want string
	p = startScopeProxy(t, m, "s3.bcb.test", func(r *http.Request, region, service string) string {
		host, path := "s3.bcb.test:"+p.port(), strings.HasPrefix(r.URL.Path, "/vhost")
		if want == "virtual" {
			host, path = "vhost."+host, !path
		}
		if r.Host != host || !path || region != "us-east-1" || service != "s3" {
			return fmt.Sprintf("%s style wanted: Host %s, path %s, scope %s/%s", want, r.Host, r.URL.Path, region, service)
		}
		return ""
	})
	for _, tc := range []struct {
		name, style string
		env         []string
		args        []string
	}{
		{"flag virtual", "virtual", nil, []string{"--addressing-style", "virtual"}},
		{"flag path over the profile's virtual", "path", []string{"AWS_CONFIG_FILE=" + virtualProfile}, []string{"--addressing-style", "path"}},
		{"profile virtual", "virtual", []string{"AWS_CONFIG_FILE=" + virtualProfile}, nil},
		{"TOML virtual", "virtual", nil, []string{"--config", toml}},
		{"auto on a custom endpoint", "path", nil, []string{"--addressing-style", "auto"}},
	} {
		want = tc.style
		before := p.Requests()
		env := append(append([]string{}, m.Env()...), tc.env...)
		args := append(append([]string{"-t", "--endpoint-url", p.URL}, tc.args...), w.dest, w.server)
		if r := runCmd(t, env, binary, args...); r.code != 0 || p.Requests() == before || len(p.Refused()) > 0 {
			t.Fatalf("%s: exit %d, %d requests, refused %q:\n%s", tc.name, r.code, p.Requests()-before, p.Refused(), r.stderr)
		}
	}
	// A whole backup virtual-host style by the flag alone, and our restore
	// of it with the flag (TestVirtualHostAddressing has Barman restore
	// one).
	want = "virtual"
	vhost := &world{store: w.store, env: m.Env(), cloud: []string{"--endpoint-url", p.URL}, dest: w.dest, prefix: w.prefix, server: w.server, src: w.src}
	id := vhost.backupTo(t, "--addressing-style", "virtual")
	if names := w.names(t, id); !contains(names, "data.tar") || !contains(names, "backup.info") {
		t.Fatalf("objects %v", names)
	}
	vhost.restoreWithOurs(t, id, "--addressing-style", "virtual")
	if len(p.Refused()) > 0 {
		t.Fatalf("refused: %q", p.Refused())
	}
}
