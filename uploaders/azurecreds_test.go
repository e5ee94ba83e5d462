package uploaders

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// tokenScopes counts the scopes asked for in this process: azure-identity
// caches a managed identity's tokens for the whole process, by scope, so
// a scope asked for again (go test -count=2) never reaches the endpoint.
var tokenScopes atomic.Int64

// --azure-credential managed-identity asks for the user-assigned identity
// AZURE_CLIENT_ID names, else for the system-assigned one; here through
// App Service's endpoint, which the variables point at.
func TestAzureManagedIdentityClientID(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Identity-Header") != "hdr" {
			http.Error(w, `{"message":"bad header"}`, http.StatusBadRequest)
			return
		}
		mu.Lock()
		asked = append(asked, r.URL.Query().Get("client_id"))
		mu.Unlock()
		json.NewEncoder(w).Encode(map[string]string{"access_token": "tok", "token_type": "Bearer",
			"expires_on": fmt.Sprint(time.Now().Add(time.Hour).Unix()), "resource": r.URL.Query().Get("resource")})
	}))
	defer srv.Close()
	t.Setenv("IDENTITY_ENDPOINT", srv.URL)
	t.Setenv("IDENTITY_HEADER", "hdr")
	for i, id := range []string{"", "11111111-2222-3333-4444-555555555555"} {
		t.Setenv("AZURE_CLIENT_ID", id)
		cred, err := azureTokenCredential("managed-identity")
		if err != nil {
			t.Fatal(err)
		}
		scope := fmt.Sprintf("https://storage.azure.com/scope%d/.default", tokenScopes.Add(1))
		tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{scope}})
		if err != nil || tok.Token != "tok" {
			t.Fatalf("token %q: %v", tok.Token, err)
		}
		mu.Lock()
		got := append([]string(nil), asked...)
		mu.Unlock()
		if len(got) != i+1 {
			t.Fatalf("AZURE_CLIENT_ID=%q: the endpoint was asked %d times, want %d", id, len(got), i+1)
		}
		if got[i] != id {
			t.Errorf("AZURE_CLIENT_ID=%q: asked for client_id %q", id, got[i])
		}
	}
}

func TestAzureCredentialChoices(t *testing.T) {
	for _, kind := range []string{"azure-cli", "managed-identity", "default"} {
		if _, err := azureTokenCredential(kind); err != nil {
			t.Errorf("%s: %v", kind, err)
		}
	}
	if _, err := azureTokenCredential("interactive"); err == nil || !strings.Contains(err.Error(), "unsupported credential") {
		t.Errorf("interactive: %v", err)
	}
	// The token of a federated identity, read from its file, is a secret
	// too.
	file := t.TempDir() + "/token"
	writeFile(t, file, "federated-secret")
	t.Setenv("AZURE_FEDERATED_TOKEN_FILE", file)
	t.Setenv("IDENTITY_HEADER", "header-secret")
	a := &Azure{secrets: azureIdentitySecrets()}
	if msg := a.classify(fmt.Errorf("got federated-secret and header-secret")).Error(); strings.Contains(msg, "secret") {
		t.Errorf("redact left %q", msg)
	}
}
