package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// record collects what one side of the mTLS pair saw. Serials are hex; the test asserts that
// several distinct ones appear on each side, i.e. that both workloads picked up rotated SVIDs
// from the agent without a single failed handshake.
type record struct {
	mu            sync.Mutex
	start         time.Time
	ok            int
	failures      int
	errors        []string
	peerSerials   map[string]int
	ownSerials    map[string]int
	sourceUpdates int
	peerNotAfter  map[string]string
	firstSeen     map[string]string
}

func newRecord() *record {
	return &record{
		start: time.Now(), peerSerials: map[string]int{}, ownSerials: map[string]int{},
		peerNotAfter: map[string]string{}, firstSeen: map[string]string{},
	}
}

func (r *record) success(peer *x509.Certificate) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ok++
	s := peer.SerialNumber.Text(16)
	if r.peerSerials[s] == 0 {
		r.firstSeen[s] = time.Since(r.start).Round(time.Millisecond).String()
		r.peerNotAfter[s] = peer.NotAfter.UTC().Format(time.RFC3339)
	}
	r.peerSerials[s]++
}

func (r *record) failure(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures++
	logf("handshake failure: %v", err)
	if len(r.errors) < 20 {
		r.errors = append(r.errors, fmt.Sprintf("+%s %v", time.Since(r.start).Round(time.Millisecond), err))
	}
}

// trace records which of our own SVIDs go-spiffe handed to crypto/tls for each handshake.
func (r *record) trace() tlsconfig.Trace {
	return tlsconfig.Trace{
		GotCertificate: func(info tlsconfig.GotCertificateInfo, _ interface{}) {
			if info.Err != nil || info.Cert == nil || len(info.Cert.Certificate) == 0 {
				return
			}
			leaf, err := x509.ParseCertificate(info.Cert.Certificate[0])
			if err != nil {
				return
			}
			r.mu.Lock()
			r.ownSerials[leaf.SerialNumber.Text(16)]++
			r.mu.Unlock()
		},
	}
}

func (r *record) summary(role string) map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	keys := func(m map[string]int) []string {
		out := make([]string, 0, len(m))
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	return map[string]any{
		"ok":                  r.failures == 0 && r.ok > 0,
		"role":                role,
		"handshakesOk":        r.ok,
		"failures":            r.failures,
		"errors":              r.errors,
		"peerSerials":         keys(r.peerSerials),
		"peerSerialCounts":    r.peerSerials,
		"peerSerialFirstSeen": r.firstSeen,
		"peerSerialNotAfter":  r.peerNotAfter,
		"ownSerials":          keys(r.ownSerials),
		"sourceUpdates":       r.sourceUpdates,
		"elapsed":             time.Since(r.start).Round(time.Millisecond).String(),
	}
}

type mtlsFlags struct {
	addr     string
	expectID spiffeid.ID
	duration time.Duration
	interval time.Duration
}

func parseMTLSFlags(name string, args []string, withInterval bool) (*mtlsFlags, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen/dial address")
	expect := fs.String("expect-id", "", "SPIFFE ID the peer must present (tlsconfig.AuthorizeID)")
	duration := fs.Duration("duration", 45*time.Second, "how long to run")
	interval := time.Duration(0)
	if withInterval {
		fs.DurationVar(&interval, "interval", 500*time.Millisecond, "pause between dials")
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	id, err := spiffeid.FromString(*expect)
	if err != nil {
		return nil, fmt.Errorf("-expect-id: %w", err)
	}
	return &mtlsFlags{addr: *addr, expectID: id, duration: *duration, interval: interval}, nil
}

// newSource opens a long-lived X509Source and counts its updates (each one is an SVID or bundle
// push from the agent) so the summary shows whether rotation reached the workload.
func newSource(ctx context.Context, rec *record) (*workloadapi.X509Source, error) {
	source, err := workloadapi.NewX509Source(ctx)
	if err != nil {
		return nil, stepErr("workloadapi.NewX509Source", err)
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-source.Updated():
				rec.mu.Lock()
				rec.sourceUpdates++
				rec.mu.Unlock()
			}
		}
	}()
	return source, nil
}

func runMTLSServer(args []string) error {
	f, err := parseMTLSFlags("mtls-server", args, false)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.duration)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	rec := newRecord()
	source, err := newSource(ctx, rec)
	if err != nil {
		return err
	}
	defer source.Close()

	cfg := tlsconfig.MTLSServerConfig(source, source, tlsconfig.AuthorizeID(f.expectID), tlsconfig.WithTrace(rec.trace()))
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return stepErr("listen", err)
	}
	// The test waits for this line before starting the client.
	logf("LISTENING %s", ln.Addr())
	go func() { <-ctx.Done(); ln.Close() }()

	var wg sync.WaitGroup
	for {
		conn, err := ln.Accept()
		if err != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveOne(tls.Server(conn, cfg), rec)
		}()
	}
	wg.Wait()
	emit(rec.summary("server"))
	return nil
}

func serveOne(conn *tls.Conn, rec *record) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err := conn.Handshake(); err != nil {
		rec.failure(fmt.Errorf("server handshake from %s: %w", conn.RemoteAddr(), err))
		return
	}
	peers := conn.ConnectionState().PeerCertificates
	if len(peers) == 0 {
		rec.failure(fmt.Errorf("no client certificate"))
		return
	}
	rec.success(peers[0])
	// Echo a byte so the client knows the server accepted it after the handshake too.
	buf := make([]byte, 1)
	if _, err := io.ReadFull(conn, buf); err == nil {
		_, _ = conn.Write(buf)
	}
}

func runMTLSClient(args []string) error {
	f, err := parseMTLSFlags("mtls-client", args, true)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.duration)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	rec := newRecord()
	source, err := newSource(ctx, rec)
	if err != nil {
		return err
	}
	defer source.Close()

	cfg := tlsconfig.MTLSClientConfig(source, source, tlsconfig.AuthorizeID(f.expectID), tlsconfig.WithTrace(rec.trace()))
	ticker := time.NewTicker(f.interval)
	defer ticker.Stop()
	for {
		dialOnce(f.addr, cfg, rec)
		select {
		case <-ctx.Done():
			emit(rec.summary("client"))
			return nil
		case <-ticker.C:
		}
	}
}

func dialOnce(addr string, cfg *tls.Config, rec *record) {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(dialer, "tcp", addr, cfg)
	if err != nil {
		rec.failure(fmt.Errorf("dial/handshake: %w", err))
		return
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	// TLS 1.3 lets the client finish before the server has checked its certificate, so only a
	// completed echo proves the server accepted us.
	if _, err := conn.Write([]byte{'x'}); err != nil {
		rec.failure(fmt.Errorf("write: %w", err))
		return
	}
	buf := make([]byte, 1)
	if _, err := io.ReadFull(conn, buf); err != nil {
		rec.failure(fmt.Errorf("echo (server rejected us?): %w", err))
		return
	}
	peers := conn.ConnectionState().PeerCertificates
	if len(peers) == 0 {
		rec.failure(fmt.Errorf("no server certificate"))
		return
	}
	rec.success(peers[0])
}
