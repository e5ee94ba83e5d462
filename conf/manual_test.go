package conf

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func manual(t *testing.T, command string) string {
	t.Helper()
	var b bytes.Buffer
	if err := Manual(&b, command); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// Every spelling of every option, and every file key and variable, is in
// the page: a row added to a table is documented without anyone
// writing it.
func TestManualHasEveryOption(t *testing.T) {
	for _, command := range Commands() {
		page := manual(t, command)
		p, _ := manPageOf(command)
		for _, o := range p.table {
			for _, f := range o.flags {
				if want := `\fB` + roffText(f) + `\fR`; !strings.Contains(page, want) {
					t.Errorf("%s: no %s in the page", command, f)
				}
			}
			if p.settings && o.key != "" {
				for _, want := range []string{roffText(o.key), roffText(o.envName())} {
					if !strings.Contains(page, `\fB`+want+`\fR`) {
						t.Errorf("%s: no %s in the page", command, want)
					}
				}
			}
		}
		for _, want := range []string{".SH NAME\n" + roffText(command) + ` \- `, ".SH SYNOPSIS\n", ".SH DESCRIPTION\n",
			".SH OPTIONS\n", `.SH "EXIT STATUS"`, `.SH "SEE ALSO"`, `.SS "Extensions (not in Barman)"`} {
			if !strings.Contains(page, want) {
				t.Errorf("%s: no %q in the page", command, want)
			}
		}
		if empty := regexp.MustCompile(`\n\.SS [^\n]*\n\.S[SH] `).FindString(page); empty != "" {
			t.Errorf("%s: a group with no option: %q", command, empty)
		}
	}
	backup := manual(t, Prog)
	for _, want := range []string{`.B "63"`, `.B "` + EnvConfig + `"`, `.SH FILES`, `.BR "barman\-cloud\-restore" (1),`} {
		if !strings.Contains(backup, want) {
			t.Errorf("%s: no %q in the page", Prog, want)
		}
	}
	if verify := manual(t, VerifyProg); strings.Contains(verify, EnvConfig) || strings.Contains(verify, `.B "63"`) {
		t.Errorf("%s reads no configuration and has no hook mode, but its page says so", VerifyProg)
	}
}

func TestManualPositionals(t *testing.T) {
	for command, want := range map[string][]string{
		Prog:        {"destination_url", "server_name"},
		RestoreProg: {"source_url", "server_name", "backup_id", "recovery_dir"},
		VerifyProg:  {"source_url", "server_name", "backup_id"},
	} {
		p, _ := manPageOf(command)
		got := p.arguments
		if len(got) != len(want) {
			t.Fatalf("%s: positionals %q, want %q", command, got, want)
		}
		for i, a := range got {
			if a[0] != want[i] || a[1] == "" || strings.Contains(a[1], "  ") {
				t.Errorf("%s: positional %d is %q, want %s with its help on one line", command, i, a, want[i])
			}
		}
	}
}

func TestManualSynopsis(t *testing.T) {
	got := synopsis(Prog, Usage())
	for _, want := range []string{`\fBbarman\-cloud\-backup\fR [\fB\-V\fR]`, `[\fB\-J\fR\ \fIJOBS\fR]`,
		`[\fB\-v\fR | \fB\-q\fR]`, `[\fB\-\-tags\fR [\fITAGS\fR\ ...] | \fB\-\-tag\fR\ \fITAG\fR]`,
		`\fIdestination_url\fR \fIserver_name\fR`} {
		if !strings.Contains(got, want) {
			t.Errorf("synopsis has no %s:\n%s", want, got)
		}
	}
}

func TestRoffText(t *testing.T) {
	for in, want := range map[string]string{
		".starts with a dot":  `\&.starts with a dot`,
		"'starts with a tick": `\&'starts with a tick`,
		`C:\dir --opt`:        `C:\edir \-\-opt`,
		"two\nlines  here":    "two lines here",
		"mid.dot and it's":    "mid.dot and it's",
	} {
		if got := roffText(in); got != want {
			t.Errorf("roffText(%q) = %q, want %q", in, got, want)
		}
	}
	if got, want := roffArg(`say "hi"`), `"say \(dqhi\(dq"`; got != want {
		t.Errorf("roffArg = %s, want %s", got, want)
	}
}

func TestManualUnknownCommand(t *testing.T) {
	if err := Manual(&bytes.Buffer{}, "barman-cloud-backup-list"); err == nil {
		t.Fatal("a manual for a command we do not have")
	}
}

// The pages render without a warning, and the rendered text has every
// spelling as typed.
func TestManualRenders(t *testing.T) {
	groff, groffErr := exec.LookPath("groff")
	man, manErr := exec.LookPath("man")
	if groffErr != nil && manErr != nil {
		t.Skip("neither groff nor man is installed")
	}
	dir := t.TempDir()
	for _, command := range Commands() {
		path := filepath.Join(dir, command+".1")
		if err := os.WriteFile(path, []byte(manual(t, command)), 0o644); err != nil {
			t.Fatal(err)
		}
		if groffErr == nil {
			var stderr bytes.Buffer
			cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z", path)
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil || stderr.Len() > 0 {
				t.Errorf("groff %s: %v %s", command, err, stderr.String())
			}
		}
		if manErr != nil {
			continue
		}
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(man, "--warnings", "-l", path)
		cmd.Env = append(os.Environ(), "MANWIDTH=80", "MAN_KEEP_FORMATTING=")
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil || stderr.Len() > 0 {
			t.Errorf("man -l %s: %v %s", command, err, stderr.String())
		}
		p, _ := manPageOf(command)
		for _, o := range p.table {
			for _, f := range o.flags {
				typed := regexp.MustCompile(`(^|[\s\[,|])` + regexp.QuoteMeta(f) + `($|[\s\],.|])`)
				if !typed.MatchString(stdout.String()) {
					t.Errorf("%s: %s is not in the rendered page", command, f)
				}
			}
		}
	}
}
