//go:build integration

package integration

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
)

// Every source of credentials the AWS, Azure and Google tools (so Barman)
// use backs up with our binary, from one source cluster: to MinIO, where
// Barman restores each backup; to Azurite; to fake-gcs-server. Identity
// services that cannot run here are stood in for on loopback, speaking
// their protocols; nothing leaves the machine. A provider's backups run
// two at a time, each to a prefix of its own.
func TestCredentialSources(t *testing.T) {
	w, m := newS3World(t)
	t.Run("aws", func(t *testing.T) { testAWSSources(t, w, m) })
	t.Run("azure", func(t *testing.T) { testAzureSources(t, w) })
	t.Run("gcs", func(t *testing.T) { testGCSSources(t, w) })
}

// awsHome is a home directory of its own for one run of our binary, with
// the AWS config and credentials files given, and an environment that
// leaves out every credential of the test's own: only what a case sets
// counts. Barman's tools keep the world's static keys.
func awsHome(t *testing.T, config, creds string, env ...string) (string, []string) {
	t.Helper()
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".aws"), 0o700)
	writeTestFile(t, filepath.Join(home, ".aws", "config"), config)
	writeTestFile(t, filepath.Join(home, ".aws", "credentials"), creds)
	return home, append([]string{"HOME=" + home, "AWS_CONFIG_FILE=", "AWS_SHARED_CREDENTIALS_FILE=",
		"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_SESSION_TOKEN=", "AWS_PROFILE=", "AWS_REGION=", "AWS_DEFAULT_REGION=",
		"AWS_EC2_METADATA_DISABLED=true"}, env...)
}

func writeTestFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// runTo runs our binary at -vv from the world's source to dest, with env
// and the provider options in args.
func (w *world) runTo(t *testing.T, env []string, dest string, args ...string) result {
	t.Helper()
	full := append(append([]string{"-h", "127.0.0.1", "-p", fmt.Sprint(w.src.Port), "-U", "postgres", "--immediate-checkpoint", "-vv"},
		args...), dest, w.server)
	return runCmd(t, env, binary, full...)
}

// checkDone fails unless exactly one backup of the world's server is
// under prefix and its backup.info says DONE; it returns the backup's ID
// and its backup.info.
func (w *world) checkDone(t *testing.T, store objectStore, prefix string) (string, string) {
	t.Helper()
	base := prefix + "/" + w.server + "/base/"
	var infos []string
	for _, k := range store.Keys(t, base) {
		if strings.HasSuffix(k, "/backup.info") {
			infos = append(infos, k)
		}
	}
	if len(infos) != 1 {
		t.Fatalf("backups under %s: %v", base, infos)
	}
	info := string(store.Get(t, infos[0]))
	if !strings.Contains(info, "status=DONE") {
		t.Fatalf("%s:\n%s", infos[0], info)
	}
	return strings.TrimSuffix(strings.TrimPrefix(infos[0], base), "/backup.info"), info
}

// noSecrets fails the test for every secret text holds.
func noSecrets(t *testing.T, what, text string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s holds secret %q:\n%s", what, s, text)
		}
	}
}

// s3Backup is a backup in MinIO, for Barman to restore.
type s3Backup struct{ dest, id string }

// restoreAll restores every backup with barman-cloud-restore, which reads
// its backup.info and every part, two at a time (a restore mostly waits
// for Barman's programs to start). Those named in full are then started,
// recovered with barman-cloud-wal-restore from the world's WAL archive,
// and must hold the source's data; recovery stops as soon as the backup
// is consistent, since the source's data did not change after it.
func (w *world) restoreAll(t *testing.T, backups map[string]s3Backup, full ...string) {
	t.Helper()
	t.Run("barman-restores", func(t *testing.T) {
		for name, b := range backups {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				dir := postgresDir(t, "bcb-restore-")
				data, tbs := filepath.Join(dir, "data"), filepath.Join(dir, "tbs1")
				mustRun(t, w.env, "barman-cloud-restore", append(w.cloud, "--tablespace", "tbs1:"+tbs, b.dest, w.server, b.id, data)...)
				for _, f := range []string{"PG_VERSION", "global/pg_control", "backup_label"} {
					if _, err := os.Stat(filepath.Join(data, f)); err != nil {
						t.Errorf("restored data directory: %v", err)
					}
				}
				if m, _ := filepath.Glob(filepath.Join(tbs, "PG_15_*")); len(m) != 1 {
					t.Errorf("restored tablespace: %v", m)
				}
				if !contains(full, name) {
					return
				}
				f, err := os.OpenFile(filepath.Join(data, "postgresql.auto.conf"), os.O_APPEND|os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintln(f, "recovery_target = 'immediate'\nrecovery_target_action = 'promote'\nrecovery_target_timeline = 'current'")
				f.Close()
				w.checkRestored(t, StartRestoredBin(t, w.src.Bin, dir, w.restoreCommand(), w.env))
			})
		}
	})
}

