package main

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

type x509Summary struct {
	SpiffeID     string   `json:"spiffeId"`
	VerifiedID   string   `json:"verifiedId"`
	Serial       string   `json:"serial"`
	NotBefore    string   `json:"notBefore"`
	NotAfter     string   `json:"notAfter"`
	ChainLength  int      `json:"chainLength"`
	Hint         string   `json:"hint,omitempty"`
	URISANs      []string `json:"uriSans"`
	VerifiedPath int      `json:"verifiedChainLength"`
}

type jwtSummary struct {
	Subject  string         `json:"sub"`
	Audience []string       `json:"aud"`
	Expiry   string         `json:"exp"`
	Hint     string         `json:"hint,omitempty"`
	Claims   map[string]any `json:"claims"`
	Token    string         `json:"token,omitempty"`
}

func runFetch(args []string) error {
	fs := flag.NewFlagSet("fetch", flag.ContinueOnError)
	audience := fs.String("audience", "spiffe://example.org/interop-audience", "JWT-SVID audience")
	timeout := fs.Duration("timeout", 20*time.Second, "deadline for all Workload API calls")
	emitToken := fs.Bool("emit-token", false, "include the compact JWT in the output (tests only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	client, err := workloadapi.New(ctx)
	if err != nil {
		return stepErr("workloadapi.New", err)
	}
	defer client.Close()

	x509Ctx, err := client.FetchX509Context(ctx)
	if err != nil {
		return stepErr("FetchX509Context", err)
	}
	svids := make([]x509Summary, 0, len(x509Ctx.SVIDs))
	for _, svid := range x509Ctx.SVIDs {
		// Verify the chain against the bundle the agent handed out, as a relying party would.
		id, chains, err := x509svid.Verify(svid.Certificates, x509Ctx.Bundles)
		if err != nil {
			return stepErr("x509svid.Verify", fmt.Errorf("%s: %w", svid.ID, err))
		}
		if id != svid.ID {
			return stepErr("x509svid.Verify", fmt.Errorf("verified id %s != response id %s", id, svid.ID))
		}
		leaf := svid.Certificates[0]
		uris := make([]string, 0, len(leaf.URIs))
		for _, u := range leaf.URIs {
			uris = append(uris, u.String())
		}
		s := x509Summary{
			SpiffeID: svid.ID.String(), VerifiedID: id.String(),
			Serial:    leaf.SerialNumber.Text(16),
			NotBefore: leaf.NotBefore.UTC().Format(time.RFC3339), NotAfter: leaf.NotAfter.UTC().Format(time.RFC3339),
			ChainLength: len(svid.Certificates), Hint: svid.Hint, URISANs: uris,
		}
		if len(chains) > 0 {
			s.VerifiedPath = len(chains[0])
		}
		svids = append(svids, s)
	}
	x509TDs := bundleTDs(x509Ctx.Bundles.Bundles())

	jwt, err := client.FetchJWTSVID(ctx, jwtsvid.Params{Audience: *audience})
	if err != nil {
		return stepErr("FetchJWTSVID", err)
	}
	jwtBundles, err := client.FetchJWTBundles(ctx)
	if err != nil {
		return stepErr("FetchJWTBundles", err)
	}
	validated, err := jwtsvid.ParseAndValidate(jwt.Marshal(), jwtBundles, []string{*audience})
	if err != nil {
		return stepErr("jwtsvid.ParseAndValidate", err)
	}
	jwtTDs := make([]string, 0)
	for _, b := range jwtBundles.Bundles() {
		jwtTDs = append(jwtTDs, b.TrustDomain().IDString())
	}
	sort.Strings(jwtTDs)
	js := jwtSummary{
		Subject: validated.ID.String(), Audience: validated.Audience,
		Expiry: validated.Expiry.UTC().Format(time.RFC3339), Hint: jwt.Hint, Claims: validated.Claims,
	}
	if *emitToken {
		js.Token = jwt.Marshal()
	}

	emit(map[string]any{
		"ok":                     true,
		"x509Svids":              svids,
		"x509BundleTrustDomains": x509TDs,
		"jwtSvid":                js,
		"jwtBundleTrustDomains":  jwtTDs,
	})
	return nil
}

type tdBundle interface{ TrustDomain() spiffeid.TrustDomain }

func bundleTDs[T tdBundle](bundles []T) []string {
	out := make([]string, 0, len(bundles))
	for _, b := range bundles {
		out = append(out, b.TrustDomain().IDString())
	}
	sort.Strings(out)
	return out
}

func runValidateJWT(args []string) error {
	fs := flag.NewFlagSet("validate-jwt", flag.ContinueOnError)
	token := fs.String("token", "", "compact JWT-SVID to validate")
	audience := fs.String("audience", "", "audience the token must carry")
	timeout := fs.Duration("timeout", 20*time.Second, "deadline for the call")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	svid, err := workloadapi.ValidateJWTSVID(ctx, *token, *audience)
	if err != nil {
		return stepErr("ValidateJWTSVID", err)
	}
	emit(map[string]any{
		"ok":     true,
		"sub":    svid.ID.String(),
		"aud":    svid.Audience,
		"exp":    svid.Expiry.UTC().Format(time.RFC3339),
		"claims": svid.Claims,
	})
	return nil
}
