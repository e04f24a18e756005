// Command bench-client is the outside workload of bench/server-mode.mjs: go-spiffe v2 (not our SDK)
// talking to whichever agent SPIFFE_ENDPOINT_SOCKET names, so spire-agent and spiffe-agent are
// measured by the same client. Every command prints JSON lines on stdout.
//
//	connect -n N        N times: new client, FetchX509Context; prints {"ms":[...]} (connect → first X.509-SVID)
//	wait-id -id ID      WatchX509Context; prints {"ready":true} after the first update, then
//	                    {"arrivedUnixMs":T} when an SVID with ID arrives (wall clock, for entry create → SVID)
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

func out(v any) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

func fail(err error) {
	out(map[string]any{"ok": false, "error": err.Error()})
	os.Exit(1)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bench-client connect -n N | wait-id -id ID [-timeout D]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "connect":
		fs := flag.NewFlagSet("connect", flag.ExitOnError)
		n := fs.Int("n", 1, "connections")
		timeout := fs.Duration("timeout", 30*time.Second, "per call")
		_ = fs.Parse(os.Args[2:])
		ms := []float64{}
		for i := 0; i < *n; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), *timeout)
			t0 := time.Now()
			c, err := workloadapi.New(ctx)
			if err != nil {
				cancel()
				fail(err)
			}
			x, err := c.FetchX509Context(ctx)
			d := time.Since(t0)
			c.Close()
			cancel()
			if err != nil {
				fail(err)
			}
			if len(x.SVIDs) == 0 {
				fail(fmt.Errorf("no SVIDs"))
			}
			ms = append(ms, float64(d.Microseconds())/1000)
		}
		out(map[string]any{"ok": true, "ms": ms})
	case "wait-id":
		fs := flag.NewFlagSet("wait-id", flag.ExitOnError)
		id := fs.String("id", "", "SPIFFE ID to wait for")
		timeout := fs.Duration("timeout", 120*time.Second, "give up after")
		_ = fs.Parse(os.Args[2:])
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		defer cancel()
		c, err := workloadapi.New(ctx)
		if err != nil {
			fail(err)
		}
		defer c.Close()
		ready := false
		w := watcher{onUpdate: func(x *workloadapi.X509Context) {
			if !ready {
				ready = true
				out(map[string]any{"ready": true})
			}
			for _, s := range x.SVIDs {
				if s.ID.String() == *id {
					out(map[string]any{"ok": true, "arrivedUnixMs": float64(time.Now().UnixMicro()) / 1000})
					cancel()
					return
				}
			}
		}}
		err = c.WatchX509Context(ctx, w)
		if err != nil && ctx.Err() == nil {
			fail(err)
		}
	default:
		os.Exit(2)
	}
}

type watcher struct {
	onUpdate func(*workloadapi.X509Context)
}

func (w watcher) OnX509ContextUpdate(x *workloadapi.X509Context) { w.onUpdate(x) }
func (w watcher) OnX509ContextWatchError(err error)              { fmt.Fprintln(os.Stderr, "watch error:", err) }
