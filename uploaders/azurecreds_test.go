package uploaders

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// --azure-credential managed-identity asks for the user-assigned identity
// AZURE_CLIENT_ID names, else for the system-assigned one; here through
// App Service's endpoint, which the variables point at.
func TestAzureManagedIdentityClientID(t *testing.T) {
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Identity-Header") != "hdr" {
			http.Error(w, `{"message":"bad header"}`, http.StatusBadRequest)
			return
		}
		asked = append(asked, r.URL.Query().Get("client_id"))
		json.NewEncoder(w).Encode(map[string]string{"access_token": "tok", "token_type": "Bearer",
			"expires_on": fmt.Sprint(time.Now().Add(time.Hour).Unix()), "resource": r.URL.Query().Get("resource")})
	}))
	defer srv.Close()
	t.Setenv("IDENTITY_ENDPOINT", srv.URL)
	t.Setenv("IDENTITY_HEADER", "hdr")
	for _, id := range []string{"", "11111111-2222-3333-4444-555555555555"} {
		t.Setenv("AZURE_CLIENT_ID", id)
		cred, err := azureTokenCredential("managed-identity")
		if err != nil {
			t.Fatal(err)
		}
		tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://storage.azure.com/.default"}})
		if err != nil || tok.Token != "tok" {
			t.Fatalf("token %q: %v", tok.Token, err)
		}
		if got := asked[len(asked)-1]; got != id {
			t.Errorf("AZURE_CLIENT_ID=%q: asked for client_id %q", id, got)
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
