// Command cloudnet is a TCP proxy that makes a local object store (MinIO
// on loopback) look as if it were reached over a real network, so that
// benchmarks of backup tools measure what latency and a bandwidth cap do
// to them rather than what loopback lets them get away with.
//
//	cloudnet -listen 127.0.0.1:0 -target 127.0.0.1:9000 -rate 40MB -latency 20ms -addr-file addr
//
// It works on bytes, never on HTTP, so TLS passes through it untouched:
// clients keep their endpoint's host name, certificates and signatures,
// and only the port changes to the proxy's.
//
// The model, per connection: each direction is a link of its own, capped
// at -rate bytes per second and adding -latency one way, with enough
// buffering for a full rate×latency product in flight (an ideal TCP
// window: no slow start, no loss). A new connection's first bytes also
// wait one round trip, the TCP handshake a real network would charge
// (-handshake=false turns that off).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"
)

const (
	// chunkSize bounds one read, so one chunk never needs more tokens
	// than the bucket holds and pacing stays smooth.
	chunkSize = 32 << 10
	// burst is the token bucket's depth: small, so that the cap holds
	// over windows of tens of milliseconds, not just on average.
	burst = 64 << 10
	// queueSlack and queueMax bound the chunks queued per direction:
	// the slack covers scheduling jitter when rate×latency is small, the
	// cap keeps memory bounded (32 MiB per direction) when it is not.
	queueSlack = 16
	queueMax   = 1024
	// statsEvery is how often -v prints the counters.
	statsEvery = 10 * time.Second
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole command, returning its exit status, so tests can drive
// it without a process. It returns only after every goroutine it started
// has ended.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cloudnet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on; port 0 picks a free one")
	target := fs.String("target", "", "the object store's address, host:port on loopback")
	rateFlag := fs.String("rate", "0", "cap per connection and per direction, bytes per second: 40MB, 5MiB, 1.5GB; 0 is uncapped")
	latency := fs.Duration("latency", 0, "delay added one way (a round trip gains twice it)")
	handshake := fs.Bool("handshake", true, "delay each connection's first bytes by one round trip, as TCP's handshake does")
	addrFile := fs.String("addr-file", "", "write the listening address to this file once listening")
	verbose := fs.Bool("v", false, "print the counters every 10 s")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "cloudnet: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	bps, err := parseRate(*rateFlag)
	if err != nil {
		fmt.Fprintf(stderr, "cloudnet: -rate: %v\n", err)
		return 2
	}
	if *latency < 0 {
		fmt.Fprintln(stderr, "cloudnet: -latency must not be negative")
		return 2
	}
	if err := checkTarget(*target); err != nil {
		fmt.Fprintf(stderr, "cloudnet: -target: %v\n", err)
		return 2
	}

	p, err := Listen(Config{Listen: *listen, Target: *target, Rate: bps, Latency: *latency, Handshake: *handshake})
	if err != nil {
		fmt.Fprintf(stderr, "cloudnet: %v\n", err)
		return 1
	}
	addr := p.Addr().String()
	fmt.Fprintf(stdout, "cloudnet listening on %s -> %s, %s per connection, %s one way\n", addr, *target, formatRate(bps), *latency)
	if *addrFile != "" {
		if err := writeAtomic(*addrFile, addr+"\n"); err != nil {
			p.Close()
			fmt.Fprintf(stderr, "cloudnet: -addr-file: %v\n", err)
			return 1
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if *verbose {
		wg.Go(func() {
			t := time.NewTicker(statsEvery)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					fmt.Fprintln(stdout, p.Stats())
				case <-ctx.Done():
					return
				}
			}
		})
	}
	p.Logf = func(format string, a ...any) { fmt.Fprintf(stderr, "cloudnet: "+format+"\n", a...) }
	err = p.Serve(ctx)
	cancel()
	wg.Wait()
	fmt.Fprintln(stdout, p.Stats())
	if err != nil {
		fmt.Fprintf(stderr, "cloudnet: %v\n", err)
		return 1
	}
	return 0
}

// Config is what shapes a Proxy's links.
type Config struct {
	Listen string // address to listen on
	Target string // address each connection is relayed to
	// Rate caps each direction of each connection, in bytes per second;
	// 0 is uncapped.
	Rate float64
	// Latency is added to every byte one way.
	Latency time.Duration
	// Handshake makes a connection's first bytes wait one round trip
	// (twice Latency) more, as the TCP handshake costs on a real network
	// but costs nothing here, where the client connects to the proxy on
	// loopback.
	Handshake bool
}