// AWS: the keys AWSIdentity hands out are MinIO's own temporary ones.
func testAWSSources(t *testing.T, w *world, m *MinIO) {
	id := StartAWSIdentity(t, m)
	role := func(name string) string { return "arn:aws:iam::123456789012:role/bcb-" + name }
	rootKeys := fmt.Sprintf("[base]\naws_access_key_id = %s\naws_secret_access_key = %s\n", m.AccessKey, m.SecretKey)
	tokenFile := filepath.Join(t.TempDir(), "token")
	writeTestFile(t, tokenFile, id.WebIdentityToken)
	sso := sha1.Sum([]byte("corp"))
	ecsToken := id.ContainerToken(time.Hour)
	// The endpoint says these keys expire within the five minutes before
	// expiry at which they are fetched again, so every request needs new
	// ones: a run that outlives its credentials, many times over, without
	// waiting for MinIO's 15 minutes.
	eksToken := id.ContainerToken(time.Minute)
	// credential_process: a program on disk that prints the keys in the
	// process credentials format, and counts its runs.
	procDir := t.TempDir()
	v := id.mint(t)
	procOut, _ := json.Marshal(map[string]any{"Version": 1, "AccessKeyId": v.AccessKeyID, "SecretAccessKey": v.SecretAccessKey,
		"SessionToken": v.SessionToken, "Expiration": v.Expiration.UTC().Format(time.RFC3339)})
	writeTestFile(t, filepath.Join(procDir, "creds.json"), string(procOut))
	script := filepath.Join(procDir, "aws-creds.sh")
	writeTestFile(t, script, fmt.Sprintf("#!/bin/sh\necho called >> %s/calls\ncat %s/creds.json\n", procDir, procDir))
	os.Chmod(script, 0o700)

	var mu sync.Mutex
	backups := map[string]s3Backup{}
	t.Run("backups", func(t *testing.T) {
		for _, c := range []struct {
			name          string
			config, creds string
			env           func(home string) []string
			args          []string
			calls         string // what the identity service must have been asked
			atLeast       int
		}{
			{name: "assume-role-source-profile",
				config: "[profile backup]\nrole_arn = " + role("source-profile") + "\nsource_profile = base\nrole_session_name = bcb\nduration_seconds = 900\n",
				creds:  rootKeys, args: []string{"-P", "backup"}, calls: "AssumeRole " + role("source-profile"), atLeast: 1,
				env: func(string) []string { return []string{"AWS_ENDPOINT_URL_STS=" + id.URL} }},
			// MinIO assumes roles for long-term keys only, as AWS does
			// for most: the environment holds the root user's.
			{name: "assume-role-credential-source",
				config: "[profile fromenv]\nrole_arn = " + role("credential-source") + "\ncredential_source = Environment\n",
				args:   []string{"--aws-profile", "fromenv"}, calls: "AssumeRole " + role("credential-source"), atLeast: 1,
				env: func(string) []string {
					return []string{"AWS_ENDPOINT_URL_STS=" + id.URL, "AWS_ACCESS_KEY_ID=" + m.AccessKey, "AWS_SECRET_ACCESS_KEY=" + m.SecretKey}
				}},
			{name: "credential-process", config: "[default]\nregion = us-east-1\ncredential_process = " + script + "\n",
				calls: "process", atLeast: 1, env: func(string) []string { return nil }},
			{name: "web-identity-irsa", calls: "AssumeRoleWithWebIdentity " + role("irsa"), atLeast: 1,
				env: func(string) []string {
					return []string{"AWS_ENDPOINT_URL_STS=" + id.URL, "AWS_ROLE_ARN=" + role("irsa"), "AWS_WEB_IDENTITY_TOKEN_FILE=" + tokenFile,
						"AWS_ROLE_SESSION_NAME=bcb", "AWS_REGION=us-east-1"}
				}},
			{name: "web-identity-profile",
				config: "[profile eks]\nrole_arn = " + role("web-identity-profile") + "\nweb_identity_token_file = " + tokenFile + "\n",
				args:   []string{"-P", "eks"}, calls: "AssumeRoleWithWebIdentity " + role("web-identity-profile"), atLeast: 1,
				env: func(string) []string { return []string{"AWS_ENDPOINT_URL_STS=" + id.URL} }},
			{name: "container-ecs", calls: "container " + ecsToken, atLeast: 1,
				env: func(string) []string {
					return []string{"AWS_CONTAINER_CREDENTIALS_FULL_URI=" + id.URL + "/v1/credentials",
						"AWS_CONTAINER_AUTHORIZATION_TOKEN=" + ecsToken}
				}},
			// EKS Pod Identity reads its token from a file.
			{name: "container-eks-pod-identity-refresh", calls: "container " + eksToken, atLeast: 4,
				env: func(home string) []string {
					file := filepath.Join(home, "eks-pod-identity-token")
					writeTestFile(t, file, eksToken)
					return []string{"AWS_CONTAINER_CREDENTIALS_FULL_URI=" + id.URL + "/v1/credentials",
						"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=" + file}
				}},
			{name: "imds-v2", calls: "imds", atLeast: 1,
				env: func(string) []string {
					return []string{"AWS_EC2_METADATA_DISABLED=false", "AWS_EC2_METADATA_SERVICE_ENDPOINT=" + id.URL}
				}},
			{name: "sso-session",
				config: "[profile sso]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = BackupRole\nregion = us-east-1\n" +
					"[sso-session corp]\nsso_region = us-east-1\nsso_start_url = https://corp.awsapps.com/start\n",
				args: []string{"-P", "sso"}, calls: "sso", atLeast: 1,
				env: func(home string) []string {
					dir := filepath.Join(home, ".aws", "sso", "cache")
					os.MkdirAll(dir, 0o700)
					token, _ := json.Marshal(map[string]string{"accessToken": id.SSOToken, "region": "us-east-1",
						"startUrl": "https://corp.awsapps.com/start", "expiresAt": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
					writeTestFile(t, filepath.Join(dir, hex.EncodeToString(sso[:])+".json"), string(token))
					return []string{"AWS_ENDPOINT_URL_SSO=" + id.URL}
				}},
		} {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				home, env := awsHome(t, c.config, c.creds)
				env = append(env, c.env(home)...)
				prefix := "creds/" + c.name
				r := w.runTo(t, env, "s3://backups/"+prefix, append([]string{"--endpoint-url", m.Endpoint}, c.args...)...)
				if r.code != 0 {
					t.Fatalf("exit %d:\n%s", r.code, r.stderr)
				}
				backupID, info := w.checkDone(t, w.store, prefix)
				got := id.Calls(c.calls)
				if c.calls == "process" {
					b, _ := os.ReadFile(filepath.Join(procDir, "calls"))
					got = strings.Count(string(b), "called")
				}
				if got < c.atLeast {
					t.Errorf("%s: %d calls, want at least %d", c.calls, got, c.atLeast)
				}
				t.Logf("%s: %d calls", c.calls, got)
				secrets := append(id.Secrets(), m.SecretKey)
				noSecrets(t, "the -vv output", r.stdout+r.stderr, secrets)
				noSecrets(t, "backup.info", info, secrets)
				mu.Lock()
				backups[c.name] = s3Backup{dest: "s3://backups/" + prefix, id: backupID}
				mu.Unlock()
			})
		}
	})
	// Barman restores each backup; two are recovered and compared with
	// the source: the role assumed through STS, and the one whose
	// credentials changed between requests. (A recovery costs several
	// starts of Barman's programs: recovering each would double the
	// test's time, to show again what TestS3RoundTrip shows.)
	w.restoreAll(t, backups, "assume-role-source-profile", "container-eks-pod-identity-refresh")

	// A setup that cannot give credentials fails with one line, before
	// PostgreSQL is touched (nothing listens on the port given), with
	// Barman's exit code for errors it does not know (4), and never
	// shows a secret.
	dead := fmt.Sprint(freePort(t))
	wrongToken := filepath.Join(t.TempDir(), "token")
	writeTestFile(t, wrongToken, "wrong-web-identity-token-33b0")
	for _, c := range []struct {
		name, config, creds string
		env                 []string
		args                []string
		msg                 string
		secrets             []string
	}{
		{name: "assume-role-refused", config: "[profile backup]\nrole_arn = " + role("refused") + "\nsource_profile = base\n",
			creds: "[base]\naws_access_key_id = " + m.AccessKey + "\naws_secret_access_key = wrong-secret-key-4e1d\n",
			env:   []string{"AWS_ENDPOINT_URL_STS=" + id.URL}, args: []string{"-P", "backup"},
			msg: "AWS credentials for profile backup from source_profile then static keys in the shared files then STS AssumeRole (role_arn): ", secrets: []string{"wrong-secret-key-4e1d"}},
		{name: "web-identity-refused", env: []string{"AWS_ENDPOINT_URL_STS=" + id.URL, "AWS_ROLE_ARN=" + role("refused"),
			"AWS_WEB_IDENTITY_TOKEN_FILE=" + wrongToken},
			msg:     "AWS credentials for profile default from AWS_WEB_IDENTITY_TOKEN_FILE: failed to retrieve credentials, operation error STS: AssumeRoleWithWebIdentity",
			secrets: []string{"wrong-web-identity-token-33b0"}},
		{name: "container-refused", env: []string{"AWS_CONTAINER_CREDENTIALS_FULL_URI=" + id.URL + "/v1/credentials",
			"AWS_CONTAINER_AUTHORIZATION_TOKEN=wrong-container-token-9a7c"},
			msg: "AWS credentials for profile default from the container credentials endpoint: ", secrets: []string{"wrong-container-token-9a7c"}},
		{name: "sso-token-missing", config: "[profile sso]\nsso_session = gone\nsso_account_id = 123456789012\nsso_role_name = BackupRole\n" +
			"[sso-session gone]\nsso_region = us-east-1\nsso_start_url = https://corp.awsapps.com/start\n",
			env: []string{"AWS_ENDPOINT_URL_SSO=" + id.URL}, args: []string{"-P", "sso"},
			msg: "AWS credentials for profile sso from SSO (sso_session, the SSO token cache): "},
		{name: "nothing", msg: "Unable to locate credentials (profile default): "},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, env := awsHome(t, c.config, c.creds, c.env...)
			args := append(append([]string{"-vv", "--endpoint-url", m.Endpoint, "-h", "127.0.0.1", "-p", dead}, c.args...), "s3://backups/refused", "main")
			r := runCmd(t, env, binary, args...)
			if r.code != 4 {
				t.Fatalf("exit %d, want 4:\n%s", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, c.msg) || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
				t.Errorf("want one line with %q:\n%s", c.msg, r.stderr)
			}
			noSecrets(t, "the output", r.stdout+r.stderr, append(append(id.Secrets(), m.SecretKey), c.secrets...))
			t.Log(strings.TrimSpace(r.stderr))
		})
	}
	if keys := m.Keys(t, "backups", "refused/"); len(keys) != 0 {
		t.Errorf("a refused run wrote %v", keys)
	}
}

