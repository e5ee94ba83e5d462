package conf

import (
	"strings"
)

// VerifyProg is the verifier's program name, in the family of Barman's
// barman-cloud-backup-show, whose command line it shares.
const VerifyProg = "barman-cloud-backup-verify"

const verifyDescription = "Read a backup made by barman-cloud-backup back from the cloud, every archive to its end, " +
	"and check it: each file against the backup_manifest stored with it (size and CRC-32C), that no file " +
	"is missing or extra, that every tar archive ends cleanly, that backup.info is DONE and agrees " +
	"with the manifest, and, when the backup's global/pg_control says its cluster had data checksums, " +
	"the checksum of every page of every relation file; with --check-wal, that the WAL archive holds the segments the backup needs. " +
	"Nothing is written to local disk. Exit 0: sound; 1: damage found; 2: the cloud is unreachable; " +
	"3: bad input; 4: other errors."

// VerifyConfig is barman-cloud-backup-verify's command line: the
// provider options and credentials it shares with barman-cloud-backup
// (in Config, SOURCE_URL as DestinationURL), and its own.
type VerifyConfig struct {
	Config
	// BackupID is a backup ID, a backup name, or one of Barman's words
	// latest, last, oldest, first.
	BackupID string
	// CheckWAL also checks the WAL archive for the backup's segments.
	CheckWAL bool
	// JSON prints the report as one JSON object.
	JSON bool
}

// verifyShared are the spellings of barman-cloud-backup's options the
// verifier takes unchanged: those every Barman cloud client shares
// (barman/clients/cloud_cli.py, create_argument_parser), and ours that
// apply to reading.
var verifyShared = map[string]bool{
	"-V": true, "--help": true, "-v": true, "-q": true, "-t": true, "--cloud-provider": true,
	"--endpoint-url": true, "-P": true, "--profile": true, "--read-timeout": true, "--addressing-style": true,
	"--azure-credential": true, "--log-format": true,
}

// verifyTable is the verifier's option table: the shared rows of
// barman-cloud-backup's table, as they are, then its own, which set vc.
func verifyTable(vc *VerifyConfig) []*option {
	var table []*option
	for _, o := range options {
		if len(o.flags) > 0 && verifyShared[o.flags[0]] {
			table = append(table, o)
		}
	}
	return append(table,
		&option{flags: []string{"-J", "--jobs"}, kind: flagValue, metavar: "JOBS",
			help: "number of parallel downloads (default: 2)",
			set: func(c *Config, v string) error {
				n, err := checkPositive(v)
				if err == nil {
					c.Jobs = n
				}
				return err
			}},
		&option{flags: []string{"--check-wal"}, kind: flagTrue,
			help: "also check that the WAL archive (SERVER_NAME/wals/) holds every segment from the backup's begin_wal to end_wal",
			set:  func(_ *Config, _ string) error { vc.CheckWAL = true; return nil }},
		&option{flags: []string{"--json"}, kind: flagTrue,
			help: "print the report as one JSON object on stdout, for monitoring, instead of lines",
			set:  func(_ *Config, _ string) error { vc.JSON = true; return nil }},
	)
}

// ParseVerify reads barman-cloud-backup-verify's command line with
// argparse's rules, as Parse does: SOURCE_URL SERVER_NAME BACKUP_ID and
// the options. A UsageError is exit 3.
func ParseVerify(args []string) (VerifyConfig, Action, error) {
	vc := VerifyConfig{Config: Defaults()}
	p := &parser{table: verifyTable(&vc), args: args, cfg: &vc.Config, seen: map[string]*option{}}
	if action, err := p.scan(); err != nil || action != ActionRun {
		return vc, action, err
	}
	pos := p.positional
	if len(pos) < 3 {
		missing := []string{"source_url", "server_name", "backup_id"}[len(pos):]
		return vc, ActionRun, usage("the following arguments are required: %s", strings.Join(missing, ", "))
	}
	if unknown := append(p.unknown, pos[3:]...); len(unknown) > 0 {
		return vc, ActionRun, usage("unrecognized arguments: %s", strings.Join(unknown, " "))
	}
	vc.DestinationURL, vc.ServerName, vc.BackupID = pos[0], pos[1], pos[2]
	return vc, ActionRun, nil
}

// VerifyUsage is the verifier's usage line.
func VerifyUsage() string {
	var vc VerifyConfig
	return usageOf(VerifyProg, verifyTable(&vc), "source_url", "server_name", "backup_id")
}

// verifyArguments are the verifier's positional arguments, name and
// help, for --help and the manual.
var verifyArguments = [][2]string{
	{"source_url", "URL of the cloud source, such as a bucket in AWS S3: s3://bucket/path/to/folder " +
		"(or an access point's ARN in place of the bucket)"},
	{"server_name", "the name of the server as configured in Barman"},
	{"backup_id", "the backup ID, a backup name, or latest, last, oldest, first"},
}

// VerifyHelp is the verifier's --help text.
func VerifyHelp() string {
	var vc VerifyConfig
	return helpOf(VerifyUsage(), verifyDescription, verifyTable(&vc), verifyArguments)
}