// Stats counts what a Proxy has relayed.
type Stats struct {
	Connections int64 // accepted
	Active      int64 // not yet ended
	DialErrors  int64 // connections dropped because the target refused them
	Up          int64 // bytes delivered to the target
	Down        int64 // bytes delivered to clients
}

func (s Stats) String() string {
	return fmt.Sprintf("cloudnet: %d connections served (%d active, %d dial errors), %d bytes up (client -> target), %d bytes down (target -> client)",
		s.Connections, s.Active, s.DialErrors, s.Up, s.Down)
}

// Proxy relays connections accepted on its listener to Config.Target
// through simulated links.
type Proxy struct {
	// Logf reports what a benchmark operator should see (the target
	// refusing connections); nil is silent.
	Logf func(format string, a ...any)

	cfg   Config
	ln    *net.TCPListener
	queue int

	conns, active, dialErrors, up, down atomic.Int64
}

// Listen opens the proxy's listener; Serve then relays.
func Listen(cfg Config) (*Proxy, error) {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, err
	}
	return &Proxy{cfg: cfg, ln: ln.(*net.TCPListener), queue: queueLen(cfg.Rate, cfg.Latency)}, nil
}

// Addr is the address the proxy listens on.
func (p *Proxy) Addr() net.Addr { return p.ln.Addr() }

// Close closes the listener, for a Proxy that will not Serve.
func (p *Proxy) Close() error { return p.ln.Close() }

// Stats returns the counters so far.
func (p *Proxy) Stats() Stats {
	return Stats{Connections: p.conns.Load(), Active: p.active.Load(), DialErrors: p.dialErrors.Load(), Up: p.up.Load(), Down: p.down.Load()}
}

// Serve accepts and relays connections until ctx ends, then closes the
// listener and every connection, and returns once all of their goroutines
// have ended. It returns nil on shutdown.
func (p *Proxy) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// Deferred in this order so connections are told to end before they
	// are waited for.
	defer wg.Wait()
	defer cancel()
	stop := context.AfterFunc(ctx, func() { p.ln.Close() })
	defer stop()
	defer p.ln.Close()

	for {
		c, err := p.ln.AcceptTCP()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// Running out of descriptors under a benchmark's burst of
			// connections passes; ending the proxy would spoil the run.
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ECONNABORTED) {
				select {
				case <-time.After(50 * time.Millisecond):
					continue
				case <-ctx.Done():
					return nil
				}
			}
			return err
		}
		p.conns.Add(1)
		p.active.Add(1)
		wg.Go(func() {
			defer p.active.Add(-1)
			p.relay(ctx, c)
		})
	}
}

func (p *Proxy) logf(format string, a ...any) {
	if p.Logf != nil {
		p.Logf(format, a...)
	}
}

// relay runs one connection until both directions have ended or either
// failed.
func (p *Proxy) relay(ctx context.Context, client *net.TCPConn) {
	accepted := time.Now()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", p.cfg.Target)
	if err != nil {
		if ctx.Err() == nil {
			p.dialErrors.Add(1)
			p.logf("%v", err)
		}
		// A reset is the nearest a client that has already connected
		// can get to "connection refused".
		client.SetLinger(0)
		client.Close()
		return
	}
	server := c.(*net.TCPConn)

	g, gctx := errgroup.WithContext(ctx)
	// Closing both sockets is what unblocks a Read or a Write when the
	// other direction fails or the proxy shuts down; errgroup's context
	// also ends when Wait returns, which closes them after a clean end.
	context.AfterFunc(gctx, func() {
		client.Close()
		server.Close()
	})
	notBefore := accepted
	if p.cfg.Handshake {
		notBefore = accepted.Add(2 * p.cfg.Latency)
	}
	p.link(gctx, g, client, server, &p.up, notBefore)
	p.link(gctx, g, server, client, &p.down, notBefore)
	g.Wait()
}

// chunk is one read from a link's source. A chunk with err set carries no
// data and marks the end of the stream: io.EOF for a half-close, anything
// else for an abort; it travels the link like data, so the far side sees
// the end after the bytes before it, and after the latency.
type chunk struct {
	buf *[]byte
	n   int
	at  time.Time // when it left the sender, as far as the link knows
	err error
}

var bufs = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// link starts the two goroutines of one direction: a reader that stamps
// chunks as they arrive, and a writer that delivers each no earlier than
// its stamp plus the latency, paced by the token bucket. Separating them
// lets bytes be in flight while earlier ones wait, as on a real link.
func (p *Proxy) link(ctx context.Context, g *errgroup.Group, src, dst *net.TCPConn, delivered *atomic.Int64, notBefore time.Time) {
	q := make(chan chunk, p.queue)
	g.Go(func() error { return readLink(ctx, src, q) })
	var lim *rate.Limiter
	if p.cfg.Rate > 0 {
		lim = rate.NewLimiter(rate.Limit(p.cfg.Rate), burst)
	}
	g.Go(func() error { return writeLink(ctx, dst, q, lim, p.cfg.Latency, notBefore, delivered) })
}

