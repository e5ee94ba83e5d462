//go:build integration

package integration

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// AzureIdentity stands in, on loopback, for the Microsoft Entra ID
// services that cannot run here, speaking their protocols: the token
// endpoint of login.microsoftonline.com (reached through a CloudFront,
// with its instance and tenant discovery documents), which a workload
// identity's federated token is exchanged at, and the App Service
// managed identity endpoint (IDENTITY_ENDPOINT). Their access tokens are
// JWTs with Azure Storage's audience and an Entra issuer, which Azurite
// accepts in its basic OAuth mode.
type AzureIdentity struct {
	TenantID, ClientID string
	// FederatedToken is the workload identity token Kubernetes would
	// project into the pod; IdentityHeader the secret App Service gives;
	// ClientSecret a service principal's.
	FederatedToken, IdentityHeader, ClientSecret string
	// MSIEndpoint is IDENTITY_ENDPOINT.
	MSIEndpoint string

	mu     sync.Mutex
	calls  map[string]int
	tokens []string
}

// StartAzureIdentity starts both, the Entra ID one behind f.
func StartAzureIdentity(t testing.TB, f *CloudFront) *AzureIdentity {
	t.Helper()
	a := &AzureIdentity{TenantID: "72f988bf-0000-4000-8000-00000000bcb1", ClientID: "0d2c6a3e-0000-4000-8000-00000000bcb2",
		FederatedToken: "eyJ-federated-k8s-token-41d7", IdentityHeader: "app-service-identity-header-e3f0",
		ClientSecret: "sp~client-secret-0a9f", calls: map[string]int{}}
	aad := http.NewServeMux()
	host := "https://login.microsoftonline.com"
	aad.HandleFunc("GET /common/discovery/instance", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"api-version": "1.1",
			"tenant_discovery_endpoint": host + "/" + a.TenantID + "/v2.0/.well-known/openid-configuration",
			"metadata": []map[string]any{{"preferred_network": "login.microsoftonline.com", "preferred_cache": "login.windows.net",
				"aliases": []string{"login.microsoftonline.com", "login.windows.net", "login.microsoft.com", "sts.windows.net"}}}})
	})
	aad.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		tenant := r.PathValue("tenant")
		json.NewEncoder(w).Encode(map[string]any{
			"token_endpoint":         host + "/" + tenant + "/oauth2/v2.0/token",
			"authorization_endpoint": host + "/" + tenant + "/oauth2/v2.0/authorize",
			"issuer":                 host + "/" + tenant + "/v2.0",
			"jwks_uri":               host + "/" + tenant + "/discovery/v2.0/keys",
		})
	})
	aad.HandleFunc("POST /{tenant}/oauth2/v2.0/token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		// A workload identity presents its federated token as a client
		// assertion; a service principal its secret.
		kind, proof := "workload", r.Form.Get("client_assertion") == a.FederatedToken &&
			r.Form.Get("client_assertion_type") == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
		if r.Form.Has("client_secret") {
			kind, proof = "service-principal", r.Form.Get("client_secret") == a.ClientSecret
		}
		a.count(kind)
		if r.PathValue("tenant") != a.TenantID || r.Form.Get("grant_type") != "client_credentials" ||
			r.Form.Get("client_id") != a.ClientID || !proof ||
			!strings.Contains(r.Form.Get("scope"), "https://storage.azure.com/.default") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid_client","error_description":"AADSTS700213: No matching federated identity record found."}`)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
			"access_token": a.accessToken()})
	})
	aadSrv := httptest.NewServer(aad)
	t.Cleanup(aadSrv.Close)
	f.Route("login.microsoftonline.com", aadSrv.URL)

	msi := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		a.count("managed-identity " + q.Get("client_id"))
		if r.Header.Get("X-Identity-Header") != a.IdentityHeader || q.Get("resource") != "https://storage.azure.com" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"statusCode":400,"message":"Unable to load the proper Managed Identity."}`)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"access_token": a.accessToken(), "token_type": "Bearer",
			"resource": "https://storage.azure.com", "expires_on": fmt.Sprint(time.Now().Add(time.Hour).Unix()),
			"client_id": q.Get("client_id")})
	}))
	t.Cleanup(msi.Close)
	a.MSIEndpoint = msi.URL + "/msi/token"
	return a
}

// accessToken is an Entra-shaped access token for Azure Storage.
func (a *AzureIdentity) accessToken() string {
	enc := base64.RawURLEncoding
	now := time.Now().Unix()
	claims, _ := json.Marshal(map[string]any{"aud": "https://storage.azure.com", "iss": "https://sts.windows.net/" + a.TenantID + "/",
		"iat": now - 60, "nbf": now - 60, "exp": now + 3600, "tid": a.TenantID, "oid": "bcb-backup", "appid": a.ClientID,
		"uti": fmt.Sprint(time.Now().UnixNano())})
	token := enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc.EncodeToString(claims) + "." +
		enc.EncodeToString([]byte("not-checked-by-azurite"))
	a.mu.Lock()
	a.tokens = append(a.tokens, token)
	a.mu.Unlock()
	return token
}

func (a *AzureIdentity) count(what string) {
	a.mu.Lock()
	a.calls[what]++
	a.mu.Unlock()
}

// Calls is how often tokens were asked for: "workload",
// "service-principal", or "managed-identity CLIENT_ID" ("managed-identity "
// for the system-assigned identity).
func (a *AzureIdentity) Calls(what string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls[what]
}

// Secrets lists the tokens handed out and the ones clients present.
func (a *AzureIdentity) Secrets() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string{a.FederatedToken, a.IdentityHeader, a.ClientSecret}, a.tokens...)
}

// Issued reports whether token is one handed out.
func (a *AzureIdentity) Issued(token string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, t := range a.tokens {
		if t == token {
			return true
		}
	}
	return false
}
