package uploaders

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/smithy-go/logging"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// awsExpiryWindow is how long before they expire temporary credentials
// are fetched again: time for the requests signed with them to arrive.
const awsExpiryWindow = 5 * time.Minute

// awsResolveTimeout bounds a lookup, so that an identity service that
// never answers fails the run instead of holding it.
const awsResolveTimeout = 2 * time.Minute

// awsCredentials finds S3 credentials and the region as the AWS CLI and
// boto3 (so Barman) do, through the AWS SDK's own chain: the environment,
// the shared config and credentials files (static keys, role_arn with
// source_profile or credential_source, credential_process, SSO,
// web_identity_token_file), web identity from AWS_WEB_IDENTITY_TOKEN_FILE,
// container credentials (ECS, EKS Pod Identity) and the EC2 instance
// metadata service. Credential chains are not what this project is
// about, and the SDK's follows AWS's every change. The credentials are
// fetched once here, so that a bad setup fails before PostgreSQL is
// touched, and again by minio-go whenever they near their expiry.
func awsCredentials(ctx context.Context, profile string) (*credentials.Credentials, string, error) {
	name := awsProfileName(profile)
	load := func(extra ...func(*config.LoadOptions) error) (aws.Config, error) {
		opts := []func(*config.LoadOptions) error{
			// The SDK's warnings would go to stderr around our log.
			config.WithLogger(logging.Nop{}),
			config.WithCredentialsCacheOptions(func(o *aws.CredentialsCacheOptions) {
				o.ExpiryWindow = awsExpiryWindow
			}),
		}
		if profile != "" {
			// As with boto3's profile_name, an explicit profile leaves the
			// keys of the environment out.
			opts = append(opts, config.WithSharedConfigProfile(profile))
		}
		return config.LoadDefaultConfig(ctx, append(opts, extra...)...)
	}
	cfg, err := load()
	if err != nil {
		return nil, "", awsConfigError(name, err)
	}
	region := cfg.Region
	if region == "" {
		// minio-go finds a bucket's region by itself, but STS and SSO
		// need one to sign with; boto3 uses us-east-1's there too.
		if cfg, err = load(config.WithDefaultRegion("us-east-1")); err != nil {
			return nil, "", awsConfigError(name, err)
		}
	}
	p := &awsProvider{creds: cfg.Credentials, profile: name}
	rctx, cancel := context.WithTimeout(ctx, awsResolveTimeout)
	defer cancel()
	if _, err := p.retrieve(rctx); err != nil {
		return nil, "", err
	}
	return credentials.New(p), region, nil
}

// awsProfileName is the profile the SDK reads, for messages.
func awsProfileName(profile string) string {
	for _, p := range []string{profile, os.Getenv("AWS_PROFILE"), os.Getenv("AWS_DEFAULT_PROFILE")} {
		if p != "" {
			return p
		}
	}
	return "default"
}

func awsConfigError(profile string, err error) error {
	var missing config.SharedConfigProfileNotExistError
	if errors.As(err, &missing) {
		// boto3's words, which Barman prints.
		return fmt.Errorf("The config profile (%s) could not be found", profile)
	}
	msg := scrubAWS(err.Error())
	if b := os.Getenv("AWS_CA_BUNDLE"); b != "" && (strings.Contains(msg, b) || strings.Contains(msg, "CA bundle")) {
		// The SDK reads boto3's AWS_CA_BUNDLE too, for its own calls.
		return fmt.Errorf("AWS_CA_BUNDLE: %s", msg)
	}
	return fmt.Errorf("AWS configuration for profile %s: %s", profile, msg)
}

// awsProvider hands the SDK's credentials to minio-go.
type awsProvider struct {
	creds   aws.CredentialsProvider
	profile string
}

// Retrieve gives the current credentials, fetched again near their expiry.
func (p *awsProvider) Retrieve() (credentials.Value, error) {
	return p.RetrieveWithCredContext(nil)
}

// RetrieveWithCredContext is Retrieve with minio-go's request context.
func (p *awsProvider) RetrieveWithCredContext(cc *credentials.CredContext) (credentials.Value, error) {
	ctx := context.Background()
	if cc != nil && cc.Context != nil {
		ctx = cc.Context
	}
	// minio-go gives no deadline (nor its request's context), and the
	// SDK's HTTP clients wait for an answer as long as it takes.
	ctx, cancel := context.WithTimeout(ctx, awsResolveTimeout)
	defer cancel()
	return p.retrieve(ctx)
}