func readLink(ctx context.Context, src *net.TCPConn, q chan<- chunk) error {
	send := func(c chunk) bool {
		select {
		case q <- c:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		bp := bufs.Get().(*[]byte)
		n, err := src.Read(*bp)
		at := time.Now()
		if n > 0 {
			if !send(chunk{buf: bp, n: n, at: at}) {
				bufs.Put(bp)
				return ctx.Err()
			}
		} else {
			bufs.Put(bp)
		}
		if err != nil {
			if ctx.Err() != nil {
				// Our own close, not the peer's doing.
				return ctx.Err()
			}
			if !send(chunk{at: at, err: err}) {
				return ctx.Err()
			}
			return nil
		}
	}
}

func writeLink(ctx context.Context, dst *net.TCPConn, q <-chan chunk, lim *rate.Limiter, latency time.Duration, notBefore time.Time, delivered *atomic.Int64) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var c chunk
		select {
		case c = <-q:
		case <-ctx.Done():
			return ctx.Err()
		}
		due := c.at
		if due.Before(notBefore) {
			due = notBefore
		}
		due = due.Add(latency)
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if c.err != nil {
			if errors.Is(c.err, io.EOF) {
				return dst.CloseWrite()
			}
			// Pass the abort on as one: a reset, not an orderly close
			// the far side could mistake for a complete stream.
			dst.SetLinger(0)
			return c.err
		}
		if lim != nil {
			if err := lim.WaitN(ctx, c.n); err != nil {
				return err
			}
		}
		_, err := dst.Write((*c.buf)[:c.n])
		bufs.Put(c.buf)
		if err != nil {
			return err
		}
		delivered.Add(int64(c.n))
	}
}

// queueLen sizes a direction's queue so that a full rate×latency product
// fits, or latency alone would hold throughput under the cap. It counts
// twice the product in chunks because reads that find less than a chunk
// waiting fill chunks only partly.
func queueLen(bps float64, latency time.Duration) int {
	if latency <= 0 {
		return queueSlack
	}
	if bps <= 0 {
		// Uncapped: in flight is bounded only by memory.
		return queueMax
	}
	n := 2*math.Ceil(bps*latency.Seconds()/chunkSize) + queueSlack
	return int(min(n, queueMax))
}

var units = map[string]float64{
	"": 1, "B": 1,
	"kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30,
}

// parseRate reads a rate in bytes per second: a number with an optional
// unit of bytes (kB, MB, GB are powers of 1000; KiB, MiB, GiB of 1024) and
// an optional "/s". Units in bits are refused rather than guessed at.
func parseRate(s string) (float64, error) {
	t := strings.TrimSuffix(strings.TrimSpace(s), "/s")
	i := strings.IndexFunc(t, func(r rune) bool { return !(r >= '0' && r <= '9' || r == '.') })
	if i < 0 {
		i = len(t)
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a rate: want bytes per second such as 40MB or 5MiB", s)
	}
	m, ok := units[unit]
	if !ok {
		return 0, fmt.Errorf("%q: unknown unit %q: use B, kB, MB, GB, KiB, MiB or GiB (bytes, not bits)", s, unit)
	}
	return v * m, nil
}

func formatRate(bps float64) string {
	switch {
	case bps <= 0:
		return "uncapped"
	case bps >= 1e9:
		return fmt.Sprintf("%.4g GB/s", bps/1e9)
	case bps >= 1e6:
		return fmt.Sprintf("%.4g MB/s", bps/1e6)
	case bps >= 1e3:
		return fmt.Sprintf("%.4g kB/s", bps/1e3)
	}
	return fmt.Sprintf("%.4g B/s", bps)
}

// checkTarget refuses any target off this machine: the proxy is for
// benchmarks against a local store, and must never become a relay to
// somewhere else.
func checkTarget(target string) error {
	if target == "" {
		return errors.New("required, host:port of the object store on loopback")
	}
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return err
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a port number", target, port)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q: host %q is not a loopback address (127.0.0.0/8, ::1 or localhost)", target, host)
	}
	return nil
}

// writeAtomic writes through a temporary file and a rename, so a script
// polling for the file never reads it half written.
func writeAtomic(name, content string) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return err
	}
	_, err = f.WriteString(content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