// Azure: Azurite over HTTPS as the account devstoreaccount1 on
// blob.core.windows.net, reached through a CloudFront, so that URLs,
// TLS and the SDK's authentication run as against Azure. Tokens come
// from AzureIdentity (Entra ID's token endpoint, App Service's managed
// identity endpoint) or a stand-in `az` program; SAS and keys are
// Azurite's own.
func testAzureSources(t *testing.T, w *world) {
	front := StartCloudFront(t)
	az := StartAzuriteHTTPS(t, front, "backups")
	ident := StartAzureIdentity(t, front)
	store := az.tlsContainer(t, front, "backups")
	const blobHost = "devstoreaccount1.blob.core.windows.net"
	dest := "https://" + blobHost + "/backups/"

	// A SAS for the container alone, as a DBA would be given.
	cred, err := container.NewSharedKeyCredential(azuriteAccount, azuriteKey)
	if err != nil {
		t.Fatal(err)
	}
	perms := sas.ContainerPermissions{Read: true, Add: true, Create: true, Write: true, Delete: true, List: true}
	qp, err := sas.BlobSignatureValues{Protocol: sas.ProtocolHTTPS, StartTime: time.Now().Add(-time.Hour).UTC(),
		ExpiryTime: time.Now().Add(2 * time.Hour).UTC(), Permissions: perms.String(), ContainerName: "backups"}.SignWithSharedKey(cred)
	if err != nil {
		t.Fatal(err)
	}
	containerSAS := qp.Encode()

	// The Azure CLI credential runs `az account get-access-token`: a
	// stand-in prints what the CLI prints, for a token Azurite accepts.
	bin := t.TempDir()
	azCalls := filepath.Join(bin, "calls")
	cliToken := ident.accessToken()
	cliOut, _ := json.Marshal(map[string]any{"accessToken": cliToken, "tokenType": "Bearer", "tenant": ident.TenantID,
		"expiresOn": time.Now().Add(time.Hour).Format("2006-01-02 15:04:05.000000"), "expires_on": time.Now().Add(time.Hour).Unix()})
	writeTestFile(t, filepath.Join(bin, "az"), fmt.Sprintf("#!/bin/sh\necho \"$*\" >> %s\n"+
		"case \"$*\" in *'account get-access-token'*'--resource https://storage.azure.com'*) echo '%s';; *) echo unknown >&2; exit 2;; esac\n",
		azCalls, cliOut))
	os.Chmod(filepath.Join(bin, "az"), 0o755)

	federated := filepath.Join(t.TempDir(), "azure-identity-token")
	writeTestFile(t, federated, ident.FederatedToken)
	wrongFederated := filepath.Join(t.TempDir(), "azure-identity-token")
	writeTestFile(t, wrongFederated, "wrong-federated-token-6d2e")

	// azidentity takes a variable set empty for one set (the test's own
	// environment has none of them).
	base := append(front.Env(), "HOME="+t.TempDir(), "AZURE_STORAGE_SAS_TOKEN=", "AZURE_STORAGE_KEY=")
	msi := []string{"IDENTITY_ENDPOINT=" + ident.MSIEndpoint, "IDENTITY_HEADER=" + ident.IdentityHeader}
	workload := []string{"AZURE_FEDERATED_TOKEN_FILE=" + federated, "AZURE_CLIENT_ID=" + ident.ClientID, "AZURE_TENANT_ID=" + ident.TenantID}
	secrets := func() []string {
		return append(ident.Secrets(), qp.Signature(), url.QueryEscape(qp.Signature()), azuriteKey, "wrong-federated-token-6d2e",
			"wrong-identity-header-77c1")
	}
	t.Run("backups", func(t *testing.T) {
		for _, c := range []struct {
			name  string
			env   []string
			args  []string
			calls string // AzureIdentity's, or "az"
		}{
			{name: "sas-token-for-the-container", env: []string{"AZURE_STORAGE_SAS_TOKEN=?" + containerSAS}},
			{name: "managed-identity-user-assigned", args: []string{"--azure-credential", "managed-identity"},
				env: append(msi, "AZURE_CLIENT_ID="+ident.ClientID), calls: "managed-identity " + ident.ClientID},
			{name: "workload-identity-default", args: []string{"--azure-credential", "default"}, env: workload, calls: "workload"},
			// The default chain's first source, without the option.
			{name: "service-principal-secret", calls: "service-principal", env: []string{"AZURE_TENANT_ID=" + ident.TenantID,
				"AZURE_CLIENT_ID=" + ident.ClientID, "AZURE_CLIENT_SECRET=" + ident.ClientSecret}},
			// Neither the option nor a storage secret: the default chain,
			// here down to the system-assigned managed identity.
			{name: "default-chain-managed-identity", env: msi, calls: "managed-identity "},
			{name: "azure-cli", args: []string{"--credential", "azure-cli"}, env: []string{"PATH=" + bin + ":" + os.Getenv("PATH")}, calls: "az"},
		} {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				prefix := "creds/" + c.name
				r := w.runTo(t, append(append([]string{}, base...), c.env...), dest+prefix,
					append([]string{"--cloud-provider", "azure-blob-storage"}, c.args...)...)
				if r.code != 0 {
					t.Fatalf("exit %d:\n%s", r.code, r.stderr)
				}
				_, info := w.checkDone(t, store, prefix)
				reqs := front.Requests(blobHost, prefix)
				if len(reqs) == 0 {
					t.Fatal("no request reached the storage account")
				}
				for _, q := range reqs {
					if c.calls == "" {
						if q.Authorization != "" || !strings.Contains(q.Query, "sig=") {
							t.Errorf("%s %s not signed by the SAS alone", q.Method, q.Path)
						}
					} else if token := strings.TrimPrefix(q.Authorization, "Bearer "); !ident.Issued(token) {
						t.Errorf("%s %s without a token the identity service issued", q.Method, q.Path)
					}
				}
				if c.calls == "az" {
					b, _ := os.ReadFile(azCalls)
					if !strings.Contains(string(b), "account get-access-token") {
						t.Errorf("az was not asked for a token: %q", b)
					}
				} else if c.calls != "" && ident.Calls(c.calls) < 1 {
					t.Errorf("no %q token was asked for", c.calls)
				}
				noSecrets(t, "the -vv output", r.stdout+r.stderr, secrets())
				noSecrets(t, "backup.info", info, secrets())
			})
		}
	})
	// Nothing went beyond the container, whatever the credential: a SAS
	// for it is enough.
	for _, q := range front.AllRequests(blobHost) {
		if q.Path != "/backups" && !strings.HasPrefix(q.Path, "/backups/") {
			t.Errorf("account-level request %s %s?%s", q.Method, q.Path, q.Query)
		}
	}

	// Refused credentials: as in Barman, -t says the cloud cannot be
	// used (2), in one line, with no secret.
	for _, c := range []struct {
		name string
		env  []string
		args []string
		msg  string
	}{
		{"managed-identity-refused", []string{"IDENTITY_ENDPOINT=" + ident.MSIEndpoint, "IDENTITY_HEADER=wrong-identity-header-77c1"},
			[]string{"--azure-credential", "managed-identity"}, "ManagedIdentityCredential"},
		{"workload-identity-refused", []string{"AZURE_FEDERATED_TOKEN_FILE=" + wrongFederated, "AZURE_CLIENT_ID=" + ident.ClientID,
			"AZURE_TENANT_ID=" + ident.TenantID}, []string{"--azure-credential", "default"}, "WorkloadIdentityCredential"},
		{"sas-token-for-another-container", []string{"AZURE_STORAGE_SAS_TOKEN=" + containerSAS}, nil, "HTTP 403"},
	} {
		t.Run(c.name, func(t *testing.T) {
			target := dest + "refused"
			if strings.HasPrefix(c.name, "sas-token-for-another") {
				target = "https://" + blobHost + "/other/refused"
			}
			r := runCmd(t, append(append([]string{}, base...), c.env...), binary,
				append(append([]string{"--cloud-provider", "azure-blob-storage", "-t", "-vv"}, c.args...), target, "main")...)
			if r.code != 2 {
				t.Fatalf("exit %d, want 2:\n%s", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, c.msg) || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
				t.Errorf("want one line with %q:\n%s", c.msg, r.stderr)
			}
			noSecrets(t, "the output", r.stdout+r.stderr, secrets())
			t.Log(strings.TrimSpace(r.stderr))
		})
	}
}

