// Command mkdeb builds the Debian package that installs our
// barman-cloud-backup, barman-cloud-restore and barman-cloud-backup-verify
// into /usr/bin, with their man pages, in place of Barman's Python
// scripts of the same names. From a checkout, with dpkg-deb on PATH:
//
//	go run ./cmd/mkdeb -o DIR
//
// It builds the three commands (static, -trimpath, stripped) for -arch (default:
// this machine's), writes their man pages from the option tables
// (conf.Manual), the control file, the maintainer scripts and md5sums,
// runs dpkg-deb, and prints the path of the .deb it wrote into DIR.
//
// Debian's barman-cli-cloud ships barman-cloud-backup and
// barman-cloud-restore, and their man pages, under the same paths: the
// package diverts them (dpkg-divert --rename) to NAME.barman, so Barman's
// other cloud tools stay, Barman's own scripts stay runnable as
// barman-cloud-backup.barman and barman-cloud-restore.barman, and removing
// the package puts them back.
//
// Files carry the time of the last commit, or $SOURCE_DATE_EPOCH, and the
// man pages are gzipped without name or time, so that building a commit
// twice gives the same package.
package main

import (
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pgbackup/barman-cloud-backup/conf"
)

// pkg is the Debian package's name.
const pkg = "barman-cloud-backup-go"

const module = "github.com/pgbackup/barman-cloud-backup"

// diverted are the paths Barman's barman-cli-cloud ships that ours take
// over; barman-cloud-backup-verify is ours only.
var diverted = []string{
	"/usr/bin/barman-cloud-backup",
	"/usr/bin/barman-cloud-restore",
	"/usr/share/man/man1/barman-cloud-backup.1.gz",
	"/usr/share/man/man1/barman-cloud-restore.1.gz",
}

// divertedTo is where Barman's file goes: beside ours, under a name
// that still runs (and, for a page, that man still finds:
// man barman-cloud-backup.barman).
func divertedTo(path string) string {
	if base, ok := strings.CutSuffix(path, ".1.gz"); ok {
		return base + ".barman.1.gz"
	}
	return path + ".barman"
}

// debianArch maps GOARCH to Debian's architecture names.
var debianArch = map[string]string{
	"amd64": "amd64", "arm64": "arm64", "386": "i386", "ppc64le": "ppc64el", "s390x": "s390x", "riscv64": "riscv64",
}

func main() {
	out := flag.String("o", ".", "directory to write the .deb into")
	goarch := flag.String("arch", runtime.GOARCH, "GOARCH to build for")
	maintainer := flag.String("maintainer", "pgbackup <pgbackup@users.noreply.github.com>", "the control file's Maintainer")
	// xz is what Debian ships; the tests ask for none, which saves most
	// of a minute on two cores.
	compress := flag.String("Z", "xz", "dpkg-deb's compression: xz, gzip, zstd or none")
	flag.Parse()
	deb, err := build(*out, *goarch, *maintainer, *compress)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkdeb:", err)
		os.Exit(1)
	}
	fmt.Println(deb)
}

