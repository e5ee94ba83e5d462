//go:build integration

package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// Azurite's well-known development account.
const (
	azuriteAccount = "devstoreaccount1"
	azuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// Azurite is an Azure Blob Storage emulator on a loopback port.
type Azurite struct {
	Endpoint string // http://127.0.0.1:PORT/devstoreaccount1
	ConnStr  string
}

func azuriteBinary(t testing.TB) string {
	if p := os.Getenv("AZURITE_BIN"); p != "" {
		return p
	}
	home, _ := os.UserHomeDir()
	p := filepath.Join(home, ".cache", "bcb-tools", "azurite", "node_modules", ".bin", "azurite-blob")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("no azurite-blob: set AZURITE_BIN or run integration/setup.sh (%v)", err)
	}
	return p
}

// StartAzurite starts the blob service with the given containers and
// stops it when the test ends.
func StartAzurite(t testing.TB, containers ...string) *Azurite {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command(azuriteBinary(t), "--blobHost", "127.0.0.1", "--blobPort", fmt.Sprint(port),
		"--location", t.TempDir(), "--skipApiVersionCheck", "--loose", "--silent")
	logFile, _ := os.Create(filepath.Join(t.TempDir(), "azurite.log"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start azurite: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); logFile.Close() })
	waitPort(t, port)
	a := &Azurite{Endpoint: fmt.Sprintf("http://127.0.0.1:%d/%s", port, azuriteAccount)}
	a.ConnStr = fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=%s;",
		azuriteAccount, azuriteKey, a.Endpoint)
	for _, name := range containers {
		c, err := container.NewClientFromConnectionString(a.ConnStr, name, nil)
		if err == nil {
			_, err = c.Create(context.Background(), nil)
		}
		if err != nil {
			t.Fatalf("create container %s: %v", name, err)
		}
	}
	return a
}

func waitPort(t testing.TB, port int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on port %d: %v", port, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Env is what Barman's tools and ours need to reach the emulator.
func (a *Azurite) Env() []string { return []string{"AZURE_STORAGE_CONNECTION_STRING=" + a.ConnStr} }

// Container is one container of the emulator, as an objectStore.
func (a *Azurite) Container(t testing.TB, name string) *azureContainer {
	c, err := container.NewClientFromConnectionString(a.ConnStr, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &azureContainer{c: c}
}

type azureContainer struct{ c *container.Client }

func (a *azureContainer) Keys(t testing.TB, prefix string) []string {
	t.Helper()
	var keys []string
	pager := a.c.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &prefix})
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if bloberror.HasCode(err, bloberror.ContainerNotFound) {
			break
		}
		if err != nil {
			t.Fatalf("list %s: %v", prefix, err)
		}
		for _, b := range page.Segment.BlobItems {
			keys = append(keys, *b.Name)
		}
	}
	sort.Strings(keys)
	return keys
}

func (a *azureContainer) Get(t testing.TB, key string) []byte {
	t.Helper()
	resp, err := a.c.NewBlobClient(key).DownloadStream(context.Background(), nil)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (a *azureContainer) Tags(t testing.TB, key string) map[string]string {
	t.Helper()
	resp, err := a.c.NewBlobClient(key).GetTags(context.Background(), nil)
	if err != nil {
		t.Fatalf("tags of %s: %v", key, err)
	}
	m := map[string]string{}
	for _, tag := range resp.BlobTagSet {
		m[*tag.Key] = *tag.Value
	}
	return m
}
