// Package pg talks to the PostgreSQL server being backed up: it connects
// with libpq semantics, checks the server can be backed up, brackets the
// copy with the non-exclusive backup API, and records what backup.info
// needs. It also holds backup.info itself.
package pg

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rs/zerolog"
)

// MinimalVersion is the oldest server with the non-exclusive backup API
// that reports timelines, as in Barman.
const MinimalVersion = 90600

// ErrConnect marks a failure to reach or log in to PostgreSQL; Barman
// exits 1 for it.
var ErrConnect = errors.New("cannot connect to postgres")

// ConnectError is a failure to reach or log in to PostgreSQL, in Barman's
// words ("Cannot connect to postgres: ..."); errors.Is(err, ErrConnect)
// holds for it.
type ConnectError struct{ Cause string }

func (e *ConnectError) Error() string { return "Cannot connect to postgres: " + e.Cause }

// Is makes a ConnectError match ErrConnect.
func (e *ConnectError) Is(target error) bool { return target == ErrConnect }

// Conn is the single session a backup runs on: the non-exclusive backup
// API ties the backup to it.
type Conn struct {
	conn *pgx.Conn
	// Version is server_version_num.
	Version int
	// onNotice is told of every notice after it is logged.
	onNotice atomic.Pointer[func(severity, message string)]
}

// OnNotice has f told of each notice or warning the server sends from
// now on (pg_backup_stop's "still waiting for all required WAL segments
// to be archived", say), besides the log, for a progress display to
// relay. f runs on the session's goroutine: it must not block.
func (c *Conn) OnNotice(f func(severity, message string)) {
	c.onNotice.Store(&f)
}

// ConnString builds a conninfo from the -h/-p/-U/-d options as Barman
// does: a -d that is itself a conninfo (it contains "=") is used as is.
func ConnString(host, port, user, dbname string) string {
	if dbname != "" && strings.Contains(dbname, "=") {
		return dbname
	}
	var parts []string
	for _, kv := range [][2]string{{"host", host}, {"port", port}, {"user", user}, {"dbname", dbname}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+"="+quoteConnValue(kv[1]))
		}
	}
	return strings.Join(parts, " ")
}

func quoteConnValue(v string) string {
	if !strings.ContainsAny(v, " \t\n\r\v\f'\\") {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// Connect opens the session. Unset settings come from the PG* environment
// and ~/.pgpass, as with libpq.
func Connect(ctx context.Context, conninfo string) (*Conn, error) {
	cfg, err := pgx.ParseConfig(conninfo)
	if err != nil {
		return nil, &ConnectError{Cause: redactConnErr(err)}
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "barman_cloud_backup"
	}
	// The server's warnings matter here: pg_backup_stop says so while it
	// waits for WAL to be archived. Its notices are routine.
	log := zerolog.Ctx(ctx)
	pc := &Conn{}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		level := zerolog.InfoLevel
		if n.Severity == "WARNING" {
			level = zerolog.WarnLevel
		}
		log.WithLevel(level).Msgf("PostgreSQL %s: %s", n.Severity, n.Message)
		if f := pc.onNotice.Load(); f != nil {
			(*f)(n.Severity, n.Message)
		}
	}
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, &ConnectError{Cause: redactConnErr(err)}
	}
	pc.conn = c
	var v string
	if err := c.QueryRow(ctx, "SHOW server_version_num").Scan(&v); err != nil {
		c.Close(context.Background())
		return nil, &ConnectError{Cause: "read server version: " + err.Error()}
	}
	pc.Version, _ = strconv.Atoi(v)
	return pc, nil
}

// redactConnErr makes one line of a connection error: the server's own
// error when there is one (pgx also lists every address and TLS attempt),
// with anything after "password=" that a parse error might echo back
// from the conninfo masked.
func redactConnErr(err error) string {
	msg := err.Error()
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		msg = fmt.Sprintf("%s: %s (SQLSTATE %s)", pgErr.Severity, pgErr.Message, pgErr.Code)
	}
	msg = strings.Join(strings.Fields(msg), " ")
	if i := strings.Index(msg, "password="); i >= 0 {
		end := strings.IndexAny(msg[i:], " '\"")
		if end < 0 {
			end = len(msg) - i
		}
		msg = msg[:i] + "password=xxxxx" + msg[i+end:]
	}
	return msg
}

