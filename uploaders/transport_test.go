package uploaders

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// servers starts handler over HTTP/1.1 and over HTTP/2 (TLS), each with a
// client that uses our transport with timeout.
func servers(t *testing.T, timeout time.Duration, handler http.HandlerFunc) map[string]func() (*http.Client, string) {
	t.Helper()
	h1 := httptest.NewServer(handler)
	h2 := httptest.NewUnstartedServer(handler)
	h2.EnableHTTP2 = true
	h2.StartTLS()
	t.Cleanup(func() {
		h1.CloseClientConnections()
		h2.CloseClientConnections()
		h1.Close()
		h2.Close()
	})
	client := func(srv *httptest.Server) func() (*http.Client, string) {
		return func() (*http.Client, string) {
			tr := newTransport(timeout, 1)
			if srv.TLS != nil {
				tr.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
			}
			t.Cleanup(tr.CloseIdleConnections)
			return &http.Client{Transport: withReadTimeout(tr, timeout)}, srv.URL
		}
	}
	return map[string]func() (*http.Client, string){"http1": client(h1), "http2": client(h2)}
}

// wantReadTimeout checks err is our time-out, and says so in one line.
func wantReadTimeout(t *testing.T, err error, timeout time.Duration) {
	t.Helper()
	var rt *ReadTimeoutError
	if !errors.As(err, &rt) || rt.ReadTimeout != timeout {
		t.Fatalf("err = %v (%T), want a *ReadTimeoutError", err, err)
	}
	if !Transient(err) {
		t.Errorf("a read time-out is not transient: %v", err)
	}
	if want := "no answer from the store within --read-timeout"; !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Errorf("message %q, want one line with %q", err, want)
	}
}

// An answer whose headers do not come within the timeout fails with a
// ReadTimeoutError, after the timeout and not long after.
func TestTransportHeadersTimeOut(t *testing.T) {
	const timeout = 300 * time.Millisecond
	for name, open := range servers(t, timeout, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // until the client gives up
	}) {
		t.Run(name, func(t *testing.T) {
			c, url := open()
			start := time.Now()
			resp, err := c.Get(url)
			if err == nil {
				resp.Body.Close()
			}
			wantReadTimeout(t, err, timeout)
			if d := time.Since(start); d < timeout || d > timeout+10*time.Second {
				t.Errorf("gave up after %s, timeout %s", d, timeout)
			}
		})
	}
}

// A body that stops coming fails the read with a ReadTimeoutError: the
// transport's ResponseHeaderTimeout stops at the headers.
func TestTransportBodyTimesOut(t *testing.T) {
	const timeout = 300 * time.Millisecond
	for name, open := range servers(t, timeout, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<ListBucketResult>"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}) {
		t.Run(name, func(t *testing.T) {
			c, url := open()
			resp, err := c.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if string(b) != "<ListBucketResult>" {
				t.Errorf("read %q before the stall", b)
			}
			wantReadTimeout(t, err, timeout)
		})
	}
}

// Slow but steady: an answer that comes later than a fifth of the
// timeout, a body whose bytes come every fifth of it for twice the
// timeout in all, and a caller that waits three times the timeout between
// two reads all succeed: the timeout bounds each wait for the store, not
// the whole exchange.
func TestTransportSlowButSteadySucceeds(t *testing.T) {
	const timeout = time.Second
	for name, open := range servers(t, timeout, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(timeout / 5)
		w.WriteHeader(http.StatusOK)
		for range 10 {
			w.Write([]byte("x"))
			w.(http.Flusher).Flush()
			time.Sleep(timeout / 5)
		}
	}) {
		t.Run(name, func(t *testing.T) {
			c, url := open()
			resp, err := c.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			first := make([]byte, 1)
			if _, err := io.ReadFull(resp.Body, first); err != nil {
				t.Fatal(err)
			}
			time.Sleep(3 * timeout)
			rest, err := io.ReadAll(resp.Body)
			if err != nil || len(rest) != 9 {
				t.Fatalf("read %q: %v", rest, err)
			}
		})
	}
}

// A server that stops reading a request body fails the write with a
// ReadTimeoutError: nothing else bounds an upload in progress.
func TestTransportWriteTimesOut(t *testing.T) {
	const timeout = 300 * time.Millisecond
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // accepted, never read
		}
	}()
	tr := newTransport(timeout, 1)
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: withReadTimeout(tr, timeout)}
	// Far more than the socket buffers of both ends hold.
	req, _ := http.NewRequest(http.MethodPut, "http://"+l.Addr().String()+"/part", io.LimitReader(zeros{}, 256<<20))
	resp, err := c.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	wantReadTimeout(t, err, timeout)
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// The caller's own deadline or cancellation is no read time-out.
func TestTransportCallerDeadlineIsNotReadTimeout(t *testing.T) {
	for name, open := range servers(t, time.Minute, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}) {
		t.Run(name, func(t *testing.T) {
			c, url := open()
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			resp, err := c.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			var rt *ReadTimeoutError
			if err == nil || errors.As(err, &rt) {
				t.Fatalf("err = %v, want the caller's deadline", err)
			}
		})
	}
}

// The message names the option and its value, and nothing of the request.
func TestReadTimeoutErrorMessage(t *testing.T) {
	err := &ReadTimeoutError{ReadTimeout: 60 * time.Second, Err: errors.New(`Put "https://a/b?sig=SECRET": net/http: timeout awaiting response headers`)}
	if got, want := err.Error(), "no answer from the store within --read-timeout (60 s)"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
}
