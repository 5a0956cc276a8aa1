package loadgen

import (
	"net"
	"net/http"
	"time"
)

// NewClient returns an HTTP/1.1 client that keeps up to conns connections
// per host alive, so that a run reuses connections instead of paying a TCP
// handshake per request, and gives up on a request after timeout. It ignores
// proxy settings from the environment: load goes only where it is aimed.
func NewClient(conns int, timeout time.Duration) *http.Client {
	t := &http.Transport{
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          0, // no global cap; MaxIdleConnsPerHost bounds it
		MaxIdleConnsPerHost:   conns,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
		ExpectContinueTimeout: 0,
	}
	return &http.Client{Transport: t, Timeout: timeout}
}
