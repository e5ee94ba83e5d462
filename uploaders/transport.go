package uploaders

import (
	"context"
	"net"
	"net/http"
	"time"
)

// newTransport is the HTTP transport of the S3 and Azure clients. Besides
// the wait for an answer (timeout, Barman's --read-timeout), it bounds each
// write: a server that stops reading a part mid-way would otherwise hold a
// worker forever, as nothing else times out a request body.
func newTransport(timeout time.Duration, jobs int) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = timeout
	tr.MaxIdleConnsPerHost = max(jobs, 2) * 2
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &writeDeadlineConn{Conn: c, timeout: timeout}, nil
	}
	return tr
}

// writeDeadlineConn fails a write that makes no progress for timeout.
type writeDeadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (c *writeDeadlineConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}