// Close ends the session; PostgreSQL aborts a backup still open on it.
func (c *Conn) Close() {
	if c != nil && c.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.conn.Close(ctx)
	}
}

// MajorVersion is the major version as PostgreSQL spells it in
// tablespace directory names ("15", "9.6").
func (c *Conn) MajorVersion() string {
	if c.Version >= 100000 {
		return strconv.Itoa(c.Version / 10000)
	}
	return fmt.Sprintf("%d.%d", c.Version/10000, c.Version/100%100)
}

// Check verifies the server can take a non-exclusive base backup for this
// user before anything is started.
func (c *Conn) Check(ctx context.Context) error {
	if c.Version < MinimalVersion {
		return fmt.Errorf("unsupported PostgreSQL version %s, expecting 9.6 or above", c.MajorVersion())
	}
	var walLevel string
	if err := c.conn.QueryRow(ctx, "SHOW wal_level").Scan(&walLevel); err != nil {
		return fmt.Errorf("read wal_level: %w", err)
	}
	if walLevel == "minimal" {
		return errors.New("wal_level is 'minimal': set it to 'replica' or 'logical' to take an online backup")
	}
	fn := "pg_backup_start(text, boolean)"
	if c.Version < 150000 {
		fn = "pg_start_backup(text, boolean, boolean)"
	}
	var super, canBackup, canRead bool
	err := c.conn.QueryRow(ctx, `SELECT rolsuper,
		has_function_privilege(current_user, $1, 'EXECUTE'),
		pg_has_role(current_user, 'pg_read_all_settings', 'USAGE')
		FROM pg_roles WHERE rolname = current_user`, fn).Scan(&super, &canBackup, &canRead)
	if err != nil {
		return fmt.Errorf("check privileges: %w", err)
	}
	if !super && !canBackup {
		return fmt.Errorf("user lacks the privilege to execute %s (grant it, or use a superuser)", fn)
	}
	if !super && !canRead {
		return errors.New("user cannot read the server's file locations (grant pg_read_all_settings, or use a superuser)")
	}
	var archiveMode string
	if err := c.conn.QueryRow(ctx, "SHOW archive_mode").Scan(&archiveMode); err != nil {
		return fmt.Errorf("read archive_mode: %w", err)
	}
	if archiveMode == "off" {
		zerolog.Ctx(ctx).Warn().Msg("WAL archiving is off (archive_mode): this backup can only be restored with its WAL copied by other means")
	}
	return nil
}

// SystemID returns the system identifier of the cluster.
func (c *Conn) SystemID(ctx context.Context) (string, error) {
	var id string
	err := c.conn.QueryRow(ctx, "SELECT system_identifier::text FROM pg_control_system()").Scan(&id)
	if err != nil {
		return "", fmt.Errorf("read system identifier: %w", err)
	}
	return id, nil
}

// Settings reads data_directory, the configuration file locations,
// data_checksums ("on" or "off") and wal_segment_size (in bytes).
func (c *Conn) Settings(ctx context.Context) (map[string]string, int64, error) {
	rows, err := c.conn.Query(ctx, `SELECT name, setting FROM pg_settings
		WHERE name IN ('data_directory', 'config_file', 'hba_file', 'ident_file', 'data_checksums')`)
	if err != nil {
		return nil, 0, fmt.Errorf("read settings: %w", err)
	}
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, 0, err
		}
		out[k] = v
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("read settings: %w", err)
	}
	var seg int64
	err = c.conn.QueryRow(ctx, `SELECT setting::bigint * CASE unit
		WHEN '8kB' THEN 8192 WHEN 'MB' THEN 1048576 ELSE 1 END
		FROM pg_settings WHERE name = 'wal_segment_size'`).Scan(&seg)
	if err != nil {
		return nil, 0, fmt.Errorf("read wal_segment_size: %w", err)
	}
	return out, seg, nil
}

