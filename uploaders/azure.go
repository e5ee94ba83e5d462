package uploaders

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// azureDomain marks real Azure accounts; any other host is emulated
// storage (Azurite), as in Barman.
const azureDomain = "blob.core.windows.net"

// Azure stores objects as block blobs in an Azure Blob Storage container.
type Azure struct {
	client    *container.Client
	tr        *http.Transport
	container string
	prefix    string
	scope     *blob.CPKScopeInfo
	tags      map[string]string
	secrets   []string
}

// azureAuth is how a client authenticates, in Barman's order of choice.
type azureAuth int

const (
	azureCredential azureAuth = iota // --credential: an azure-identity credential
	azureConnStr                     // AZURE_STORAGE_CONNECTION_STRING
	azureSAS                         // AZURE_STORAGE_SAS_TOKEN
	azureKey                         // AZURE_STORAGE_KEY, with the account from the URL
	azureDefault                     // the default Azure credential chain
)

// azureConfig is an Azure destination as its URL, options and environment
// give it, checked without a request.
type azureConfig struct {
	accountURL, account, container, prefix string
	auth                                   azureAuth
	// credential is --credential, or "default" for azureDefault.
	credential string
	// secret is the connection string, SAS token or account key of auth.
	secret  string
	scope   *blob.CPKScopeInfo
	tags    map[string]string
	timeout time.Duration
	jobs    int
}

// parseAzure reads https://ACCOUNT.blob.core.windows.net/CONTAINER/PREFIX,
// or for an emulator http://HOST:PORT/ACCOUNT/CONTAINER/PREFIX with
// AZURE_STORAGE_CONNECTION_STRING, and picks the credential in Barman's
// order: --credential, the connection string, a SAS token, the account
// key, then the default Azure credential chain.
func parseAzure(rawURL string, opts Options, getenv func(string) (string, bool)) (*azureConfig, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("azure blob storage URL %s is malformed: use https://ACCOUNT.%s/CONTAINER/PATH", rawURL, azureDomain)
	}
	c := &azureConfig{accountURL: u.Scheme + "://" + u.Host, tags: tagMap(opts.Tags),
		timeout: readTimeout(opts), jobs: opts.Jobs}
	parts := strings.Split(urlPath(rawURL), "/")
	connStr, hasConnStr := getenv("AZURE_STORAGE_CONNECTION_STRING")
	emulated := !strings.HasSuffix(u.Host, azureDomain)
	if emulated {
		if !hasConnStr {
			return nil, errors.New("A connection string must be provided when using emulated storage: set AZURE_STORAGE_CONNECTION_STRING")
		}
		if len(parts) < 3 || parts[2] == "" {
			return nil, fmt.Errorf("emulated storage URL %s is malformed: use http://HOST:PORT/ACCOUNT/CONTAINER/PATH", rawURL)
		}
		c.account, c.container, c.prefix = parts[1], parts[2], strings.Join(parts[3:], "/")
		c.accountURL += "/" + c.account
	} else {
		if len(parts) < 2 || parts[1] == "" {
			return nil, fmt.Errorf("azure blob storage URL %s is malformed: no container", rawURL)
		}
		c.account = strings.TrimSuffix(u.Host, "."+azureDomain)
		c.container, c.prefix = parts[1], strings.Join(parts[2:], "/")
	}
	if opts.EncryptionScope != "" {
		c.scope = &blob.CPKScopeInfo{EncryptionScope: &opts.EncryptionScope}
	}
	sas, _ := getenv("AZURE_STORAGE_SAS_TOKEN")
	key, _ := getenv("AZURE_STORAGE_KEY")
	switch {
	case opts.Credential != "":
		if emulated {
			return nil, fmt.Errorf("--credential %s needs an account URL on %s, not emulated storage", opts.Credential, azureDomain)
		}
		c.auth, c.credential = azureCredential, opts.Credential
	case hasConnStr:
		c.auth, c.secret = azureConnStr, connStr
	case sas != "":
		c.auth, c.secret = azureSAS, strings.TrimPrefix(sas, "?")
	case key != "":
		c.auth, c.secret = azureKey, key
	default:
		c.auth, c.credential = azureDefault, "default"
	}
	return c, nil
}

