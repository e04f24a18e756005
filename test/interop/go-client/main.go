// Command go-client drives the real go-spiffe v2 library against a Workload API endpoint so the
// interop suite can prove that spiffe-agent is a drop-in for spire-agent from a Go workload's
// point of view. The endpoint comes from SPIFFE_ENDPOINT_SOCKET, exactly as in production.
//
// Every subcommand prints one JSON document on stdout and exits non-zero on any error; log lines go
// to stderr so the test can parse stdout without filtering.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc/status"
)

func usage() {
	fmt.Fprintln(os.Stderr, `usage: go-client <command> [flags]
commands:
  fetch         FetchX509Context + FetchJWTSVID + FetchJWTBundles, verify both SVIDs locally
  validate-jwt  ValidateJWTSVID through the Workload API (-token T -audience A)
  mtls-server   serve mTLS from an X509Source, record peer serials (-addr -expect-id -duration)
  mtls-client   re-dial an mTLS server every -interval for -duration, record peer serials
  x509          one FetchX509Context (-jwt-bundles adds FetchJWTBundles): ids, serials, bundle fingerprints
  watch         WatchX509Context for -duration, one JSON line per update or error
  canon         canonical JSON of everything served (SVID shapes, bundles, JWT claims), for the differential test`)
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "fetch":
		err = runFetch(args)
	case "validate-jwt":
		err = runValidateJWT(args)
	case "mtls-server":
		err = runMTLSServer(args)
	case "mtls-client":
		err = runMTLSClient(args)
	case "x509":
		err = runX509(args)
	case "watch":
		err = runWatch(args)
	case "canon":
		err = runCanon(args)
	default:
		usage()
		os.Exit(2)
	}
	if err != nil {
		var se *stepError
		step := cmd
		if errors.As(err, &se) {
			step = se.step
		}
		emit(map[string]any{
			"ok":    false,
			"step":  step,
			"code":  grpcCode(err),
			"error": err.Error(),
		})
		fmt.Fprintf(os.Stderr, "go-client %s: %v\n", cmd, err)
		os.Exit(1)
	}
}

// stepError names the go-spiffe call that failed so a test failure points at one RPC.
type stepError struct {
	step string
	err  error
}

func (e *stepError) Error() string { return e.step + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

func stepErr(step string, err error) error {
	if err == nil {
		return nil
	}
	return &stepError{step: step, err: err}
}

// grpcCode reports the gRPC status of the innermost wrapped error, "" when it is not a gRPC error.
func grpcCode(err error) string {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if s, ok := status.FromError(e); ok {
			return s.Code().String()
		}
	}
	return ""
}

func emit(v any) {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(os.Stderr, "go-client: encode output: %v\n", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().UTC().Format("15:04:05.000")}, args...)...)
}
