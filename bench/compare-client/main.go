// Command compare-client is the outside workload of bench/compare.mjs: go-spiffe v2's Workload API
// stubs over grpc-go (not our SDK), pointed at whichever agent SPIFFE_ENDPOINT_SOCKET names, so
// spire-agent and spiffe-agent are driven by the same client. Every connection is its own
// grpc.ClientConn (its own Unix socket), as separate workloads would be. Output is JSON on stdout.
//
//	burst -n N -at T       N connections at wall time T (unix ms), each opens FetchX509SVID and waits for the
//	                       first response; all stay open until every one is done. {"served","errors","ms"}
//	seq -n N -c C          C workers, N connect→first X.509-SVID in total, one new connection each. {"ms","wallMs","errors"}
//	hold -n N [-par P]     N open streams, opened P at a time; {"ready":true,"ms":[...]} once all have a first response, then one
//	                       {"i","t","serial"} line per later response; exits when stdin closes
//	first -until D         retries connect→first SVID until it succeeds; {"t": unix ms of the first SVID}
package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

var outMu sync.Mutex

func out(v any) {
	b, _ := json.Marshal(v)
	outMu.Lock()
	os.Stdout.Write(append(b, '\n'))
	outMu.Unlock()
}

func addr() string {
	a := os.Getenv("SPIFFE_ENDPOINT_SOCKET")
	if a == "" {
		fmt.Fprintln(os.Stderr, "SPIFFE_ENDPOINT_SOCKET is not set")
		os.Exit(2)
	}
	return a
}

func unixMs(t time.Time) float64 { return float64(t.UnixMicro()) / 1000 }

// conn is one workload connection with an open FetchX509SVID stream.
type conn struct {
	cc     *grpc.ClientConn
	stream grpc.ServerStreamingClient[workload.X509SVIDResponse]
	cancel context.CancelFunc
}

func (c *conn) close() {
	if c.cancel != nil {
		c.cancel()
	}
	if c.cc != nil {
		c.cc.Close()
	}
}

