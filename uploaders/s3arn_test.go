package uploaders

import (
	"strings"
	"testing"
)

func TestParseAccessPoint(t *testing.T) {
	for _, tc := range []struct {
		url, endpointURL     string
		arn, prefix, host    string
		label, region, outID string
		secure               bool
	}{
		{url: "s3://arn:aws:s3:us-west-2:123456789012:accesspoint/pg-backups/nightly/pg",
			arn: "arn:aws:s3:us-west-2:123456789012:accesspoint/pg-backups", prefix: "nightly/pg",
			host: "s3-accesspoint.us-west-2.amazonaws.com", label: "pg-backups-123456789012", region: "us-west-2", secure: true},
		// boto3's colon form, no prefix, and a prefix with a colon.
		{url: "s3://arn:aws:s3:eu-west-3:123456789012:accesspoint:ap1",
			arn: "arn:aws:s3:eu-west-3:123456789012:accesspoint:ap1", prefix: "",
			host: "s3-accesspoint.eu-west-3.amazonaws.com", label: "ap1-123456789012", region: "eu-west-3", secure: true},
		{url: "s3://arn:aws:s3:eu-west-3:123456789012:accesspoint:ap1/a:b/c",
			arn: "arn:aws:s3:eu-west-3:123456789012:accesspoint:ap1", prefix: "a:b/c",
			host: "s3-accesspoint.eu-west-3.amazonaws.com", label: "ap1-123456789012", region: "eu-west-3", secure: true},
		{url: "s3://arn:aws-cn:s3:cn-north-1:123456789012:accesspoint/ap1/p",
			arn: "arn:aws-cn:s3:cn-north-1:123456789012:accesspoint/ap1", prefix: "p",
			host: "s3-accesspoint.cn-north-1.amazonaws.com.cn", label: "ap1-123456789012", region: "cn-north-1", secure: true},
		// A VPC endpoint or a proxy: NAME-ACCOUNT.ENDPOINT, as botocore.
		{url: "s3://arn:aws:s3:us-east-1:123456789012:accesspoint/ap1/p", endpointURL: "http://s3.bcb.test:9000",
			arn: "arn:aws:s3:us-east-1:123456789012:accesspoint/ap1", prefix: "p",
			host: "s3.bcb.test:9000", label: "ap1-123456789012", region: "us-east-1"},
		{url: "s3://arn:aws:s3-outposts:us-east-1:123456789012:outpost/op-01234567890abcdef/accesspoint/reports/pg",
			arn: "arn:aws:s3-outposts:us-east-1:123456789012:outpost/op-01234567890abcdef/accesspoint/reports", prefix: "pg",
			host: "op-01234567890abcdef.s3-outposts.us-east-1.amazonaws.com", label: "reports-123456789012",
			region: "us-east-1", outID: "op-01234567890abcdef", secure: true},
		{url: "s3://arn:aws:s3-outposts:us-east-1:123456789012:outpost:op-01234567890abcdef:accesspoint:reports/pg",
			endpointURL: "https://s3-outposts.us-east-1.amazonaws.com:8443",
			arn:         "arn:aws:s3-outposts:us-east-1:123456789012:outpost:op-01234567890abcdef:accesspoint:reports", prefix: "pg",
			host: "op-01234567890abcdef.s3-outposts.us-east-1.amazonaws.com:8443", label: "reports-123456789012",
			region: "us-east-1", outID: "op-01234567890abcdef", secure: true},
	} {
		c, err := parseS3(tc.url, Options{EndpointURL: tc.endpointURL})
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		ap := c.accessPoint
		if ap == nil || ap.arn != tc.arn || c.prefix != tc.prefix || c.endpoint != tc.host || c.bucket != tc.label ||
			ap.region != tc.region || ap.outpost != tc.outID || c.secure != tc.secure {
			t.Errorf("%s: got arn %q prefix %q host %q label %q region %q outpost %q secure %v", tc.url,
				ap.arn, c.prefix, c.endpoint, c.bucket, ap.region, ap.outpost, c.secure)
		}
	}
}

func TestParseAccessPointRefused(t *testing.T) {
	for url, want := range map[string]string{
		"s3://arn:aws:s3:::my-bucket/p":                                                      "bucket ARN or a multi-Region access point",
		"s3://arn:aws:s3::123456789012:accesspoint/mfzwi23gnjvgw.mrap/p":                     "bucket ARN or a multi-Region access point",
		"s3://arn:aws:s3-object-lambda:us-east-1:123456789012:accesspoint/ol/p":              "Object Lambda",
		"s3://arn:aws:s3:us-east-1:12345:accesspoint/ap1/p":                                  `account "12345" is not 12 digits`,
		"s3://arn:aws:s3:us-east-1:123456789012:accesspoint/AP_1/p":                          `access point name "AP_1"`,
		"s3://arn:aws:s3:useast1:123456789012:accesspoint/ap1/p":                             `region "useast1"`,
		"s3://arn:aws:s3:us-east-1:123456789012:bucket/ap1/p":                                "expected arn:PARTITION:s3:REGION:ACCOUNT:accesspoint/NAME",
		"s3://arn:aws:s3:us-east-1:123456789012:accesspoint:ap1:p":                           `a "/" must separate`,
		"s3://arn:aws:s3-outposts:us-east-1:123456789012:outpost/op-1/accesspoint/reports/p": `outpost "op-1"`,
		"s3://arn:aws:s3": "expected arn:PARTITION",
		"s3://arn:xx:s3:us-east-1:123456789012:accesspoint/ap1": `unknown partition "xx"`,
	} {
		_, err := parseS3(url, Options{})
		if err == nil || !strings.Contains(err.Error(), want) || strings.Count(err.Error(), "\n") > 0 {
			t.Errorf("%s: %v, want %q", url, err, want)
		}
	}
	_, err := parseS3("s3://arn:aws:s3-outposts:us-east-1:123456789012:outpost/op-01234567890abcdef/accesspoint/reports/p",
		Options{EndpointURL: "http://vpce-1.s3.us-east-1.vpce.amazonaws.com"})
	if err == nil || !strings.Contains(err.Error(), "it must be s3-outposts.us-east-1.amazonaws.com") {
		t.Errorf("Outposts through another endpoint: %v", err)
	}
	if _, err := parseS3("s3://arn:aws:s3:ap-southeast-10:123456789012:accesspoint/ap1/p", Options{}); err != nil {
		t.Errorf("a two-digit region: %v", err)
	}
	_, err = parseS3("s3://arn:aws:s3:us-east-1:123456789012:accesspoint/ap1/p", Options{AddressingStyle: "path"})
	if err == nil || !strings.Contains(err.Error(), "--addressing-style path cannot reach access point arn:aws:s3:us-east-1:123456789012:accesspoint/ap1") {
		t.Errorf("path style with an access point: %v", err)
	}
	// The generic URL check in parse lets an ARN through to S3's parser.
	if _, err := parse("s3://arn:aws:s3:us-east-1:123456789012:accesspoint/ap1/p", Options{}, func(string) (string, bool) { return "", false }); err != nil {
		t.Errorf("parse: %v", err)
	}
}

// Virtual-host requests put the bucket in front of the host: never of an
// IP address.
func TestIsIPHost(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1:9000": true, "10.0.0.1": true, "[::1]:9000": true,
		"s3.bcb.test:9000": false, "s3.amazonaws.com": false,
	} {
		if got := isIPHost(host); got != want {
			t.Errorf("isIPHost(%q) = %v", host, got)
		}
	}
}
