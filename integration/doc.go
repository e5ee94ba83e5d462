// Package integration holds end-to-end tests against real servers: a
// PostgreSQL 15 cluster made with initdb, a MinIO server, and Barman's
// own barman-cloud-* tools, which list, restore and replay what our
// binary wrote; our barman-cloud-restore restores the same backups into
// the same files as Barman's, and clusters that start. They run with `go test -tags integration ./integration/`
// as root (PostgreSQL itself runs as the postgres user).
package integration