func build(out, goarch, maintainer, compress string) (string, error) {
	arch, ok := debianArch[goarch]
	if !ok {
		return "", fmt.Errorf("no Debian architecture for GOARCH %s", goarch)
	}
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		return "", fmt.Errorf("dpkg-deb is needed to build the package: %w", err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	root, err := os.MkdirTemp("", "mkdeb-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(root)
	epoch := sourceDate()

	for _, command := range conf.Commands() {
		bin := filepath.Join(root, "usr/bin", command)
		// Stripped (-s -w) as Debian strips its binaries: a third of the
		// size, and a panic still names its functions.
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, module+"/cmd/"+command)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("building %s: %w", command, err)
		}
		if err := os.Chmod(bin, 0o755); err != nil { // whatever the umask
			return "", err
		}
		var page bytes.Buffer
		if err := conf.Manual(&page, command); err != nil {
			return "", err
		}
		if err := writeFile(filepath.Join(root, "usr/share/man/man1", command+".1.gz"), gzipped(page.Bytes()), 0o644); err != nil {
			return "", err
		}
	}

	sums, size, err := md5sums(root)
	if err != nil {
		return "", err
	}
	control := fmt.Sprintf(`Package: %s
Version: %s
Architecture: %s
Maintainer: %s
Installed-Size: %d
Section: admin
Priority: optional
Enhances: barman-cli-cloud
Description: Barman's barman-cloud-backup and barman-cloud-restore, in Go
 Drop-in replacements for Barman's barman-cloud-backup and
 barman-cloud-restore, with the same options, exit codes and cloud layout,
 plus barman-cloud-backup-verify, which checks a backup in the cloud end
 to end. Barman's scripts of the same names, from barman-cli-cloud, are
 diverted to barman-cloud-backup.barman and barman-cloud-restore.barman;
 removing this package puts them back.
`, pkg, conf.Version, arch, maintainer, (size+1023)/1024)
	for name, text := range map[string]string{"control": control, "md5sums": sums, "preinst": preinst(), "postrm": postrm()} {
		mode := fs.FileMode(0o644)
		if name == "preinst" || name == "postrm" {
			mode = 0o755
		}
		if err := writeFile(filepath.Join(root, "DEBIAN", name), []byte(text), mode); err != nil {
			return "", err
		}
	}
	if err := stamp(root, epoch); err != nil {
		return "", err
	}

	deb := filepath.Join(out, fmt.Sprintf("%s_%s_%s.deb", pkg, conf.Version, arch))
	cmd := exec.Command("dpkg-deb", "--root-owner-group", "-Z"+compress, "--build", root, deb)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+strconv.FormatInt(epoch.Unix(), 10))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("dpkg-deb: %w", err)
	}
	return deb, nil
}

// preinst diverts Barman's files before ours are unpacked over them. An
// upgrade adds the same diversions again, which dpkg-divert leaves as
// they are.
func preinst() string { return divertScript("install|upgrade", "--add") }

// postrm puts Barman's files back once ours are gone: on remove (purge
// comes after it, with nothing left to do), on an install that failed
// after preinst, and when dpkg finds every file of ours replaced by
// another package's. Not on upgrade or abort-upgrade: the version still
// installed then has the same diversions and needs them.
func postrm() string { return divertScript("remove|abort-install|disappear", "--remove") }

// divertScript is a maintainer script that runs dpkg-divert action
// (--add or --remove) on each diverted path when its first argument is
// one of cases (a shell case pattern).
func divertScript(cases, action string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "#!/bin/sh\nset -e\ncase \"$1\" in\n%s)\n", cases)
	for _, path := range diverted {
		fmt.Fprintf(&b, "\tdpkg-divert --package %s %s --rename --divert %s %s\n", pkg, action, divertedTo(path), path)
	}
	b.WriteString("\t;;\nesac\n")
	return b.String()
}

// gzipped is gzip -9n: no name and no time in the header, so that the
// same page gives the same bytes.
func gzipped(data []byte) []byte {
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression) // the level is valid
	w.Write(data)
	w.Close()
	return b.Bytes()
}

func writeFile(path string, data []byte, mode fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		return err
	}
	return os.Chmod(path, mode) // whatever the umask
}

// md5sums is DEBIAN/md5sums for the files under usr/, and their total
// size, for Installed-Size.
func md5sums(root string) (string, int64, error) {
	var lines []string
	var size int64
	err := filepath.WalkDir(filepath.Join(root, "usr"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		lines = append(lines, fmt.Sprintf("%x  %s\n", md5.Sum(data), rel))
		size += int64(len(data))
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, ""), size, err
}

// stamp gives every file and directory the same time and directories
// the same mode, so that the package does not depend on when or with
// which umask it was built.
func stamp(root string, t time.Time) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if err := os.Chmod(path, 0o755); err != nil {
				return err
			}
		}
		return os.Chtimes(path, t, t)
	})
}

// sourceDate is $SOURCE_DATE_EPOCH, else the last commit's time, else
// now (a build outside a checkout, which cannot be reproduced anyway).
func sourceDate() time.Time {
	text := os.Getenv("SOURCE_DATE_EPOCH")
	if text == "" {
		out, err := exec.Command("git", "log", "-1", "--format=%ct").Output()
		if err != nil {
			return time.Now()
		}
		text = strings.TrimSpace(string(out))
	}
	sec, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return time.Now()
	}
	return time.Unix(sec, 0)
}
