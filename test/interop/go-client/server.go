package main

// Subcommands used by the server-mode suite (test/interop/server) and the server-mode bench, where
// the agent under test is spire-agent v1.13.3 or spiffe-agent joined to a real spire-server:
//
//	x509   one FetchX509Context (+ FetchJWTBundles with -jwt-bundles): ids, serials, bundle fingerprints
//	watch  WatchX509Context for -duration, one JSON line per update or stream error
//	canon  a canonical description of everything the agent serves, for the differential test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

func fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:8])
}

func x509BundleMap(set *x509bundle.Set) map[string][]string {
	out := map[string][]string{}
	for _, b := range set.Bundles() {
		fps := []string{}
		for _, c := range b.X509Authorities() {
			fps = append(fps, fingerprint(c))
		}
		sort.Strings(fps)
		out[b.TrustDomain().IDString()] = fps
	}
	return out
}

func jwtBundleMap(set *jwtbundle.Set) map[string][]string {
	out := map[string][]string{}
	for _, b := range set.Bundles() {
		kids := []string{}
		for kid := range b.JWTAuthorities() {
			kids = append(kids, kid)
		}
		sort.Strings(kids)
		out[b.TrustDomain().IDString()] = kids
	}
	return out
}

type svidLine struct {
	ID          string `json:"id"`
	Hint        string `json:"hint,omitempty"`
	Serial      string `json:"serial"`
	NotBefore   string `json:"notBefore"`
	NotAfter    string `json:"notAfter"`
	ChainLength int    `json:"chainLength"`
	// Issuer is the fingerprint of the CA certificate that signed the leaf (chain[1], or the bundle
	// authority that verifies it), so a test can tell which X.509 authority minted the SVID.
	Issuer      string `json:"issuer"`
	Verified    bool   `json:"verified"`
	VerifyError string `json:"verifyError,omitempty"`
}

func summarizeX509(c *workloadapi.X509Context) []svidLine {
	out := make([]svidLine, 0, len(c.SVIDs))
	for _, s := range c.SVIDs {
		leaf := s.Certificates[0]
		l := svidLine{
			ID: s.ID.String(), Hint: s.Hint, Serial: leaf.SerialNumber.Text(16),
			NotBefore: leaf.NotBefore.UTC().Format(time.RFC3339), NotAfter: leaf.NotAfter.UTC().Format(time.RFC3339),
			ChainLength: len(s.Certificates),
		}
		_, chains, err := x509svid.Verify(s.Certificates, c.Bundles)
		if err != nil {
			l.VerifyError = err.Error()
		} else {
			l.Verified = true
			if len(chains) > 0 && len(chains[0]) > 1 {
				l.Issuer = fingerprint(chains[0][1])
			}
		}
		if l.Issuer == "" && len(s.Certificates) > 1 {
			l.Issuer = fingerprint(s.Certificates[1])
		}
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func runX509(args []string) error {
	fs := flag.NewFlagSet("x509", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 10*time.Second, "deadline for the Workload API calls")
	withJWT := fs.Bool("jwt-bundles", false, "also FetchJWTBundles")
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
	start := time.Now()
	x, err := client.FetchX509Context(ctx)
	if err != nil {
		return stepErr("FetchX509Context", err)
	}
	out := map[string]any{
		"ok": true, "svids": summarizeX509(x), "bundles": x509BundleMap(x.Bundles),
		"fetchMs": float64(time.Since(start).Microseconds()) / 1000,
	}
	if *withJWT {
		jb, err := client.FetchJWTBundles(ctx)
		if err != nil {
			return stepErr("FetchJWTBundles", err)
		}
		out["jwtBundles"] = jwtBundleMap(jb)
	}
	emit(out)
	return nil
}

// lineWriter serializes the watcher's callbacks onto stdout, one compact JSON document per line.
type lineWriter struct {
	mu    sync.Mutex
	start time.Time
}

func (w *lineWriter) write(v map[string]any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	v["t"] = time.Since(w.start).Milliseconds()
	b, _ := json.Marshal(v)
	os.Stdout.Write(append(b, '\n'))
}

type x509Watcher struct{ w *lineWriter }

func (x x509Watcher) OnX509ContextUpdate(c *workloadapi.X509Context) {
	x.w.write(map[string]any{"update": true, "svids": summarizeX509(c), "bundles": x509BundleMap(c.Bundles)})
}

func (x x509Watcher) OnX509ContextWatchError(err error) {
	x.w.write(map[string]any{"error": err.Error(), "code": grpcCode(err)})
}

func runWatch(args []string) error {
	fs := flag.NewFlagSet("watch", flag.ContinueOnError)
	duration := fs.Duration("duration", 60*time.Second, "how long to keep the stream open")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		cancel()
	}()
	w := &lineWriter{start: time.Now()}
	client, err := workloadapi.New(ctx)
	if err != nil {
		return stepErr("workloadapi.New", err)
	}
	defer client.Close()
	w.write(map[string]any{"started": true})
	err = client.WatchX509Context(ctx, x509Watcher{w})
	if err != nil && ctx.Err() == nil {
		return stepErr("WatchX509Context", err)
	}
	w.write(map[string]any{"done": true})
	return nil
}

// ---- canon: what the differential test compares ----

type certShape struct {
	KeyType            string   `json:"keyType"`
	SignatureAlgorithm string   `json:"signatureAlgorithm"`
	IsCA               bool     `json:"isCA"`
	URISANs            []string `json:"uriSans"`
	DNSSANs            []string `json:"dnsSans"`
	KeyUsage           []string `json:"keyUsage"`
	ExtKeyUsage        []string `json:"extKeyUsage"`
	Extensions         []string `json:"extensions"`
	SubjectAttrs       []string `json:"subjectAttributeTypes"`
	LifetimeMinutes    int64    `json:"lifetimeMinutes"`
}

func keyType(pub any) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return "EC " + k.Curve.Params().Name
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case ed25519.PublicKey:
		return "Ed25519"
	default:
		return fmt.Sprintf("%T", pub)
	}
}

