package conf

import (
	"errors"
	"strings"
	"testing"
)

func TestParseVerify(t *testing.T) {
	vc, action, err := ParseVerify([]string{"--endpoint-url", "http://127.0.0.1:9000", "-vv", "--check", "-J4",
		"--json", "s3://b/p", "pg", "latest"})
	if err != nil || action != ActionRun {
		t.Fatal(action, err)
	}
	if vc.EndpointURL != "http://127.0.0.1:9000" || vc.Verbose != 2 || !vc.CheckWAL || vc.Jobs != 4 || !vc.JSON ||
		vc.DestinationURL != "s3://b/p" || vc.ServerName != "pg" || vc.BackupID != "latest" || vc.CloudProvider != "aws-s3" {
		t.Errorf("parsed %+v", vc)
	}
	vc, _, err = ParseVerify([]string{"--cloud-provider", "azure-blob-storage", "--azure-credential=default", "-q",
		"https://a.blob.core.windows.net/c/p", "pg", "20261124T120000"})
	if err != nil || vc.Credential != "default" || vc.Quiet != 1 || vc.Jobs != 2 || vc.CheckWAL {
		t.Errorf("azure: %+v, %v", vc, err)
	}
	if err := vc.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"s3://b/p", "pg"}, "the following arguments are required: backup_id"},
		{[]string{}, "the following arguments are required: source_url, server_name, backup_id"},
		{[]string{"-z", "s3://b/p", "pg", "x"}, "unrecognized arguments: -z"},
		{[]string{"s3://b/p", "pg", "x", "y"}, "unrecognized arguments: y"},
		{[]string{"-v", "-q", "s3://b/p", "pg", "x"}, "not allowed with argument"},
		{[]string{"-J", "0", "s3://b/p", "pg", "x"}, "is not a valid positive integer"},
	} {
		_, _, err := ParseVerify(c.args)
		var ue *UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%q: %v, want a usage error with %q", c.args, err, c.msg)
		}
	}
	if _, action, _ := ParseVerify([]string{"--help"}); action != ActionHelp {
		t.Error("--help")
	}
	if _, action, _ := ParseVerify([]string{"-V"}); action != ActionVersion {
		t.Error("-V")
	}
}

func TestVerifyHelpHasOnlyItsOptions(t *testing.T) {
	h := VerifyHelp()
	for _, want := range []string{"usage: barman-cloud-backup-verify", "source_url", "backup_id",
		"--endpoint-url", "-P AWS_PROFILE, --aws-profile AWS_PROFILE", "--azure-credential", "--check-wal", "--json", "-J JOBS"} {
		if !strings.Contains(h, want) {
			t.Errorf("help lacks %q:\n%s", want, h)
		}
	}
	for _, not := range []string{"--gzip", "--immediate-checkpoint", "--tags", "Extra options for google-cloud-storage"} {
		if strings.Contains(h, not) {
			t.Errorf("help has %q", not)
		}
	}
}
