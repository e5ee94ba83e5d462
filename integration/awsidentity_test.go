//go:build integration

package integration

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/credentials"
)

// AWSIdentity stands in, on loopback, for the AWS identity services that
// cannot run here, speaking each one's protocol: STS (AssumeRole is
// passed on to MinIO, which implements it; AssumeRoleWithWebIdentity,
// which MinIO only offers behind an OpenID provider, is answered here),
// the container credentials endpoint of ECS and EKS Pod Identity, the
// EC2 instance metadata service (IMDSv2) and the SSO portal. Whatever
// it hands out are temporary keys MinIO itself issued through
// AssumeRole, so MinIO checks every request signed with them.
type AWSIdentity struct {
	URL string
	m   *MinIO

	// Tokens a client must present: the web identity token, the SSO
	// access token.
	WebIdentityToken, SSOToken string

	mu sync.Mutex
	// containerTokens are the container authorization tokens, each with
	// how long the credentials it gets are declared valid (MinIO's own
	// last 15 minutes, its shortest).
	containerTokens map[string]time.Duration
	calls           map[string]int
	secrets         []string
}

// StartAWSIdentity starts the services in front of m.
func StartAWSIdentity(t testing.TB, m *MinIO) *AWSIdentity {
	t.Helper()
	a := &AWSIdentity{m: m, calls: map[string]int{}, containerTokens: map[string]time.Duration{},
		WebIdentityToken: "eyJ-web-identity-token-7f3a", SSOToken: "sso-access-token-c29d"}
	target, _ := url.Parse(m.Endpoint)
	sts := httputil.NewSingleHostReverseProxy(target)
	sts.ModifyResponse = func(resp *http.Response) error {
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		var r struct {
			Creds struct {
				Secret string `xml:"SecretAccessKey"`
				Token  string `xml:"SessionToken"`
			} `xml:"AssumeRoleResult>Credentials"`
		}
		if err == nil && xml.Unmarshal(body, &r) == nil {
			a.keep(r.Creds.Secret, r.Creds.Token)
		}
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{$}", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		action := form.Get("Action")
		a.count(action + " " + form.Get("RoleArn"))
		if action == "AssumeRoleWithWebIdentity" {
			a.webIdentity(t, w, form)
			return
		}
		// MinIO checks the SigV4 signature, which covers the Host header
		// the client sent.
		r.Body = io.NopCloser(bytes.NewReader(body))
		sts.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /v1/credentials", func(w http.ResponseWriter, r *http.Request) {
		token := r.Header.Get("Authorization")
		a.count("container " + token)
		a.mu.Lock()
		lifetime, ok := a.containerTokens[token]
		a.mu.Unlock()
		if !ok {
			http.Error(w, `{"code":"AccessDenied","message":"bad authorization token"}`, http.StatusForbidden)
			return
		}
		v := a.mint(t)
		expires := time.Now().Add(lifetime)
		json.NewEncoder(w).Encode(map[string]string{"AccessKeyId": v.AccessKeyID, "SecretAccessKey": v.SecretAccessKey,
			"Token": v.SessionToken, "Expiration": expires.UTC().Format(time.RFC3339)})
	})
	mux.HandleFunc("PUT /latest/api/token", func(w http.ResponseWriter, r *http.Request) {
		a.count("imds-token")
		ttl := r.Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds")
		if ttl == "" {
			http.Error(w, "", http.StatusBadRequest)
			return
		}
		w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", ttl)
		fmt.Fprint(w, "imds-session-token-81c0")
	})
	mux.HandleFunc("GET /latest/meta-data/iam/security-credentials/{role...}", func(w http.ResponseWriter, r *http.Request) {
		// IMDSv2 only, as on an instance that requires it.
		if r.Header.Get("X-Aws-Ec2-Metadata-Token") != "imds-session-token-81c0" {
			http.Error(w, "", http.StatusUnauthorized)
			return
		}
		switch r.PathValue("role") {
		case "":
			fmt.Fprint(w, "bcb-backup-role")
		case "bcb-backup-role":
			a.count("imds")
			v := a.mint(t)
			json.NewEncoder(w).Encode(map[string]string{"Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": v.AccessKeyID,
				"SecretAccessKey": v.SecretAccessKey, "Token": v.SessionToken,
				"LastUpdated": time.Now().UTC().Format(time.RFC3339), "Expiration": v.Expiration.UTC().Format(time.RFC3339)})
		default:
			http.NotFound(w, r)
		}
	})
	mux.HandleFunc("GET /federation/credentials", func(w http.ResponseWriter, r *http.Request) {
		a.count("sso")
		q := r.URL.Query()
		if r.Header.Get("X-Amz-Sso_bearer_token") != a.SSOToken || q.Get("role_name") != "BackupRole" || q.Get("account_id") != "123456789012" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"message":"Session token not found or invalid"}`)
			return
		}
		v := a.mint(t)
		json.NewEncoder(w).Encode(map[string]any{"roleCredentials": map[string]any{"accessKeyId": v.AccessKeyID,
			"secretAccessKey": v.SecretAccessKey, "sessionToken": v.SessionToken, "expiration": v.Expiration.UnixMilli()}})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	a.URL = srv.URL
	return a
}

// webIdentity answers AssumeRoleWithWebIdentity as STS does, unsigned,
// for the token the test wrote.
func (a *AWSIdentity) webIdentity(t testing.TB, w http.ResponseWriter, form url.Values) {
	w.Header().Set("Content-Type", "text/xml")
	if form.Get("WebIdentityToken") != a.WebIdentityToken || !strings.HasPrefix(form.Get("RoleArn"), "arn:aws:iam::") {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>`+
			`<Code>InvalidIdentityToken</Code><Message>Couldn't verify the web identity token</Message></Error><RequestId>1</RequestId></ErrorResponse>`)
		return
	}
	v := a.mint(t)
	fmt.Fprintf(w, `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult>`+
		`<SubjectFromWebIdentityToken>system:serviceaccount:db:backup</SubjectFromWebIdentityToken>`+
		`<AssumedRoleUser><Arn>%s/%s</Arn><AssumedRoleId>AROA:%s</AssumedRoleId></AssumedRoleUser>`+
		`<Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey><SessionToken>%s</SessionToken>`+
		`<Expiration>%s</Expiration></Credentials></AssumeRoleWithWebIdentityResult>`+
		`<ResponseMetadata><RequestId>2</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>`,
		form.Get("RoleArn"), form.Get("RoleSessionName"), form.Get("RoleSessionName"),
		v.AccessKeyID, v.SecretAccessKey, v.SessionToken, v.Expiration.UTC().Format(time.RFC3339))
}

