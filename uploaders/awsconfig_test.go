package uploaders

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// isolateAWS gives a test its own empty AWS configuration: no variable,
// file or instance metadata of the machine it runs on counts.
func isolateAWS(t *testing.T) (configFile, credsFile string) {
	t.Helper()
	dir := t.TempDir()
	for _, env := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
		"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
		"AWS_CA_BUNDLE"} {
		t.Setenv(env, "")
	}
	configFile, credsFile = filepath.Join(dir, "config"), filepath.Join(dir, "credentials")
	t.Setenv("HOME", dir)
	t.Setenv("AWS_CONFIG_FILE", configFile)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", credsFile)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	return configFile, credsFile
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestAWSCredentialsFromEnvironmentAndFiles(t *testing.T) {
	configFile, credsFile := isolateAWS(t)
	writeFile(t, credsFile, "[default]\naws_access_key_id = FILEKEY\naws_secret_access_key = filesecret\n"+
		"[other]\naws_access_key_id = OTHERKEY\naws_secret_access_key = othersecret\n")
	writeFile(t, configFile, "[default]\nregion = eu-west-3\n[profile other]\nregion = ap-south-1\n")

	check := func(profile, wantKey, wantRegion string) {
		t.Helper()
		creds, region, err := awsCredentials(context.Background(), profile)
		if err != nil {
			t.Fatalf("profile %q: %v", profile, err)
		}
		v, err := creds.GetWithContext(nil)
		if err != nil {
			t.Fatal(err)
		}
		if v.AccessKeyID != wantKey || region != wantRegion {
			t.Errorf("profile %q: key %s region %q, want %s %q", profile, v.AccessKeyID, region, wantKey, wantRegion)
		}
	}
	check("", "FILEKEY", "eu-west-3")
	check("other", "OTHERKEY", "ap-south-1")
	t.Setenv("AWS_PROFILE", "other")
	check("", "OTHERKEY", "ap-south-1")
	t.Setenv("AWS_PROFILE", "")

	// The environment comes first, but not over an explicit profile
	// (boto3's profile_name); AWS_REGION before AWS_DEFAULT_REGION
	// before the profile's.
	t.Setenv("AWS_ACCESS_KEY_ID", "ENVKEY")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "envsecret")
	check("", "ENVKEY", "eu-west-3")
	check("other", "OTHERKEY", "ap-south-1")
	t.Setenv("AWS_DEFAULT_REGION", "us-west-1")
	check("", "ENVKEY", "us-west-1")
	t.Setenv("AWS_REGION", "us-west-2")
	check("other", "OTHERKEY", "us-west-2")

	// No region anywhere: minio-go finds the bucket's.
	writeFile(t, configFile, "")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	check("", "ENVKEY", "")
}

func TestAWSCredentialsMissing(t *testing.T) {
	_, credsFile := isolateAWS(t)
	start := time.Now()
	_, _, err := awsCredentials(context.Background(), "")
	if err == nil || !strings.HasPrefix(err.Error(), "Unable to locate credentials (profile default)") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v with the metadata service off", d)
	}
	_, _, err = awsCredentials(context.Background(), "nosuch")
	if err == nil || err.Error() != "The config profile (nosuch) could not be found" {
		t.Fatalf("err = %v", err)
	}
	t.Setenv("AWS_CA_BUNDLE", "/nonexistent/ca.pem")
	_, _, err = awsCredentials(context.Background(), "")
	if err == nil || !strings.HasPrefix(err.Error(), "AWS_CA_BUNDLE: ") {
		t.Fatalf("err = %v", err)
	}
	t.Setenv("AWS_CA_BUNDLE", "")
	// A profile without keys falls through to the metadata service too.
	writeFile(t, credsFile, "[empty]\nregion = eu-west-1\n")
	_, _, err = awsCredentials(context.Background(), "empty")
	if err == nil || !strings.Contains(err.Error(), "Unable to locate credentials (profile empty)") {
		t.Fatalf("err = %v", err)
	}
}

// stsServer answers AssumeRole in STS's XML, or refuses with STS's error,
// and counts the calls.
func stsServer(t *testing.T, refuse bool, expires time.Time) (*httptest.Server, *atomic.Int32) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		n := calls.Add(1)
		w.Header().Set("Content-Type", "text/xml")
		if refuse || r.Form.Get("Action") != "AssumeRole" || !strings.Contains(r.Header.Get("Authorization"), "Credential=SOURCEKEY/") {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code>`+
				`<Message>User is not authorized to perform: sts:AssumeRole</Message></Error><RequestId>r1</RequestId></ErrorResponse>`)
			return
		}
		fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>`+
			`<AssumedRoleUser><Arn>%s/s</Arn><AssumedRoleId>AROA:s</AssumedRoleId></AssumedRoleUser>`+
			`<Credentials><AccessKeyId>ASIATEMP%d</AccessKeyId><SecretAccessKey>tempsecret%d</SecretAccessKey>`+
			`<SessionToken>temptoken%d</SessionToken><Expiration>%s</Expiration></Credentials>`+
			`</AssumeRoleResult><ResponseMetadata><RequestId>r%d</RequestId></ResponseMetadata></AssumeRoleResponse>`,
			r.Form.Get("RoleArn"), n, n, n, expires.UTC().Format(time.RFC3339), n)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestAWSAssumeRole(t *testing.T) {
	configFile, credsFile := isolateAWS(t)
	writeFile(t, credsFile, "[base]\naws_access_key_id = SOURCEKEY\naws_secret_access_key = source-secret-1\n")
	writeFile(t, configFile, "[profile backup]\nrole_arn = arn:aws:iam::123456789012:role/backup\nsource_profile = base\nregion = us-east-1\n")
	expires := time.Now().Add(time.Hour)
	srv, calls := stsServer(t, false, expires)
	t.Setenv("AWS_ENDPOINT_URL_STS", srv.URL)
	creds, region, err := awsCredentials(context.Background(), "backup")
	if err != nil {
		t.Fatal(err)
	}
	v, err := creds.GetWithContext(nil)
	if err != nil {
		t.Fatal(err)
	}
	if v.AccessKeyID != "ASIATEMP1" || v.SessionToken != "temptoken1" || region != "us-east-1" || !v.Expiration.Equal(expires.Truncate(time.Second).Add(-awsExpiryWindow)) {
		t.Errorf("got %s %s %q expiring %v", v.AccessKeyID, v.SessionToken, region, v.Expiration)
	}
	creds.GetWithContext(nil)
	if n := calls.Load(); n != 1 {
		t.Errorf("%d calls to STS for credentials valid an hour", n)
	}

	refused, _ := stsServer(t, true, expires)
	t.Setenv("AWS_ENDPOINT_URL_STS", refused.URL)
	_, _, err = awsCredentials(context.Background(), "backup")
	msg := fmt.Sprint(err)
	for _, want := range []string{"profile backup", "source_profile then static keys in the shared files then STS AssumeRole (role_arn)", "AccessDenied"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q: %s", want, msg)
		}
	}
	if strings.Contains(msg, "source-secret-1") || strings.Contains(msg, "\n") {
		t.Errorf("error %q", msg)
	}
}