// open builds the container client.
func (c *azureConfig) open(context.Context) (Store, error) {
	tr := newTransport(c.timeout, c.jobs)
	a := &Azure{tr: tr, container: c.container, prefix: c.prefix, scope: c.scope, tags: c.tags}
	containerURL := c.accountURL + "/" + url.PathEscape(c.container)
	clientOpts := &container.ClientOptions{ClientOptions: azcore.ClientOptions{
		// One attempt per call: WithRetry decides what is tried again.
		// TryTimeout stays 0 (none): a per-try deadline would cut a part
		// that is slow to send but never idle for --read-timeout, which
		// the transport bounds on its own.
		Retry:     policy.RetryOptions{MaxRetries: -1},
		Transport: &http.Client{Transport: withReadTimeout(tr, c.timeout)},
	}}
	if c.secret != "" {
		a.secrets = append(a.secrets, c.secret)
	}
	var err error
	switch c.auth {
	case azureCredential, azureDefault:
		cred, cerr := azureTokenCredential(c.credential)
		if cerr != nil {
			return nil, fmt.Errorf("azure credential %s: %w", c.credential, cerr)
		}
		a.secrets = append(a.secrets, azureIdentitySecrets()...)
		a.client, err = container.NewClient(containerURL, cred, clientOpts)
	case azureConnStr:
		a.client, err = container.NewClientFromConnectionString(c.secret, c.container, clientOpts)
		if err != nil {
			// The parser's message may quote the string, keys included.
			return nil, errors.New("AZURE_STORAGE_CONNECTION_STRING is not a valid connection string")
		}
	case azureSAS:
		a.client, err = container.NewClientWithNoCredential(containerURL+"?"+c.secret, clientOpts)
	case azureKey:
		cred, cerr := container.NewSharedKeyCredential(c.account, c.secret)
		if cerr != nil {
			return nil, errors.New("AZURE_STORAGE_KEY is not a valid account key")
		}
		a.client, err = container.NewClientWithSharedKeyCredential(containerURL, cred, clientOpts)
	}
	if err != nil {
		return nil, fmt.Errorf("azure client for %s: %w", a.container, a.classify(err))
	}
	return a, nil
}

// Close drops the client's idle connections.
func (a *Azure) Close() error {
	a.tr.CloseIdleConnections()
	return nil
}

var sasSignature = regexp.MustCompile(`(?i)(sig|accountkey)=[^&;\s]+`)

// classify keeps the Store contract for Azure (see Store): a missing
// container, a blob that exists for a create-only-if-absent, and answers
// that ask to try again are marked so; ErrUnreachable is Test's to decide,
// as in Barman. The message is one line (the SDK's span a screen), without
// credentials: request URLs may carry a SAS signature.
func (a *Azure) classify(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		msg = fmt.Sprintf("HTTP %d %s", re.StatusCode, re.ErrorCode)
		if req := re.RawResponse; req != nil && req.Request != nil {
			u := *req.Request.URL
			u.RawQuery = ""
			msg = fmt.Sprintf("%s %s: %s", req.Request.Method, u.String(), msg)
		}
	}
	msg = strings.Join(strings.Fields(msg), " ")
	msg = sasSignature.ReplaceAllString(msg, "$1=REDACTED")
	for _, s := range a.secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "REDACTED")
		}
	}
	out := error(&redactedError{msg: msg, err: err})
	switch {
	case bloberror.HasCode(err, bloberror.ContainerNotFound):
		out = &BucketMissingError{Bucket: a.container, Err: out}
	case bloberror.HasCode(err, bloberror.BlobAlreadyExists, bloberror.ConditionNotMet):
		out = fmt.Errorf("%w: %w", ErrExists, out)
	case re != nil && transientStatus(re.StatusCode):
		out = markTransient(out)
	}
	return out
}

// redactedError prints only the cleaned message; the SDK's error stays
// reachable for errors.Is and errors.As (a cancelled run, a dropped
// connection), never for printing.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

func (a *Azure) String() string { return "azure container " + a.container + "/" + a.prefix }

// Prefix is the path inside the container.
func (a *Azure) Prefix() string { return a.prefix }

// Limits are block blob limits as Barman uses them.
func (a *Azure) Limits() Limits {
	return Limits{MinPartSize: 64 << 10, MaxParts: 50000, MaxObjectSize: 1 << 40}
}

// Test lists at most one blob under the prefix, which a SAS token for
// the container alone allows. As in Barman, any other error answer means
// the cloud is unusable (exit 2).
func (a *Azure) Test(ctx context.Context) error {
	one := int32(1)
	prefix := a.prefix
	_, err := a.client.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{MaxResults: &one, Prefix: &prefix}).NextPage(ctx)
	switch {
	case err == nil:
		return nil
	case bloberror.HasCode(err, bloberror.ContainerNotFound):
		return fmt.Errorf("check container %s: %w", a.container, a.classify(err))
	}
	return fmt.Errorf("%w: %w", ErrUnreachable, a.classify(err))
}

// Put stores data as a block blob in one request.
func (a *Azure) Put(ctx context.Context, key string, data []byte) error {
	_, err := a.client.NewBlockBlobClient(key).Upload(ctx, streaming.NopCloser(bytes.NewReader(data)),
		&blockblob.UploadOptions{Tags: a.tags, CPKScopeInfo: a.scope})
	if err != nil {
		return fmt.Errorf("upload %s: %w", key, a.classify(err))
	}
	return nil
}

