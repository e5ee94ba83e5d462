//go:build integration

package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// StartAzuriteHTTPS starts Azurite's blob service over HTTPS with the
// CloudFront's certificate and OAuth on (bearer tokens are decoded and
// their issuer, audience and lifetime checked, not their signature), as
// the Azure account devstoreaccount1.blob.core.windows.net behind f, with
// the given containers. Bearer tokens need HTTPS, in Azurite as in the
// SDK.
func StartAzuriteHTTPS(t testing.TB, f *CloudFront, containers ...string) *Azurite {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command(azuriteBinary(t), "--blobHost", "127.0.0.1", "--blobPort", fmt.Sprint(port),
		"--location", t.TempDir(), "--skipApiVersionCheck", "--loose", "--silent",
		"--cert", f.CertFile, "--key", f.KeyFile, "--oauth", "basic")
	logFile, _ := os.Create(filepath.Join(t.TempDir(), "azurite.log"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start azurite: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); logFile.Close() })
	waitPort(t, port)
	backend := fmt.Sprintf("https://127.0.0.1:%d", port)
	f.Route("devstoreaccount1.blob.core.windows.net", backend)
	a := &Azurite{Endpoint: backend + "/" + azuriteAccount}
	a.ConnStr = fmt.Sprintf("DefaultEndpointsProtocol=https;AccountName=%s;AccountKey=%s;BlobEndpoint=%s;",
		azuriteAccount, azuriteKey, a.Endpoint)
	for _, name := range containers {
		if _, err := a.tlsContainer(t, f, name).c.Create(context.Background(), nil); err != nil {
			t.Fatalf("create container %s: %v", name, err)
		}
	}
	return a
}

// tlsContainer is a container of an HTTPS Azurite, read with the
// account key, for the test's own checks.
func (a *Azurite) tlsContainer(t testing.TB, f *CloudFront, name string) *azureContainer {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = f.TLSConfig()
	tr.Proxy = nil
	c, err := container.NewClientFromConnectionString(a.ConnStr, name, &container.ClientOptions{
		ClientOptions: azcore.ClientOptions{Transport: &http.Client{Transport: tr}}})
	if err != nil {
		t.Fatal(err)
	}
	return &azureContainer{c: c}
}