var keyUsageNames = []struct {
	bit  x509.KeyUsage
	name string
}{
	{x509.KeyUsageDigitalSignature, "digitalSignature"}, {x509.KeyUsageContentCommitment, "contentCommitment"},
	{x509.KeyUsageKeyEncipherment, "keyEncipherment"}, {x509.KeyUsageDataEncipherment, "dataEncipherment"},
	{x509.KeyUsageKeyAgreement, "keyAgreement"}, {x509.KeyUsageCertSign, "keyCertSign"},
	{x509.KeyUsageCRLSign, "cRLSign"}, {x509.KeyUsageEncipherOnly, "encipherOnly"}, {x509.KeyUsageDecipherOnly, "decipherOnly"},
}

var extKeyUsageNames = map[x509.ExtKeyUsage]string{
	x509.ExtKeyUsageAny: "any", x509.ExtKeyUsageServerAuth: "serverAuth", x509.ExtKeyUsageClientAuth: "clientAuth",
	x509.ExtKeyUsageCodeSigning: "codeSigning", x509.ExtKeyUsageEmailProtection: "emailProtection",
	x509.ExtKeyUsageTimeStamping: "timeStamping", x509.ExtKeyUsageOCSPSigning: "OCSPSigning",
}

func shapeOf(c *x509.Certificate) certShape {
	s := certShape{
		KeyType: keyType(c.PublicKey), SignatureAlgorithm: c.SignatureAlgorithm.String(), IsCA: c.IsCA,
		URISANs: []string{}, DNSSANs: append([]string{}, c.DNSNames...), KeyUsage: []string{}, ExtKeyUsage: []string{},
		Extensions: []string{}, SubjectAttrs: []string{},
		LifetimeMinutes: int64(c.NotAfter.Sub(c.NotBefore).Round(time.Minute) / time.Minute),
	}
	for _, u := range c.URIs {
		s.URISANs = append(s.URISANs, u.String())
	}
	for _, k := range keyUsageNames {
		if c.KeyUsage&k.bit != 0 {
			s.KeyUsage = append(s.KeyUsage, k.name)
		}
	}
	for _, e := range c.ExtKeyUsage {
		name, ok := extKeyUsageNames[e]
		if !ok {
			name = fmt.Sprintf("eku-%d", e)
		}
		s.ExtKeyUsage = append(s.ExtKeyUsage, name)
	}
	for _, e := range c.Extensions {
		crit := ""
		if e.Critical {
			crit = " (critical)"
		}
		s.Extensions = append(s.Extensions, e.Id.String()+crit)
	}
	sort.Strings(s.Extensions)
	for _, a := range c.Subject.Names {
		s.SubjectAttrs = append(s.SubjectAttrs, a.Type.String())
	}
	sort.Strings(s.SubjectAttrs)
	return s
}

type canonSVID struct {
	ID          string      `json:"id"`
	Hint        string      `json:"hint"`
	ChainLength int         `json:"chainLength"`
	Chain       []certShape `json:"chain"`
	// The CA certificates in the chain are the server's: the same bytes whichever agent serves them.
	Intermediates []string `json:"intermediateFingerprints"`
	Verified      bool     `json:"verified"`
}

type canonJWT struct {
	Audience    string   `json:"requestedAudience"`
	Sub         string   `json:"sub"`
	Aud         []string `json:"aud"`
	Hint        string   `json:"hint"`
	ClaimNames  []string `json:"claimNames"`
	HeaderAlg   string   `json:"alg"`
	HeaderTyp   string   `json:"typ"`
	Kid         string   `json:"kid"`
	KidInBundle bool     `json:"kidInBundle"`
	LifetimeMin int64    `json:"lifetimeMinutes"`
	Validated   bool     `json:"validated"`
	Error       string   `json:"error,omitempty"`
}

type jwtKeyShape struct {
	Kid     string `json:"kid"`
	KeyType string `json:"keyType"`
}