// Credentials are fetched again before they expire, and only then.
func TestAWSProviderRefreshes(t *testing.T) {
	var calls atomic.Int32
	lifetime := time.Hour
	cache := aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		n := calls.Add(1)
		return aws.Credentials{AccessKeyID: fmt.Sprintf("KEY%d", n), SecretAccessKey: "s", SessionToken: "t",
			CanExpire: true, Expires: time.Now().Add(lifetime)}, nil
	}), func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = awsExpiryWindow })
	creds := credentials.New(&awsProvider{creds: cache, profile: "p"})
	for range 3 {
		if v, err := creds.GetWithContext(nil); err != nil || v.AccessKeyID != "KEY1" {
			t.Fatalf("%v %v", v.AccessKeyID, err)
		}
	}
	// Credentials that expire within the window are fetched again before
	// the next request, whoever holds them.
	lifetime = awsExpiryWindow / 2
	cache.Invalidate()
	for i := 2; i <= 4; i++ {
		if v, err := creds.GetWithContext(nil); err != nil || v.AccessKeyID != fmt.Sprintf("KEY%d", i) {
			t.Fatalf("request %d: %v %v", i, v.AccessKeyID, err)
		}
	}
}

func TestAWSProviderErrorIsOneLineWithoutSecrets(t *testing.T) {
	t.Setenv("AWS_SESSION_TOKEN", "env-session-token-9")
	failing := aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{}, fmt.Errorf("refused env-session-token-9\nGET /?X-Amz-Security-Token=abc/def%%2B1&Action=x and " +
			"{\"SecretAccessKey\": \"xyz\"}: InvalidIdentityToken: Couldn't verify")
	}))
	_, err := credentials.New(&awsProvider{creds: failing, profile: "p"}).GetWithContext(nil)
	msg := fmt.Sprint(err)
	for _, secret := range []string{"env-session-token-9", "abc/def", "xyz", "\n"} {
		if strings.Contains(msg, secret) {
			t.Errorf("%q in %q", secret, msg)
		}
	}
	for _, want := range []string{"profile p", "Action=x", "InvalidIdentityToken: Couldn't verify"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q not in %q", want, msg)
		}
	}
}

// IMDSv2: a session token first, then the role's credentials.
func TestAWSInstanceMetadata(t *testing.T) {
	isolateAWS(t)
	var tokens atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token":
			tokens.Add(1)
			w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", r.Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds"))
			fmt.Fprint(w, "imds-session")
		case r.Header.Get("X-Aws-Ec2-Metadata-Token") != "imds-session":
			w.WriteHeader(http.StatusUnauthorized)
		case r.URL.Path == "/latest/meta-data/iam/security-credentials/":
			fmt.Fprint(w, "backup-role")
		case r.URL.Path == "/latest/meta-data/iam/security-credentials/backup-role":
			fmt.Fprintf(w, `{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"ASIAIMDS","SecretAccessKey":"s","Token":"t","Expiration":%q}`,
				time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	t.Setenv("AWS_EC2_METADATA_DISABLED", "")
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", srv.URL)
	creds, _, err := awsCredentials(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := creds.GetWithContext(nil); v.AccessKeyID != "ASIAIMDS" || tokens.Load() == 0 {
		t.Errorf("key %s after %d IMDSv2 tokens", v.AccessKeyID, tokens.Load())
	}
}

func TestAWSCredentialProcess(t *testing.T) {
	configFile, _ := isolateAWS(t)
	script := filepath.Join(t.TempDir(), "creds.sh")
	writeFile(t, script, "#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": \"PROCKEY\", \"SecretAccessKey\": \"s\", \"SessionToken\": \"t\"}'\n")
	os.Chmod(script, 0o700)
	writeFile(t, configFile, "[default]\ncredential_process = "+script+"\n[profile broken]\ncredential_process = /bin/false\n")
	creds, _, err := awsCredentials(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := creds.GetWithContext(nil); v.AccessKeyID != "PROCKEY" {
		t.Errorf("key %s", v.AccessKeyID)
	}
	_, _, err = awsCredentials(context.Background(), "broken")
	if msg := fmt.Sprint(err); !strings.Contains(msg, "profile broken from credential_process") {
		t.Errorf("err = %s", msg)
	}
}