// open dials a new connection, opens FetchX509SVID and returns the first response (checked: at least
// one SVID whose leaf parses).
func open(timeout time.Duration) (*conn, *workload.X509SVIDResponse, error) {
	cc, err := grpc.NewClient(addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{cc: cc, cancel: cancel}
	ctx = metadata.AppendToOutgoingContext(ctx, "workload.spiffe.io", "true")
	timer := time.AfterFunc(timeout, cancel)
	stream, err := workload.NewSpiffeWorkloadAPIClient(cc).FetchX509SVID(ctx, &workload.X509SVIDRequest{})
	if err != nil {
		timer.Stop()
		c.close()
		return nil, nil, err
	}
	c.stream = stream
	resp, err := stream.Recv()
	if !timer.Stop() && err == nil {
		err = errors.New("timed out")
	}
	if err != nil {
		c.close()
		return nil, nil, err
	}
	if len(resp.Svids) == 0 {
		c.close()
		return nil, nil, errors.New("no SVIDs in the first response")
	}
	return c, resp, nil
}

func check(resp *workload.X509SVIDResponse) error {
	certs, err := x509.ParseCertificates(resp.Svids[0].X509Svid)
	if err != nil || len(certs) == 0 {
		return fmt.Errorf("bad X.509-SVID: %v", err)
	}
	return nil
}

func serial(resp *workload.X509SVIDResponse) string {
	certs, err := x509.ParseCertificates(resp.Svids[0].X509Svid)
	if err != nil || len(certs) == 0 {
		return ""
	}
	return certs[0].SerialNumber.Text(16)
}

// kind sorts errors into refused connects (the kernel's backlog overflowed) and everything else.
func kind(err error) string {
	s := err.Error()
	switch {
	case strings.Contains(s, "resource temporarily unavailable"), strings.Contains(s, "connection refused"):
		return "refused"
	case strings.Contains(s, "timed out"), strings.Contains(s, "DeadlineExceeded"), strings.Contains(s, "context canceled"):
		return "timeout"
	}
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}

type errCount struct {
	mu sync.Mutex
	m  map[string]int
}

func (e *errCount) add(err error) {
	e.mu.Lock()
	if e.m == nil {
		e.m = map[string]int{}
	}
	e.m[kind(err)]++
	e.mu.Unlock()
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: compare-client burst|seq|hold|first ...")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	n := fs.Int("n", 1, "connections")
	c := fs.Int("c", 1, "concurrent workers (seq)")
	at := fs.Float64("at", 0, "start at this unix time in ms (burst)")
	timeout := fs.Duration("timeout", 60*time.Second, "per connection")
	until := fs.Duration("until", 120*time.Second, "give up after (first)")
	par := fs.Int("par", 10, "connections opened at a time (hold)")
	_ = fs.Parse(os.Args[2:])

	switch os.Args[1] {
	case "burst":
		time.Sleep(time.Until(time.UnixMicro(int64(*at * 1000))))
		start := time.UnixMicro(int64(*at * 1000))
		var wg sync.WaitGroup
		var mu sync.Mutex
		var errs errCount
		ms := []float64{}
		conns := []*conn{}
		for i := 0; i < *n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cn, resp, err := open(*timeout)
				if err == nil {
					err = check(resp)
				}
				if err != nil {
					errs.add(err)
					return
				}
				d := float64(time.Since(start).Microseconds()) / 1000
				mu.Lock()
				ms = append(ms, d)
				conns = append(conns, cn)
				mu.Unlock()
			}()
		}
		wg.Wait()
		for _, cn := range conns {
			cn.close()
		}
		out(map[string]any{"served": len(ms), "errors": errs.m, "ms": ms})
	case "seq":
		if cn, _, err := open(*timeout); err == nil { // warm-up: the SVID is signed and cached before timing
			cn.close()
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		var errs errCount
		ms := []float64{}
		t0 := time.Now()
		for w := 0; w < *c; w++ {
			k := *n / *c
			if w < *n%*c {
				k++
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < k; j++ {
					s := time.Now()
					cn, resp, err := open(*timeout)
					d := float64(time.Since(s).Microseconds()) / 1000
					if err == nil {
						cn.close()
						err = check(resp)
					}
					if err != nil {
						errs.add(err)
						continue
					}
					mu.Lock()
					ms = append(ms, d)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		out(map[string]any{"ms": ms, "wallMs": float64(time.Since(t0).Microseconds()) / 1000, "errors": errs.m})
	case "hold":
		var wg sync.WaitGroup
		var mu sync.Mutex
		var errs errCount
		ms := []float64{}
		conns := make([]*conn, *n)
		t0 := time.Now()
		// Opened a few at a time: this measures holding streams, not a connect burst.
		slots := make(chan struct{}, *par)
		for i := 0; i < *n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				slots <- struct{}{}
				cn, _, err := open(*timeout)
				<-slots
				if err != nil {
					errs.add(err)
					return
				}
				conns[i] = cn
				mu.Lock()
				ms = append(ms, float64(time.Since(t0).Microseconds())/1000)
				mu.Unlock()
			}(i)
		}
		wg.Wait()
		out(map[string]any{"ready": true, "ms": ms, "errors": errs.m})
		for i, cn := range conns {
			if cn == nil {
				continue
			}
			go func(i int, cn *conn) {
				for {
					resp, err := cn.stream.Recv()
					if err != nil {
						if status := err.Error(); !strings.Contains(status, "context canceled") && !errors.Is(err, io.EOF) {
							out(map[string]any{"i": i, "error": kind(err)})
						}
						return
					}
					out(map[string]any{"i": i, "t": unixMs(time.Now()), "serial": serial(resp)})
				}
			}(i, cn)
		}
		_, _ = io.Copy(io.Discard, os.Stdin)
		for _, cn := range conns {
			if cn != nil {
				cn.close()
			}
		}
	case "first":
		deadline := time.Now().Add(*until)
		for {
			cn, resp, err := open(2 * time.Second)
			if err == nil {
				err = check(resp)
				cn.close()
			}
			if err == nil {
				out(map[string]any{"t": unixMs(time.Now())})
				return
			}
			if time.Now().After(deadline) {
				out(map[string]any{"error": err.Error()})
				os.Exit(1)
			}
			time.Sleep(10 * time.Millisecond)
		}
	default:
		os.Exit(2)
	}
}