// IncludedFiles lists configuration files other than config_file that
// settings come from (include directives, postgresql.auto.conf).
func (c *Conn) IncludedFiles(ctx context.Context) ([]string, error) {
	rows, err := c.conn.Query(ctx, `SELECT DISTINCT sourcefile FROM pg_settings
		WHERE sourcefile IS NOT NULL AND sourcefile NOT IN
		(SELECT setting FROM pg_settings WHERE name = 'config_file') ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("read included files: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Tablespaces lists user tablespaces with their locations.
func (c *Conn) Tablespaces(ctx context.Context) ([]Tablespace, error) {
	rows, err := c.conn.Query(ctx, `SELECT spcname::text, oid::bigint, pg_tablespace_location(oid)
		FROM pg_tablespace WHERE pg_tablespace_location(oid) != '' ORDER BY oid`)
	if err != nil {
		return nil, fmt.Errorf("read tablespaces: %w", err)
	}
	var out []Tablespace
	for rows.Next() {
		var t Tablespace
		var oid int64
		if err := rows.Scan(&t.Name, &oid, &t.Location); err != nil {
			return nil, err
		}
		t.OID = uint32(oid)
		out = append(out, t)
	}
	return out, rows.Err()
}

// Position is a point of the backup as PostgreSQL reports it.
type Position struct {
	LSN      string
	Timeline int64
	Time     time.Time
	// Label is backup_label's content (stop only).
	Label string
}

// nowSQL yields now() in the session's time zone with its UTC offset, so
// times print as psycopg2's datetimes do in Barman.
const nowSQL = `to_char(now(), 'YYYY-MM-DD HH24:MI:SS.US'), extract(timezone from now())::int`

func parseNow(s string, offset int) (time.Time, error) {
	return time.ParseInLocation("2006-01-02 15:04:05.000000", s, time.FixedZone("", offset))
}

// sessionLimit is a server setting that can end the backup's session, or
// a statement on it, before the backup is over. The non-exclusive backup
// API ties the backup to this one session: lose it and the backup is lost.
type sessionLimit struct {
	name string
	// since is the first server_version_num that has the setting.
	since int
	// throughStop keeps the limit off until pg_backup_stop has returned.
	throughStop bool
}

// sessionLimits are turned off (0) on the backup's session before
// pg_backup_start and reset afterwards, so each gets back the value the
// session had: from postgresql.conf, ALTER SYSTEM, ALTER ROLE or
// DATABASE ... SET, or the conninfo's options (RESET returns to the value
// the session started with, and this session never SETs them otherwise).
//
// Barman 3.5+ turns off idle_session_timeout only, and resets it just
// before pg_backup_stop: while the files are copied the session sits idle,
// which is all that setting (and idle_in_transaction_session_timeout, in
// case a transaction is ever open) watches. statement_timeout must stay
// off through the stop, though: pg_backup_start waits for a checkpoint,
// spread over minutes without --immediate-checkpoint, and pg_backup_stop
// waits until the last WAL segment of the backup is archived, which takes
// as long as the archive_command does; a statement_timeout shorter than
// either would cancel the backup at its very end. lock_timeout goes with
// it: the backup functions take no heavyweight lock today, but a timeout
// on one would fail the backup just the same.
var sessionLimits = []sessionLimit{
	{name: "statement_timeout", throughStop: true},
	{name: "lock_timeout", throughStop: true},
	{name: "idle_in_transaction_session_timeout", since: 90600},
	{name: "idle_session_timeout", since: 140000},
}

// limitNames lists the session limits a server of version has that are
// reset before the stop (throughStop false) or after it (true).
func limitNames(version int, throughStop bool) []string {
	var names []string
	for _, l := range sessionLimits {
		if version >= l.since && l.throughStop == throughStop {
			names = append(names, l.name)
		}
	}
	return names
}

// suspendLimits turns every session limit off until resetLimits.
func (c *Conn) suspendLimits(ctx context.Context) error {
	names := append(limitNames(c.Version, false), limitNames(c.Version, true)...)
	was, err := c.limits(ctx, names)
	if err != nil {
		return err
	}
	_, err = c.conn.Exec(ctx, "SELECT set_config(name, '0', false) FROM unnest($1::text[]) AS name", names)
	if err != nil {
		return fmt.Errorf("turn off session limits: %w", err)
	}
	zerolog.Ctx(ctx).Debug().Msgf("Session limits off until the backup stops (they were %s)", was)
	return nil
}

// limits reads the session's values of names, as name=value pairs.
func (c *Conn) limits(ctx context.Context, names []string) (string, error) {
	var s string
	err := c.conn.QueryRow(ctx, `SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY i)
		FROM unnest($1::text[]) WITH ORDINALITY AS s(name, i)`, names).Scan(&s)
	if err != nil {
		return "", fmt.Errorf("read session limits: %w", err)
	}
	return s, nil
}

// resetLimits gives the session back its own value of the limits reset
// before the stop or after it, and logs what they are now.
func (c *Conn) resetLimits(ctx context.Context, throughStop bool) error {
	names := limitNames(c.Version, throughStop)
	for _, name := range names {
		// name is one of sessionLimits' constants, never input.
		if _, err := c.conn.Exec(ctx, "RESET "+name); err != nil {
			return fmt.Errorf("reset %s: %w", name, err)
		}
	}
	now, err := c.limits(ctx, names)
	if err != nil {
		return err
	}
	zerolog.Ctx(ctx).Debug().Msgf("Session limits reset to %s", now)
	return nil
}

// StartBackup starts a non-exclusive backup; fast asks for an immediate
// checkpoint. The session's limits are off from here until StopBackup.
func (c *Conn) StartBackup(ctx context.Context, label string, fast bool) (*Position, error) {
	if err := c.suspendLimits(ctx); err != nil {
		return nil, err
	}
	call := "pg_backup_start($1, $2)"
	if c.Version < 150000 {
		call = "pg_start_backup($1, $2, false)"
	}
	var p Position
	var now string
	var off int
	err := c.conn.QueryRow(ctx, `SELECT location::text,
		(SELECT timeline_id FROM pg_control_checkpoint())::bigint, `+nowSQL+`
		FROM `+call+` AS location`, label, fast).Scan(&p.LSN, &p.Timeline, &now, &off)
	if err != nil {
		return nil, fmt.Errorf("start backup: %w", err)
	}
	if p.Time, err = parseNow(now, off); err != nil {
		return nil, err
	}
	return &p, nil
}

// StopBackup ends the backup, waiting (as Barman does) until PostgreSQL
// has archived the WAL the backup needs, and gives the session back its
// own limits: the idle ones before the stop, the others after it.
func (c *Conn) StopBackup(ctx context.Context) (*Position, error) {
	if err := c.resetLimits(ctx, false); err != nil {
		return nil, err
	}
	call := "pg_backup_stop()"
	if c.Version < 150000 {
		call = "pg_stop_backup(false)"
	}
	var p Position
	var now string
	var off int
	err := c.conn.QueryRow(ctx, `SELECT end_row.lsn::text,
		(SELECT CASE WHEN pg_is_in_recovery() THEN min_recovery_end_timeline ELSE timeline_id END
		 FROM pg_control_checkpoint(), pg_control_recovery())::bigint,
		end_row.labelfile, `+nowSQL+` FROM `+call+` AS end_row`).Scan(&p.LSN, &p.Timeline, &p.Label, &now, &off)
	if err != nil {
		return nil, fmt.Errorf("stop backup: %w", err)
	}
	if p.Time, err = parseNow(now, off); err != nil {
		return nil, err
	}
	// The backup is complete: a session that fails here changes nothing.
	if err := c.resetLimits(ctx, true); err != nil {
		zerolog.Ctx(ctx).Warn().Msgf("%v", err)
	}
	return &p, nil
}

// AbortBackup ends backup mode after a failure without waiting for WAL
// archiving; errors are returned for logging only.
func (c *Conn) AbortBackup(ctx context.Context) error {
	call := "SELECT pg_backup_stop(false)"
	if c.Version < 150000 {
		call = "SELECT pg_stop_backup(false, false)"
	}
	_, err := c.conn.Exec(ctx, call)
	return err
}

// InRecovery tells whether the server is a standby.
func (c *Conn) InRecovery(ctx context.Context) (bool, error) {
	var r bool
	err := c.conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&r)
	return r, err
}

// CreateRestorePoint creates a named restore point.
func (c *Conn) CreateRestorePoint(ctx context.Context, name string) error {
	_, err := c.conn.Exec(ctx, "SELECT pg_create_restore_point($1)", name)
	return err
}

// ParseLSN parses PostgreSQL's "X/Y" notation.
func ParseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("invalid LSN %q", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("invalid LSN %q", s)
	}
	return h<<32 | l, nil
}

// WALFileName returns the WAL segment file holding lsn on timeline and
// the offset within it, as Barman computes begin_wal and end_wal.
func WALFileName(lsn uint64, timeline, segSize int64) (string, int64) {
	log := lsn >> 32
	seg := (lsn & 0xFFFFFFFF) / uint64(segSize)
	off := int64(lsn & uint64(segSize-1))
	return fmt.Sprintf("%08X%08X%08X", timeline, log, seg), off
}
