// sds-client drives spiffe-agent's Envoy SDS v3 endpoint with Envoy's own generated API types
// (go-control-plane), the way Envoy does: StreamSecrets with ACKs carrying the nonce, FetchSecrets,
// and DeltaSecrets. Every Secret is unpacked into tlsv3.Secret, validated with the generated
// protoc-gen-validate rules, and checked: the PEM chain and key pair up, the SVID verifies against
// the bundle the agent served. Prints one JSON document on stdout; exit 1 on a failed check,
// exit 2 on usage errors.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	secretv3 "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

const secretTypeURL = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"

type options struct {
	names        []string
	envoyVersion string
	metadata     map[string]any
	updates      int
	timeout      time.Duration
}

func usage() {
	fmt.Fprintln(os.Stderr, `usage: sds-client <stream|fetch|delta> [-names a,b] [-envoy-version 1.30] [-disable-spiffe-validation true|"true"] [-updates N] [-timeout 60s]
  SPIFFE_ENDPOINT_SOCKET=unix:///path/to/api.sock selects the agent socket`)
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	mode := os.Args[1]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	names := fs.String("names", "", "comma-separated resource names (empty: everything)")
	envoyVersion := fs.String("envoy-version", "1.30.0", "node.user_agent_build_version (major.minor.patch; empty: none)")
	disable := fs.String("disable-spiffe-validation", "", `node metadata disable_spiffe_cert_validation: "true"/"false" sends a bool, "'true'" a string`)
	updates := fs.Int("updates", 0, "stream: after the first response, ACK and wait for this many further responses")
	timeout := fs.Duration("timeout", 60*time.Second, "overall deadline")
	if err := fs.Parse(os.Args[2:]); err != nil {
		usage()
	}
	o := options{envoyVersion: *envoyVersion, updates: *updates, timeout: *timeout, metadata: map[string]any{}}
	if *names != "" {
		o.names = strings.Split(*names, ",")
	}
	switch *disable {
	case "":
	case "true", "false":
		o.metadata["disable_spiffe_cert_validation"] = *disable == "true"
	default:
		o.metadata["disable_spiffe_cert_validation"] = strings.Trim(*disable, "'")
	}
	addr := os.Getenv("SPIFFE_ENDPOINT_SOCKET")
	if !strings.HasPrefix(addr, "unix://") {
		fmt.Fprintln(os.Stderr, "sds-client: SPIFFE_ENDPOINT_SOCKET must be unix:///path")
		os.Exit(2)
	}

	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fail(err)
	}
	defer conn.Close()
	client := secretv3.NewSecretDiscoveryServiceClient(conn)

	var out any
	switch mode {
	case "stream":
		out, err = runStream(ctx, client, o)
	case "fetch":
		out, err = runFetch(ctx, client, o)
	case "delta":
		out, err = runDelta(ctx, client, o)
	default:
		usage()
	}
	if err != nil {
		fail(err)
	}
	emit(out, 0)
}

func node(o options) *corev3.Node {
	n := &corev3.Node{Id: "interop-envoy", Cluster: "interop", UserAgentName: "envoy"}
	if o.envoyVersion != "" {
		var major, minor, patch uint32
		fmt.Sscanf(o.envoyVersion, "%d.%d.%d", &major, &minor, &patch)
		n.UserAgentVersionType = &corev3.Node_UserAgentBuildVersion{UserAgentBuildVersion: &corev3.BuildVersion{
			Version: &typev3.SemanticVersion{MajorNumber: major, MinorNumber: minor, Patch: patch},
		}}
	}
	if len(o.metadata) > 0 {
		md, err := structpb.NewStruct(o.metadata)
		if err != nil {
			fail(err)
		}
		n.Metadata = md
	}
	return n
}

func request(o options) *discoveryv3.DiscoveryRequest {
	if err := node(o).ValidateAll(); err != nil {
		fail(fmt.Errorf("our own Node does not validate: %w", err))
	}
	return &discoveryv3.DiscoveryRequest{Node: node(o), ResourceNames: o.names, TypeUrl: secretTypeURL}
}

func runFetch(ctx context.Context, c secretv3.SecretDiscoveryServiceClient, o options) (any, error) {
	resp, err := c.FetchSecrets(ctx, request(o))
	if err != nil {
		return nil, err
	}
	r, err := describe(resp)
	if err != nil {
		return nil, err
	}
	return map[string]any{"ok": true, "responses": []*responseInfo{r}}, nil
}

func runDelta(ctx context.Context, c secretv3.SecretDiscoveryServiceClient, o options) (any, error) {
	stream, err := c.DeltaSecrets(ctx)
	if err != nil {
		return nil, err
	}
	// The agent ends the call as soon as it opens, so the send can find the stream already closed:
	// grpc-go then returns io.EOF from Send, and the status comes from Recv (grpc.ClientStream.SendMsg).
	if err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{Node: node(o), TypeUrl: secretTypeURL, ResourceNamesSubscribe: o.names}); err != nil && err != io.EOF {
		return nil, err
	}
	_, err = stream.Recv()
	if err == nil {
		return nil, fmt.Errorf("DeltaSecrets answered; expected an error status")
	}
	return nil, err
}

// runStream is Envoy's side of state-of-the-world xDS: request, then ACK every response with its
// version and nonce, and collect the responses the agent pushes on the same stream.
func runStream(ctx context.Context, c secretv3.SecretDiscoveryServiceClient, o options) (any, error) {
	stream, err := c.StreamSecrets(ctx)
	if err != nil {
		return nil, err
	}
	if err := stream.Send(request(o)); err != nil {
		return nil, err
	}
	var got []*responseInfo
	for len(got) <= o.updates {
		resp, err := stream.Recv()
		if err != nil {
			return map[string]any{"ok": false, "responses": got, "code": status.Code(err).String(), "message": status.Convert(err).Message()}, nil
		}
		r, err := describe(resp)
		if err != nil {
			return nil, err
		}
		got = append(got, r)
		fmt.Fprintf(os.Stderr, "sds-client: response %d version=%s nonce=%s\n", len(got), resp.VersionInfo, resp.Nonce)
		// ACK: the version applied and the nonce of the response it applies to. The node is
		// left out, as Envoy does after the first request.
		ack := &discoveryv3.DiscoveryRequest{VersionInfo: resp.VersionInfo, ResponseNonce: resp.Nonce, ResourceNames: o.names, TypeUrl: secretTypeURL}
		if err := stream.Send(ack); err != nil {
			return nil, err
		}
	}
	if err := stream.CloseSend(); err != nil {
		return nil, err
	}
	// The agent ends the stream with OK once Envoy closes its side.
	_, err = stream.Recv()
	end := "EOF"
	if err != nil && err.Error() != "EOF" {
		end = status.Code(err).String()
	}
	return map[string]any{"ok": true, "responses": got, "end": end}, nil
}

func fail(err error) {
	st := status.Convert(err)
	emit(map[string]any{"ok": false, "code": st.Code().String(), "message": st.Message()}, 1)
}

func emit(v any, code int) {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
	os.Exit(code)
}