// IsExpired is always true, so that minio-go asks before every request:
// the SDK's cache then answers from memory, and fetches new credentials
// only within awsExpiryWindow of the old ones' expiry. One cache, the
// SDK's, decides.
func (p *awsProvider) IsExpired() bool { return true }

func (p *awsProvider) retrieve(ctx context.Context) (credentials.Value, error) {
	c, err := p.creds.Retrieve(ctx)
	if err == nil && !c.HasKeys() {
		err = errors.New("no access key")
	}
	if err != nil {
		return credentials.Value{}, p.describe(err)
	}
	v := credentials.Value{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey,
		SessionToken: c.SessionToken, SignerType: credentials.SignatureV4}
	if c.CanExpire {
		v.Expiration = c.Expires
	}
	return v, nil
}

// describe makes one line of a failure that names the profile and the
// provider that failed, without a secret. Nothing configured at all ends
// at the instance metadata service: that is boto3's "Unable to locate
// credentials", which Barman reports with exit code 4.
func (p *awsProvider) describe(err error) error {
	var sources []aws.CredentialSource
	if s, ok := p.creds.(aws.CredentialProviderSource); ok {
		sources = s.ProviderSources()
	}
	msg := scrubAWS(strings.TrimPrefix(err.Error(), "failed to refresh cached credentials, "))
	if len(sources) == 1 && sources[0] == aws.CredentialSourceIMDS {
		return fmt.Errorf("Unable to locate credentials (profile %s): none in the environment, the shared config and credentials files or a container endpoint, nor from the EC2 instance metadata service: %s",
			p.profile, msg)
	}
	return fmt.Errorf("AWS credentials for profile %s from %s: %s", p.profile, awsSourceNames(sources), msg)
}

// awsSourceNames names the providers the SDK chained, in order.
func awsSourceNames(sources []aws.CredentialSource) string {
	var names []string
	for _, s := range sources {
		n := ""
		switch s {
		case aws.CredentialSourceEnvVars:
			n = "AWS_ACCESS_KEY_ID"
		case aws.CredentialSourceEnvVarsSTSWebIDToken:
			n = "AWS_WEB_IDENTITY_TOKEN_FILE"
		case aws.CredentialSourceProfile:
			n = "static keys in the shared files"
		case aws.CredentialSourceProfileSourceProfile:
			n = "source_profile"
		case aws.CredentialSourceProfileNamedProvider:
			n = "credential_source"
		case aws.CredentialSourceProfileSTSWebIDToken:
			n = "web_identity_token_file"
		case aws.CredentialSourceSTSAssumeRoleWebID:
			n = "STS AssumeRoleWithWebIdentity"
		case aws.CredentialSourceSTSAssumeRole:
			n = "STS AssumeRole (role_arn)"
		case aws.CredentialSourceProfileSSO, aws.CredentialSourceProfileSSOLegacy:
			// The next source says SSO again.
		case aws.CredentialSourceSSO, aws.CredentialSourceSSOLegacy:
			n = "SSO (sso_session, the SSO token cache)"
		case aws.CredentialSourceProfileProcess:
		case aws.CredentialSourceProcess:
			n = "credential_process"
		case aws.CredentialSourceHTTP:
			n = "the container credentials endpoint"
		case aws.CredentialSourceIMDS:
			n = "the EC2 instance metadata service"
		case aws.CredentialSourceProfileLogin:
		case aws.CredentialSourceLogin:
			n = "the aws login session"
		}
		if n != "" {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "the AWS credential chain"
	}
	return strings.Join(names, " then ")
}

// awsSecretPatterns match what could be a secret in an SDK message: the
// value of a parameter (name=value) or a JSON field ("name": "value")
// whose name says it is one. Error codes such as InvalidIdentityToken
// followed by their text are left alone.
var awsSecretPatterns = []*regexp.Regexp{
	regexp.MustCompile(`(?i)(\b[a-z_-]*(?:secret|token|password|signature|credential)[a-z_-]*=)[^\s&"',}]+`),
	regexp.MustCompile(`(?i)("[a-z_-]*(?:secret|token|password|signature|credential)[a-z_-]*"\s*:\s*")[^"]+`),
}

// scrubAWS makes one line of an SDK message and keeps secrets out: the
// ones in the environment, and any value given to a secret's name.
func scrubAWS(msg string) string {
	msg = strings.Join(strings.Fields(msg), " ")
	for _, env := range []string{"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN"} {
		if v := os.Getenv(env); len(v) >= 4 {
			msg = strings.ReplaceAll(msg, v, "REDACTED")
		}
	}
	for _, re := range awsSecretPatterns {
		msg = re.ReplaceAllString(msg, "${1}REDACTED")
	}
	return msg
}