// GCS: fake-gcs-server as storage.googleapis.com, reached through a
// CloudFront, with Application Default Credentials found as google-auth
// finds them; GoogleIdentity issues the tokens, and every storage
// request must carry one.
func testGCSSources(t *testing.T, w *world) {
	front := StartCloudFront(t)
	g := StartFakeGCS(t, "backups")
	front.Route("storage.googleapis.com", "http://"+g.Host)
	ident := StartGoogleIdentity(t, front)
	dir := t.TempDir()
	saFile, wifFile, subject := filepath.Join(dir, "sa.json"), filepath.Join(dir, "wif.json"), filepath.Join(dir, "subject-token")
	writeTestFile(t, saFile, ident.ServiceAccountJSON)
	writeTestFile(t, subject, ident.SubjectToken)
	// Workload identity federation, impersonating a service account, as
	// `gcloud iam workload-identity-pools create-cred-config` writes it.
	wif, _ := json.Marshal(map[string]any{"type": "external_account", "audience": wifAudience,
		"subject_token_type": "urn:ietf:params:oauth:token-type:jwt", "token_url": "https://sts.googleapis.com/v1/token",
		"service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/backup@bcb-test.iam.gserviceaccount.com:generateAccessToken",
		"credential_source":                 map[string]string{"file": subject}})
	writeTestFile(t, wifFile, string(wif))
	gcloudHome := t.TempDir()
	os.MkdirAll(filepath.Join(gcloudHome, ".config", "gcloud"), 0o700)
	writeTestFile(t, filepath.Join(gcloudHome, ".config", "gcloud", "application_default_credentials.json"), ident.AuthorizedUserJSON)

	// STORAGE_EMULATOR_HOST (the test's own, for reading) would turn
	// authentication off.
	base := append(front.Env(), "STORAGE_EMULATOR_HOST=", "GOOGLE_APPLICATION_CREDENTIALS=", "GCE_METADATA_HOST=", "NO_GCE_CHECK=")
	t.Run("backups", func(t *testing.T) {
		for _, c := range []struct {
			name  string
			env   []string
			kinds []string // the services that must have issued tokens; storage gets the last one's
		}{
			{"service-account-key", []string{"GOOGLE_APPLICATION_CREDENTIALS=" + saFile, "HOME=" + t.TempDir()}, []string{"service-account"}},
			{"workload-identity-federation", []string{"GOOGLE_APPLICATION_CREDENTIALS=" + wifFile, "HOME=" + t.TempDir()},
				[]string{"sts", "impersonation"}},
			{"gcloud-user-credentials", []string{"HOME=" + gcloudHome}, []string{"authorized-user"}},
			{"metadata-server", []string{"GCE_METADATA_HOST=" + ident.MetadataHost, "HOME=" + t.TempDir()}, []string{"metadata"}},
		} {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				prefix := "creds/" + c.name
				r := w.runTo(t, append(append([]string{}, base...), c.env...), "gs://backups/"+prefix, "--cloud-provider", "google-cloud-storage")
				if r.code != 0 {
					t.Fatalf("exit %d:\n%s", r.code, r.stderr)
				}
				_, info := w.checkDone(t, g.Bucket("backups"), prefix)
				for _, k := range c.kinds {
					if ident.Calls(k) == 0 {
						t.Errorf("no %s token was asked for", k)
					}
				}
				want := c.kinds[len(c.kinds)-1]
				reqs := front.Requests("storage.googleapis.com", prefix)
				if len(reqs) == 0 {
					t.Fatal("no request reached storage.googleapis.com")
				}
				for _, q := range reqs {
					if kind := ident.kindOf(strings.TrimPrefix(q.Authorization, "Bearer ")); kind != want {
						t.Errorf("%s %s with a token from %q, want one from %s", q.Method, q.Path, kind, want)
					}
				}
				noSecrets(t, "the -vv output", r.stdout+r.stderr, ident.Secrets())
				noSecrets(t, "backup.info", info, ident.Secrets())
			})
		}
	})
	t.Run("refused", func(t *testing.T) {
		bad := filepath.Join(dir, "bad-subject")
		writeTestFile(t, bad, "wrong-subject-token-e81f")
		wrong, _ := json.Marshal(map[string]any{"type": "external_account", "audience": wifAudience,
			"subject_token_type": "urn:ietf:params:oauth:token-type:jwt", "token_url": "https://sts.googleapis.com/v1/token",
			"credential_source": map[string]string{"file": bad}})
		writeTestFile(t, filepath.Join(dir, "wrong.json"), string(wrong))
		env := append(append([]string{}, base...), "GOOGLE_APPLICATION_CREDENTIALS="+filepath.Join(dir, "wrong.json"), "HOME="+t.TempDir())
		r := runCmd(t, env, binary, "--cloud-provider", "google-cloud-storage", "-t", "gs://backups/refused", "main")
		if r.code != 2 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || !strings.Contains(r.stderr, "invalid_grant") {
			t.Fatalf("exit %d, want 2 and one line saying why:\n%s", r.code, r.stderr)
		}
		t.Log(strings.TrimSpace(r.stderr))
		// -vv adds the retries of the check, without a secret either.
		r = runCmd(t, env, binary, "--cloud-provider", "google-cloud-storage", "-t", "-vv", "gs://backups/refused", "main")
		noSecrets(t, "the output", r.stdout+r.stderr, append(ident.Secrets(), "wrong-subject-token-e81f"))
	})
}