func runCanon(args []string) error {
	fs := flag.NewFlagSet("canon", flag.ContinueOnError)
	var audiences stringList
	fs.Var(&audiences, "audience", "JWT-SVID audience (repeatable; first is also used for a multi-audience request with the rest)")
	timeout := fs.Duration("timeout", 20*time.Second, "deadline for all Workload API calls")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(audiences) == 0 {
		audiences = stringList{"spiffe://example.org/differential"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	client, err := workloadapi.New(ctx)
	if err != nil {
		return stepErr("workloadapi.New", err)
	}
	defer client.Close()

	x, err := client.FetchX509Context(ctx)
	if err != nil {
		return stepErr("FetchX509Context", err)
	}
	svids := []canonSVID{}
	order := []string{}
	for _, s := range x.SVIDs {
		order = append(order, s.ID.String())
		cs := canonSVID{ID: s.ID.String(), Hint: s.Hint, ChainLength: len(s.Certificates), Intermediates: []string{}}
		for i, c := range s.Certificates {
			cs.Chain = append(cs.Chain, shapeOf(c))
			if i > 0 {
				cs.Intermediates = append(cs.Intermediates, fingerprint(c))
			}
		}
		_, _, verr := x509svid.Verify(s.Certificates, x.Bundles)
		cs.Verified = verr == nil
		svids = append(svids, cs)
	}
	sort.Slice(svids, func(i, j int) bool { return svids[i].ID < svids[j].ID })

	// FetchX509Bundles is a separate RPC: it must agree with the bundles in the X.509 context.
	xb, err := client.FetchX509Bundles(ctx)
	if err != nil {
		return stepErr("FetchX509Bundles", err)
	}
	jb, err := client.FetchJWTBundles(ctx)
	if err != nil {
		return stepErr("FetchJWTBundles", err)
	}
	jwtKeys := map[string][]jwtKeyShape{}
	for _, b := range jb.Bundles() {
		keys := []jwtKeyShape{}
		for kid, k := range b.JWTAuthorities() {
			keys = append(keys, jwtKeyShape{Kid: kid, KeyType: keyType(k)})
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i].Kid < keys[j].Kid })
		jwtKeys[b.TrustDomain().IDString()] = keys
	}

	// One JWT-SVID per audience set: each audience alone, then all together.
	sets := [][]string{}
	for _, a := range audiences {
		sets = append(sets, []string{a})
	}
	if len(audiences) > 1 {
		sets = append(sets, audiences)
	}
	jwts := []canonJWT{}
	for _, set := range sets {
		params := jwtsvid.Params{Audience: set[0], ExtraAudiences: set[1:]}
		all, err := client.FetchJWTSVIDs(ctx, params)
		if err != nil {
			jwts = append(jwts, canonJWT{Audience: strings.Join(set, ","), Error: "FetchJWTSVIDs: " + grpcCode(err)})
			continue
		}
		for _, j := range all {
			cj := canonJWT{Audience: strings.Join(set, ","), Sub: j.ID.String(), Aud: append([]string{}, j.Audience...), Hint: j.Hint}
			for name := range j.Claims {
				cj.ClaimNames = append(cj.ClaimNames, name)
			}
			sort.Strings(cj.ClaimNames)
			sort.Strings(cj.Aud)
			if exp, iat := claimInt(j.Claims["exp"]), claimInt(j.Claims["iat"]); exp > 0 && iat > 0 {
				cj.LifetimeMin = (exp - iat + 30) / 60
			}
			cj.HeaderAlg, cj.HeaderTyp, cj.Kid, cj.KidInBundle = jwtHeader(j.Marshal(), jb)
			if _, err := jwtsvid.ParseAndValidate(j.Marshal(), jb, set); err != nil {
				cj.Error = err.Error()
			} else {
				cj.Validated = true
			}
			jwts = append(jwts, cj)
		}
	}
	sort.SliceStable(jwts, func(i, j int) bool {
		if jwts[i].Audience != jwts[j].Audience {
			return jwts[i].Audience < jwts[j].Audience
		}
		return jwts[i].Sub < jwts[j].Sub
	})

	emit(map[string]any{
		"ok":               true,
		"x509Svids":        svids,
		"x509SvidOrder":    order,
		"x509Bundles":      x509BundleMap(x.Bundles),
		"fetchX509Bundles": x509BundleMap(xb),
		"jwtBundles":       jwtKeys,
		"jwtSvids":         jwts,
	})
	return nil
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func claimInt(v any) int64 {
	switch n := v.(type) {
	case float64:
		return int64(n)
	case json.Number:
		i, _ := n.Int64()
		return i
	case int64:
		return n
	}
	return 0
}

// jwtHeader decodes the protected header of a compact JWT: alg, typ and whether its kid is in the
// JWT bundle of the token's own trust domain.
func jwtHeader(token string, jb *jwtbundle.Set) (string, string, string, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", "", "", false
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return "", "", "", false
	}
	var h struct {
		Alg string `json:"alg"`
		Typ string `json:"typ"`
		Kid string `json:"kid"`
	}
	if json.Unmarshal(raw, &h) != nil {
		return "", "", "", false
	}
	found := false
	for _, b := range jb.Bundles() {
		if _, ok := b.FindJWTAuthority(h.Kid); ok {
			found = true
		}
	}
	return h.Alg, h.Typ, h.Kid, found
}
