package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// The timing tests assert lower bounds only: the proxy must never be
// faster than the network it models, but a busy machine may make anything
// slower.

// serve starts a loopback TCP server running handle for each connection,
// and stops it, closing its connections and waiting for its goroutines, at
// the end of the test.
func serve(t *testing.T, handle func(c *net.TCPConn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				handle(c.(*net.TCPConn))
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func echo(c *net.TCPConn) { io.Copy(c, c) }

// sink reads to EOF, then answers one byte, so a client can time an
// upload to its end.
func sink(c *net.TCPConn) {
	io.Copy(io.Discard, c)
	c.Write([]byte{'k'})
}

// startProxy runs a Proxy in front of target until the test ends, and
// fails the test if Serve does not return once told to stop.
func startProxy(t *testing.T, cfg Config) (addr string, stop func() Stats) {
	t.Helper()
	p, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx) }()
	var once sync.Once
	stop = func() Stats {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Serve: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Serve did not return after shutdown")
			}
		})
		return p.Stats()
	}
	t.Cleanup(func() { stop() })
	return p.Addr().String(), stop
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

func random(t *testing.T, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// upload sends n bytes through the proxy to a sink and returns how long
// it took until the sink had them all.
func upload(t *testing.T, addr string, n int) time.Duration {
	start := time.Now()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Error(err)
		return 0
	}
	defer c.Close()
	if _, err := c.Write(make([]byte, n)); err != nil {
		t.Error(err)
		return 0
	}
	c.(*net.TCPConn).CloseWrite()
	ack := make([]byte, 1)
	if _, err := io.ReadFull(c, ack); err != nil {
		t.Errorf("waiting for the sink's answer: %v", err)
	}
	return time.Since(start)
}

func TestBytesPassIntactBothWays(t *testing.T) {
	up, down := random(t, 8<<20), random(t, 8<<20)
	got := make(chan [32]byte, 1)
	// Both directions at once and each half-closed on its own, as an
	// upload answered while still being sent would be.
	target := serve(t, func(c *net.TCPConn) {
		var wg sync.WaitGroup
		wg.Go(func() {
			c.Write(down)
			c.CloseWrite()
		})
		h := sha256.New()
		io.Copy(h, c)
		got <- [32]byte(h.Sum(nil))
		wg.Wait()
	})
	addr, stop := startProxy(t, Config{Target: target, Listen: "127.0.0.1:0", Latency: 2 * time.Millisecond, Handshake: true})

	c := dial(t, addr)
	var wg sync.WaitGroup
	wg.Go(func() {
		c.Write(up)
		c.CloseWrite()
	})
	h := sha256.New()
	if _, err := io.Copy(h, c); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if [32]byte(h.Sum(nil)) != sha256.Sum256(down) {
		t.Error("bytes from the target arrived changed")
	}
	if <-got != sha256.Sum256(up) {
		t.Error("bytes to the target arrived changed")
	}
	c.Close()
	if s := stop(); s.Up != int64(len(up)) || s.Down != int64(len(down)) || s.Connections != 1 {
		t.Errorf("stats %+v, want 1 connection, %d up, %d down", s, len(up), len(down))
	}
}

// TLS is bytes to the proxy: a client that trusts the server's
// certificate talks to it through the proxy as if directly.
func TestTLSPassesThrough(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.Host)
	}))
	defer srv.Close()
	target := strings.TrimPrefix(srv.URL, "https://")
	addr, _ := startProxy(t, Config{Target: target, Listen: "127.0.0.1:0", Latency: time.Millisecond})

	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer client.CloseIdleConnections()
	for range 2 { // the second reuses the connection
		resp, err := client.Get("https://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := "hello " + addr; string(body) != want {
			t.Errorf("got %q, want %q", body, want)
		}
	}
}

func TestLatencyRoundTrip(t *testing.T) {
	const latency = 50 * time.Millisecond
	target := serve(t, echo)
	for _, handshake := range []bool{false, true} {
		t.Run(fmt.Sprintf("handshake=%v", handshake), func(t *testing.T) {
			addr, _ := startProxy(t, Config{Target: target, Listen: "127.0.0.1:0", Latency: latency, Handshake: handshake})
			start := time.Now()
			c := dial(t, addr)
			buf := make([]byte, 4)
			for i := range 3 {
				if _, err := c.Write([]byte("ping")); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					t.Fatal(err)
				}
				took := time.Since(start)
				want := 2 * latency
				if i == 0 && handshake {
					want = 4 * latency
				}
				if took < want {
					t.Errorf("round trip %d took %v, want at least %v", i, took, want)
				}
				start = time.Now()
			}
		})
	}
}

func TestRateCapsOneConnection(t *testing.T) {
	bps, err := parseRate("4MB")
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := startProxy(t, Config{Target: serve(t, sink), Listen: "127.0.0.1:0", Rate: bps})
	if took := upload(t, addr, 8e6); took < 1900*time.Millisecond {
		t.Errorf("8 MB at 4 MB/s took %v, want at least 1.9 s", took)
	}
}

func TestRateCapsEachConnection(t *testing.T) {
	addr, stop := startProxy(t, Config{Target: serve(t, sink), Listen: "127.0.0.1:0", Rate: 4e6})
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			if took := upload(t, addr, 4e6); took < 900*time.Millisecond {
				t.Errorf("connection %d: 4 MB at 4 MB/s took %v, want at least 0.9 s", i, took)
			}
		})
	}
	wg.Wait()
	if s := stop(); s.Up != 8e6 || s.Connections != 2 {
		t.Errorf("stats %+v, want 2 connections and 8000000 bytes up", s)
	}
}

func TestDialErrorDropsTheClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	addr, stop := startProxy(t, Config{Target: closed, Listen: "127.0.0.1:0"})
	// The reset may come before connect returns or after.
	if c, err := net.Dial("tcp", addr); err == nil {
		_, err = c.Read(make([]byte, 1))
		c.Close()
		if err == nil {
			t.Error("read from a connection to a closed target succeeded")
		}
	}
	if s := stop(); s.DialErrors != 1 {
		t.Errorf("stats %+v, want 1 dial error", s)
	}
}

func TestShutdownEndsEveryGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		target := serve(t, echo)
		addr, stop := startProxy(t, Config{Target: target, Listen: "127.0.0.1:0", Rate: 1e6, Latency: 20 * time.Millisecond, Handshake: true})

		// One connection busy both ways, one idle, one half-closed: each
		// has goroutines blocked somewhere else.
		busy, idle, half := dial(t, addr), dial(t, addr), dial(t, addr)
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				if _, err := busy.Write(make([]byte, 64<<10)); err != nil {
					return
				}
			}
		})
		wg.Go(func() { io.Copy(io.Discard, busy) })
		half.CloseWrite()
		time.Sleep(200 * time.Millisecond)

		stop()
		for _, c := range []*net.TCPConn{busy, idle, half} {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
		}
		if _, err := idle.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("idle connection still open after shutdown: %v", err)
		}
		wg.Wait() // the busy connection's writer and reader have seen it end
		busy.Close()
		idle.Close()
		half.Close()
	}()
	// The servers' cleanups have not run yet; end them too.
	deadline := time.Now().Add(5 * time.Second)
	var now int
	for {
		now = runtime.NumGoroutine()
		if now <= before+1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Only serve's accept loop for the target still runs, until cleanup;
	// the proxy's own (4 per connection plus the accept loop) are gone,
	// and with them its connections to the target and the target's
	// handlers.
	t.Logf("%d goroutines before, %d after", before, now)
	if now > before+1 {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines before, %d after shutdown:\n%s", before, now, buf[:runtime.Stack(buf, true)])
	}
}

func TestRunCommand(t *testing.T) {
	target := serve(t, echo)
	file := filepath.Join(t.TempDir(), "addr")
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-target", target, "-rate", "40MB", "-latency", "20ms", "-addr-file", file}, &stdout, &stderr)
	}()
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(file)
		addr = strings.TrimSpace(string(b))
	}
	if addr == "" {
		cancel()
		t.Fatalf("no address written; stderr: %s", stderr.String())
	}
	want := regexp.QuoteMeta("cloudnet listening on "+addr+" -> "+target+", 40 MB/s per connection, 20ms one way") + "\n"
	if !regexp.MustCompile("^" + want).MatchString(stdout.String()) {
		t.Errorf("stdout %q, want it to start with %q", stdout.String(), want)
	}
	c := dial(t, addr)
	c.Write([]byte("x"))
	io.ReadFull(c, make([]byte, 1))
	c.Close()

	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d, want 0; stderr: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "1 connections served") || !strings.Contains(stdout.String(), "1 bytes up") {
		t.Errorf("no stats on exit: %q", stdout.String())
	}
}

func TestRunRefusesNonLoopbackTarget(t *testing.T) {
	for _, target := range []string{"10.0.0.1:9000", "example.com:443", "0.0.0.0:9000", "[2001:db8::1]:9000", "127.0.0.1", "127.0.0.1:http"} {
		var stdout, stderr syncBuffer
		code := run(context.Background(), []string{"-target", target}, &stdout, &stderr)
		lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
		if code != 2 || len(lines) != 1 || lines[0] == "" || stdout.String() != "" {
			t.Errorf("target %s: exit %d, stdout %q, stderr %q; want exit 2 and one line of error", target, code, stdout.String(), stderr.String())
		}
	}
	for _, target := range []string{"127.0.0.1:9000", "127.8.9.10:9000", "[::1]:9000", "localhost:9000"} {
		if err := checkTarget(target); err != nil {
			t.Errorf("target %s refused: %v", target, err)
		}
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]float64{
		"0": 0, "1000": 1000, "40MB": 40e6, "40MB/s": 40e6, "1.5GB": 1.5e9, "64kB": 64e3, "64KB": 64e3,
		"5MiB": 5 << 20, "2KiB": 2048, "1GiB": 1 << 30, "100B": 100,
	} {
		if got, err := parseRate(in); err != nil || got != want {
			t.Errorf("parseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MB", "40Mb", "40mbit", "-1MB", "fast", "1e3MB"} {
		if got, err := parseRate(in); err == nil {
			t.Errorf("parseRate(%q) = %v, want an error", in, got)
		}
	}
}

func TestQueueHoldsRateTimesLatency(t *testing.T) {
	for _, c := range []struct {
		bps     float64
		latency time.Duration
	}{{40e6, 20 * time.Millisecond}, {160e6, 50 * time.Millisecond}, {1e6, time.Second}} {
		if n := queueLen(c.bps, c.latency); float64(n*chunkSize) < c.bps*c.latency.Seconds() {
			t.Errorf("%v B/s × %v: %d chunks hold less than the product", c.bps, c.latency, n)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for run's goroutines to write while
// the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
