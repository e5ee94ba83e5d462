//go:build integration

package integration

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// readmeCommand is the shell line after a marker in README.md.
func readmeCommand(t *testing.T, marker string) string {
	t.Helper()
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(raw), "<!-- "+marker+" -->\n```sh\n")
	if !ok {
		t.Fatalf("no %q block in README.md", marker)
	}
	cmd, _, _ := strings.Cut(after, "\n```")
	return cmd
}

// README's "try it" command, run as a newcomer would, on a terminal: a
// backup to MinIO with its progress, restored by Barman's tools into a
// cluster that has the source's rows.
func TestReadmeTryIt(t *testing.T) {
	cmd := exec.Command("bash", "-c", readmeCommand(t, "demo-command"))
	cmd.Dir = ".."
	out, err := onTerminal(t, cmd)
	screen := ansi.ReplaceAllString(out, "")
	if err != nil {
		t.Fatalf("%v\n%s", err, screen)
	}
	for _, want := range []string{"copying ", " read, ", "INFO: Summary: backup ", "barman-cloud-restore ",
		"the restored cluster matches the source"} {
		if !strings.Contains(screen, want) {
			t.Errorf("the demo did not show %q:\n%s", want, screen)
		}
	}
}
