//go:build integration

package integration

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// GoogleIdentity stands in, on loopback, for Google's identity services,
// speaking their protocols: the OAuth token endpoint
// (oauth2.googleapis.com: a service account's signed JWT, a gcloud
// user's refresh token), the Security Token Service (sts.googleapis.com,
// workload identity federation's token exchange), the IAM Credentials
// API (iamcredentials.googleapis.com, service account impersonation),
// the first three reached through a CloudFront, and the metadata server
// of Compute Engine and GKE (GCE_METADATA_HOST). It checks what each
// client presents (the service account's JWT against its public key)
// and hands out access tokens that storage requests must then carry.
type GoogleIdentity struct {
	// MetadataHost is GCE_METADATA_HOST.
	MetadataHost string
	// ServiceAccountJSON is a service account key file, AuthorizedUser a
	// gcloud user's application default credentials.
	ServiceAccountJSON, AuthorizedUserJSON string
	// SubjectToken is the workload identity federation token a provider
	// (Kubernetes, another cloud) would write to a file.
	SubjectToken, RefreshToken string

	key      *rsa.PrivateKey
	keyPart  string // a piece of the private key's PEM, which must never show
	mu       sync.Mutex
	calls    map[string]int
	issued   map[string]string // access token -> the kind that got it
	audience string
}

// Workload identity federation's pool provider, as in a real config.
const wifAudience = "//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/bcb-pool/providers/bcb-provider"

// StartGoogleIdentity starts the services, three of them behind f.
func StartGoogleIdentity(t testing.TB, f *CloudFront) *GoogleIdentity {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	g := &GoogleIdentity{key: key, calls: map[string]int{}, issued: map[string]string{},
		SubjectToken: "eyJ-wif-subject-token-0c5e", RefreshToken: "1//gcloud-refresh-token-a90b", audience: wifAudience}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	g.keyPart = keyPEM[200:240]
	sa, _ := json.Marshal(map[string]string{"type": "service_account", "project_id": "bcb-test", "private_key_id": "k1",
		"private_key":  keyPEM,
		"client_email": "backup@bcb-test.iam.gserviceaccount.com", "client_id": "1001",
		"auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": "https://oauth2.googleapis.com/token"})
	g.ServiceAccountJSON = string(sa)
	user, _ := json.Marshal(map[string]string{"type": "authorized_user", "client_id": "764086051850-bcb.apps.googleusercontent.com",
		"client_secret": "d-FL95Q19q7MQmFpd7hHD0Ty", "refresh_token": g.RefreshToken})
	g.AuthorizedUserJSON = string(user)

	id := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		r.ParseForm()
		switch {
		case host == "oauth2.googleapis.com" && r.URL.Path == "/token" && r.Form.Get("grant_type") == "urn:ietf:params:oauth:grant-type:jwt-bearer":
			g.token(w, "service-account", g.checkAssertion(r.Form.Get("assertion")))
		case host == "oauth2.googleapis.com" && r.URL.Path == "/token" && r.Form.Get("grant_type") == "refresh_token":
			g.token(w, "authorized-user", r.Form.Get("refresh_token") == g.RefreshToken && r.Form.Get("client_secret") == "d-FL95Q19q7MQmFpd7hHD0Ty")
		case host == "sts.googleapis.com" && r.URL.Path == "/v1/token":
			g.token(w, "sts", r.Form.Get("grant_type") == "urn:ietf:params:oauth:grant-type:token-exchange" &&
				r.Form.Get("subject_token") == g.SubjectToken && r.Form.Get("audience") == g.audience &&
				r.Form.Get("subject_token_type") == "urn:ietf:params:oauth:token-type:jwt")
		case host == "iamcredentials.googleapis.com" && strings.HasSuffix(r.URL.Path, ":generateAccessToken"):
			g.count("impersonation")
			if g.kindOf(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")) != "sts" {
				http.Error(w, `{"error":{"code":401,"message":"Request had invalid authentication credentials."}}`, http.StatusUnauthorized)
				return
			}
			json.NewEncoder(w).Encode(map[string]string{"accessToken": g.issue("impersonation"),
				"expireTime": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
		default:
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
		}
	}))
	t.Cleanup(id.Close)
	for _, h := range []string{"oauth2.googleapis.com", "sts.googleapis.com", "iamcredentials.googleapis.com"} {
		f.Route(h, id.URL)
	}

	md := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Metadata-Flavor", "Google")
		if r.Header.Get("Metadata-Flavor") != "Google" {
			http.Error(w, "Missing Metadata-Flavor:Google header", http.StatusForbidden)
			return
		}
		if r.URL.Path != "/computeMetadata/v1/instance/service-accounts/default/token" {
			http.NotFound(w, r)
			return
		}
		g.token(w, "metadata", true)
	}))
	t.Cleanup(md.Close)
	g.MetadataHost = strings.TrimPrefix(md.URL, "http://")
	return g
}

// checkAssertion verifies a service account's JWT: RS256 signed with
// its key, for the token endpoint, asking for a storage scope.
func (g *GoogleIdentity) checkAssertion(jwt string) bool {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return false
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return false
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(&g.key.PublicKey, crypto.SHA256, sum[:], sig) != nil {
		return false
	}
	body, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct {
		Iss, Aud, Scope string
		Exp             int64
	}
	json.Unmarshal(body, &claims)
	return claims.Iss == "backup@bcb-test.iam.gserviceaccount.com" && claims.Aud == "https://oauth2.googleapis.com/token" &&
		strings.Contains(claims.Scope, "devstorage.full_control") && claims.Exp > time.Now().Unix()
}

// token answers a token request in OAuth's JSON, or refuses it.
func (g *GoogleIdentity) token(w http.ResponseWriter, kind string, ok bool) {
	g.count(kind)
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"invalid_grant","error_description":"Invalid grant: account not found"}`)
		return
	}
	resp := map[string]any{"access_token": g.issue(kind), "expires_in": 3599, "token_type": "Bearer"}
	if kind == "sts" {
		resp["issued_token_type"] = "urn:ietf:params:oauth:token-type:access_token"
	}
	json.NewEncoder(w).Encode(resp)
}

func (g *GoogleIdentity) issue(kind string) string {
	b := make([]byte, 12)
	rand.Read(b)
	token := "ya29." + kind + "-" + base64.RawURLEncoding.EncodeToString(b)
	g.mu.Lock()
	g.issued[token] = kind
	g.mu.Unlock()
	return token
}

// kindOf says which service issued an access token, "" for none.
func (g *GoogleIdentity) kindOf(token string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.issued[token]
}

func (g *GoogleIdentity) count(kind string) {
	g.mu.Lock()
	g.calls[kind]++
	g.mu.Unlock()
}

// Calls is how often a kind of token was asked for: "service-account",
// "authorized-user", "sts", "impersonation" or "metadata".
func (g *GoogleIdentity) Calls(kind string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls[kind]
}

// Secrets lists the tokens handed out and what clients present.
func (g *GoogleIdentity) Secrets() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := []string{g.SubjectToken, g.RefreshToken, "d-FL95Q19q7MQmFpd7hHD0Ty", g.keyPart}
	for token := range g.issued {
		s = append(s, token)
	}
	return s
}