// Get reads a small blob whole.
func (a *Azure) Get(ctx context.Context, key string) ([]byte, error) {
	resp, err := a.client.NewBlockBlobClient(key).DownloadStream(ctx, &blob.DownloadStreamOptions{CPKScopeInfo: a.scope})
	if err == nil {
		defer resp.Body.Close()
		var b []byte
		if b, err = io.ReadAll(resp.Body); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("read %s: %w", key, a.classify(err))
}

// Create stores data only if no blob has the name (If-None-Match: *).
func (a *Azure) Create(ctx context.Context, key string, data []byte) error {
	anyTag := azcore.ETagAny
	_, err := a.client.NewBlockBlobClient(key).Upload(ctx, streaming.NopCloser(bytes.NewReader(data)),
		&blockblob.UploadOptions{Tags: a.tags, CPKScopeInfo: a.scope, AccessConditions: &blob.AccessConditions{
			ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: &anyTag}}})
	if err = a.classify(err); errors.Is(err, ErrExists) {
		return ErrExists
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", key, err)
	}
	return nil
}

// Delete removes a blob.
func (a *Azure) Delete(ctx context.Context, key string) error {
	_, err := a.client.NewBlobClient(key).Delete(ctx, nil)
	if err != nil && !bloberror.HasCode(err, bloberror.BlobNotFound) {
		return fmt.Errorf("delete %s: %w", key, a.classify(err))
	}
	return nil
}

// List returns the blob names under prefix.
func (a *Azure) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	pager := a.client.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &prefix})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, a.classify(err))
		}
		for _, b := range page.Segment.BlobItems {
			keys = append(keys, *b.Name)
		}
	}
	return keys, nil
}

// NewMultipart stages blocks in parallel and commits them at the end.
func (a *Azure) NewMultipart(ctx context.Context, key string) (Multipart, error) {
	return &azureMultipart{a: a, key: key, bb: a.client.NewBlockBlobClient(key)}, nil
}

type azureMultipart struct {
	a    *Azure
	key  string
	bb   *blockblob.Client
	mu   sync.Mutex
	max  int
	size int64
}

// blockID is Barman's block ID: the part number zero-padded to five
// digits (IDs must all have the same length), base64-encoded.
func blockID(n int) string {
	return base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("%05d", n)))
}

func (m *azureMultipart) Upload(ctx context.Context, p Part) error {
	_, err := m.bb.StageBlock(ctx, blockID(p.Number), streaming.NopCloser(bytes.NewReader(p.Data)),
		&blockblob.StageBlockOptions{CPKScopeInfo: m.a.scope})
	if err != nil {
		return fmt.Errorf("upload %s block %d: %w", m.key, p.Number, m.a.classify(err))
	}
	m.mu.Lock()
	m.max = max(m.max, p.Number)
	m.size += int64(len(p.Data))
	m.mu.Unlock()
	return nil
}

// Completed checks the blob is there with the size of the blocks. A
// retried commit succeeds anyway (the latest block list finds the blocks
// among the committed ones), so this is rarely needed.
func (m *azureMultipart) Completed(ctx context.Context) (bool, error) {
	props, err := m.bb.GetProperties(ctx, nil)
	if bloberror.HasCode(err, bloberror.BlobNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("properties of %s: %w", m.key, m.a.classify(err))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return props.ContentLength != nil && *props.ContentLength == m.size, nil
}

func (m *azureMultipart) Complete(ctx context.Context) error {
	m.mu.Lock()
	ids := make([]string, m.max)
	for i := range ids {
		ids[i] = blockID(i + 1)
	}
	m.mu.Unlock()
	_, err := m.bb.CommitBlockList(ctx, ids, &blockblob.CommitBlockListOptions{Tags: m.a.tags, CPKScopeInfo: m.a.scope})
	if err != nil {
		return fmt.Errorf("commit %s: %w", m.key, m.a.classify(err))
	}
	return nil
}

// Abort drops the staged blocks as Barman does: committing an empty list
// discards them, and the empty blob is then deleted.
func (m *azureMultipart) Abort(ctx context.Context) error {
	if _, err := m.bb.CommitBlockList(ctx, nil, &blockblob.CommitBlockListOptions{CPKScopeInfo: m.a.scope}); err != nil {
		return fmt.Errorf("abort %s: %w", m.key, m.a.classify(err))
	}
	if _, err := m.bb.Delete(ctx, nil); err != nil {
		return fmt.Errorf("abort %s: %w", m.key, m.a.classify(err))
	}
	return nil
}
