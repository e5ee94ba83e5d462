package main

import "testing"

// The summary names the source without a password, and an access point's
// ARN (which net/url cannot parse) as it is.
func TestWithoutUserinfo(t *testing.T) {
	for in, want := range map[string]string{
		"s3://backups/prod":                                      "s3://backups/prod",
		"https://user:secret@host/c/p":                           "https://host/c/p",
		"s3://arn:aws:s3:us-east-1:123456789012:accesspoint/a/p": "s3://arn:aws:s3:us-east-1:123456789012:accesspoint/a/p",
		"s3://user:secret@b/%zz":                                 "(unparsable URL)",
	} {
		if got := withoutUserinfo(in); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}