// mint gets new temporary keys from MinIO's AssumeRole, with the root
// user's keys.
func (a *AWSIdentity) mint(t testing.TB) credentials.Value {
	p, err := credentials.NewSTSAssumeRole(a.m.Endpoint, credentials.STSAssumeRoleOptions{
		AccessKey: a.m.AccessKey, SecretKey: a.m.SecretKey, DurationSeconds: 900})
	var v credentials.Value
	if err == nil {
		v, err = p.GetWithContext(nil)
	}
	if err != nil {
		t.Errorf("MinIO AssumeRole: %v", err)
	}
	a.keep(v.SecretAccessKey, v.SessionToken)
	return v
}

func (a *AWSIdentity) keep(secrets ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range secrets {
		if s != "" {
			a.secrets = append(a.secrets, s)
		}
	}
}

// ContainerToken makes a container authorization token whose
// credentials are declared valid for lifetime.
func (a *AWSIdentity) ContainerToken(lifetime time.Duration) string {
	b := make([]byte, 8)
	rand.Read(b)
	token := "container-auth-token-" + hex.EncodeToString(b)
	a.mu.Lock()
	a.containerTokens[token] = lifetime
	a.mu.Unlock()
	a.keep(token)
	return token
}

func (a *AWSIdentity) count(what string) {
	a.mu.Lock()
	a.calls[what]++
	a.mu.Unlock()
}

// Calls is how often a service was asked: "ACTION ROLE_ARN" for STS,
// "container TOKEN", "imds" (credentials, not tokens), "imds-token" or
// "sso".
func (a *AWSIdentity) Calls(what string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls[what]
}

// Secrets lists every secret key and session token handed out, and the
// tokens clients present: none may ever show.
func (a *AWSIdentity) Secrets() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string{a.WebIdentityToken, a.SSOToken, "imds-session-token-81c0"}, a.secrets...)
}
