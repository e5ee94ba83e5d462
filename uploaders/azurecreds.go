package uploaders

import (
	"fmt"
	"os"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// azureTokenCredential is the credential of --azure-credential, as Barman
// 3.13 and later builds it from azure-identity: azure-cli runs `az account
// get-access-token`; managed-identity asks the host's managed identity
// endpoint (IMDS, or App Service, Azure Arc, Cloud Shell, Service Fabric
// by their variables), for the user-assigned identity AZURE_CLIENT_ID
// names if set, else the system-assigned one; default is
// DefaultAzureCredential: the environment's service principal, workload
// identity (AZURE_FEDERATED_TOKEN_FILE), managed identity, then the Azure
// CLI, Azure Developer CLI and Azure PowerShell. The same default chain
// serves when neither the option nor a storage key, SAS or connection
// string is given.
func azureTokenCredential(kind string) (azcore.TokenCredential, error) {
	switch kind {
	case "azure-cli":
		return azidentity.NewAzureCLICredential(nil)
	case "managed-identity":
		opts := &azidentity.ManagedIdentityCredentialOptions{}
		if id := os.Getenv("AZURE_CLIENT_ID"); id != "" {
			// What DefaultAzureCredential does; on a host with several
			// identities, the system-assigned one is rarely the backup's.
			opts.ID = azidentity.ClientID(id)
		}
		return azidentity.NewManagedIdentityCredential(opts)
	case "default":
		return azidentity.NewDefaultAzureCredential(nil)
	}
	return nil, fmt.Errorf("unsupported credential %q: use azure-cli, managed-identity or default", kind)
}

// azureIdentitySecrets are the secrets azure-identity reads from the
// environment, which an error must never show.
func azureIdentitySecrets() []string {
	var secrets []string
	for _, env := range []string{"AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_PASSWORD",
		"IDENTITY_HEADER", "MSI_SECRET"} {
		if v := os.Getenv(env); v != "" {
			secrets = append(secrets, v)
		}
	}
	if file := os.Getenv("AZURE_FEDERATED_TOKEN_FILE"); file != "" {
		if b, err := os.ReadFile(file); err == nil && len(b) > 0 {
			secrets = append(secrets, string(b))
		}
	}
	return secrets
}
