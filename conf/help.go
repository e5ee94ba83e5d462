package conf

import (
	"fmt"
	"strings"
)

// Prog is the program name; it is Barman's, so scripts need no change.
const Prog = "barman-cloud-backup"

const description = "Take a hot base backup of a local PostgreSQL instance and upload it, as tar " +
	"archives, to AWS S3 or an S3-compatible store, Azure Blob Storage, Google Cloud Storage " +
	"or a local directory (file:///path). Barman's barman-cloud-* tools list and restore it."

// withArg spells a flag with the argument it takes, as argparse does.
func (o *option) withArg(flag string) string {
	switch o.kind {
	case flagValue, flagAppend:
		return flag + " " + o.metavarText()
	case flagList:
		return flag + " [" + o.metavarText() + " ...]"
	}
	return flag
}

// usageWords is the option in the usage line: its first spelling.
func (o *option) usageWords() string { return o.withArg(o.flags[0]) }

func (o *option) metavarText() string {
	if len(o.choices) > 0 {
		return "{" + strings.Join(o.choices, ",") + "}"
	}
	return o.metavar
}

// Usage is argparse's usage line for our options.
func Usage() string { return usageOf(Prog, options, "destination_url", "server_name") }

// usageOf is argparse's usage line for a command's options and
// positional arguments.
func usageOf(prog string, table []*option, positionals ...string) string {
	var words []string
	used := map[string]bool{}
	for _, o := range table {
		if o.kind == flagNone {
			continue
		}
		if o.exclusive != "" {
			if used[o.exclusive] {
				continue
			}
			used[o.exclusive] = true
			var alt []string
			for _, x := range table {
				if x.exclusive == o.exclusive && x.kind != flagNone {
					alt = append(alt, x.usageWords())
				}
			}
			words = append(words, "["+strings.Join(alt, " | ")+"]")
			continue
		}
		words = append(words, "["+o.usageWords()+"]")
	}
	words = append(words, positionals...)
	return wrap("usage: "+prog+" ", words, 80)
}

func wrap(lead string, words []string, width int) string {
	var b strings.Builder
	line := lead
	indent := strings.Repeat(" ", len(lead))
	for i, w := range words {
		if i > 0 && len(line)+1+len(w) > width && strings.TrimSpace(line) != "" {
			b.WriteString(strings.TrimRight(line, " ") + "\n")
			line = indent
		} else if i > 0 {
			line += " "
		}
		line += w
	}
	b.WriteString(line + "\n")
	return b.String()
}

func wrapText(text string, indent, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		if line != "" && indent+len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = w
			continue
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return append(lines, line)
}

// backupArguments are barman-cloud-backup's positional arguments, name
// and help, for --help and the manual.
var backupArguments = [][2]string{
	{"destination_url", "URL of the destination, such as an S3 bucket and path: s3://bucket/path/to/folder " +
		"(or an access point's ARN in place of the bucket: s3://arn:aws:s3:REGION:ACCOUNT:accesspoint/NAME/path)"},
	{"server_name", "the name of the server as configured in Barman"},
}

// Help is the --help text, grouped as Barman's.
func Help() string { return helpOf(Usage(), description, options, backupArguments) }

// helpOf is a command's --help text: usage, description, positional
// arguments (name and help), then the options by group.
func helpOf(usage, description string, table []*option, positionals [][2]string) string {
	var b strings.Builder
	b.WriteString(usage)
	b.WriteString("\n" + strings.Join(wrapText(description, 0, 80), "\n") + "\n\n")
	b.WriteString("positional arguments:\n")
	for _, p := range positionals {
		writeItem(&b, p[0], p[1])
	}
	for _, group := range []string{groupMain, groupS3, groupAzure, groupGCS, groupExt} {
		var items strings.Builder
		for _, o := range table {
			g := o.group
			if g == "" {
				g = groupMain
			}
			if g != group || o.kind == flagNone {
				continue
			}
			var flags []string
			for _, f := range o.flags {
				flags = append(flags, o.withArg(f))
			}
			writeItem(&items, strings.Join(flags, ", "), o.help)
		}
		if items.Len() > 0 {
			b.WriteString("\n" + group + ":\n" + items.String())
		}
	}
	return b.String()
}

func writeItem(b *strings.Builder, head, help string) {
	const col = 24
	lines := wrapText(help, col, 80)
	if len(head)+2 >= col {
		fmt.Fprintf(b, "  %s\n", head)
	} else {
		fmt.Fprintf(b, "  %-*s%s\n", col-2, head, lines[0])
		lines = lines[1:]
	}
	for _, l := range lines {
		fmt.Fprintf(b, "%s%s\n", strings.Repeat(" ", col), l)
	}
}
