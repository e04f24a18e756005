package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"regexp"
	"time"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
)

const spiffeValidatorName = "envoy.tls.cert_validator.spiffe"

type trustDomainInfo struct {
	Name    string `json:"name"`
	CACount int    `json:"caCount"`
}

type secretInfo struct {
	Name string `json:"name"`
	Kind string `json:"kind"` // tls_certificate | validation_context
	// tls_certificate
	SpiffeID   string `json:"spiffeId,omitempty"`
	Serial     string `json:"serial,omitempty"`
	NotAfter   string `json:"notAfter,omitempty"`
	ChainLen   int    `json:"chainLen,omitempty"`
	KeyMatches bool   `json:"keyMatches,omitempty"`
	KeyPEMType string `json:"keyPemType,omitempty"`
	// validation_context
	Validator      string            `json:"validator,omitempty"`
	TrustDomains   []trustDomainInfo `json:"trustDomains,omitempty"`
	TrustedCACount int               `json:"trustedCaCount,omitempty"`
	// filled in across the response: the SVID verifies against a served bundle
	VerifiedBy string `json:"verifiedBy,omitempty"`

	leaf  *x509.Certificate
	inter []*x509.Certificate
	roots map[string]*x509.CertPool // trust domain ("" for legacy trusted_ca) -> CAs
}

type responseInfo struct {
	VersionInfo string        `json:"versionInfo"`
	Nonce       string        `json:"nonce"`
	TypeURL     string        `json:"typeUrl"`
	Secrets     []*secretInfo `json:"secrets"`
}

var nonceRE = regexp.MustCompile(`^[0-9a-f]{8}$`)

func describe(resp *discoveryv3.DiscoveryResponse) (*responseInfo, error) {
	if err := resp.ValidateAll(); err != nil {
		return nil, fmt.Errorf("DiscoveryResponse fails Envoy's validation rules: %w", err)
	}
	if resp.Nonce != "" && !nonceRE.MatchString(resp.Nonce) {
		return nil, fmt.Errorf("nonce %q is not 8 lowercase hex characters", resp.Nonce)
	}
	r := &responseInfo{VersionInfo: resp.VersionInfo, Nonce: resp.Nonce, TypeURL: resp.TypeUrl, Secrets: []*secretInfo{}}
	for i, res := range resp.Resources {
		if res.TypeUrl != secretTypeURL {
			return nil, fmt.Errorf("resource %d has type %q", i, res.TypeUrl)
		}
		var s tlsv3.Secret
		if err := res.UnmarshalTo(&s); err != nil {
			return nil, fmt.Errorf("resource %d is not a tlsv3.Secret: %w", i, err)
		}
		if err := s.ValidateAll(); err != nil {
			return nil, fmt.Errorf("secret %q fails Envoy's validation rules: %w", s.Name, err)
		}
		info, err := describeSecret(&s)
		if err != nil {
			return nil, fmt.Errorf("secret %q: %w", s.Name, err)
		}
		r.Secrets = append(r.Secrets, info)
	}
	// Each SVID must verify against some bundle in the same response, if one came with it.
	for _, s := range r.Secrets {
		if s.leaf == nil {
			continue
		}
		for _, b := range r.Secrets {
			for td, pool := range b.roots {
				if td != "" && "spiffe://"+td != trustDomainOf(s.SpiffeID) {
					continue
				}
				inter := x509.NewCertPool()
				for _, c := range s.inter {
					inter.AddCert(c)
				}
				if _, err := s.leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}, CurrentTime: time.Now()}); err == nil {
					s.VerifiedBy = b.Name
				}
			}
		}
	}
	return r, nil
}

func trustDomainOf(id string) string {
	m := regexp.MustCompile(`^(spiffe://[^/]+)`).FindString(id)
	return m
}

func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for len(data) > 0 {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %q where a CERTIFICATE was expected", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no PEM certificates")
	}
	return out, nil
}

func describeSecret(s *tlsv3.Secret) (*secretInfo, error) {
	info := &secretInfo{Name: s.Name}
	switch t := s.Type.(type) {
	case *tlsv3.Secret_TlsCertificate:
		info.Kind = "tls_certificate"
		chainPEM := t.TlsCertificate.GetCertificateChain().GetInlineBytes()
		keyPEM := t.TlsCertificate.GetPrivateKey().GetInlineBytes()
		// The pair must load the way any TLS stack loads it: chain + PKCS#8 key that match.
		if _, err := tls.X509KeyPair(chainPEM, keyPEM); err != nil {
			return nil, fmt.Errorf("certificate chain and private key do not pair up: %w", err)
		}
		info.KeyMatches = true
		if b, _ := pem.Decode(keyPEM); b != nil {
			info.KeyPEMType = b.Type
		}
		certs, err := parseCerts(chainPEM)
		if err != nil {
			return nil, err
		}
		info.leaf, info.inter = certs[0], certs[1:]
		info.ChainLen = len(certs)
		if len(info.leaf.URIs) != 1 {
			return nil, fmt.Errorf("leaf has %d URI SANs", len(info.leaf.URIs))
		}
		info.SpiffeID = info.leaf.URIs[0].String()
		info.Serial = info.leaf.SerialNumber.Text(16)
		info.NotAfter = info.leaf.NotAfter.UTC().Format(time.RFC3339)
	case *tlsv3.Secret_ValidationContext:
		info.Kind = "validation_context"
		info.roots = map[string]*x509.CertPool{}
		vc := t.ValidationContext
		if cv := vc.GetCustomValidatorConfig(); cv != nil {
			info.Validator = cv.Name
			if cv.Name != spiffeValidatorName {
				return nil, fmt.Errorf("custom validator %q", cv.Name)
			}
			var cfg tlsv3.SPIFFECertValidatorConfig
			if err := cv.TypedConfig.UnmarshalTo(&cfg); err != nil {
				return nil, fmt.Errorf("typed_config is not a SPIFFECertValidatorConfig: %w", err)
			}
			if err := cfg.ValidateAll(); err != nil {
				return nil, fmt.Errorf("SPIFFECertValidatorConfig fails Envoy's validation rules: %w", err)
			}
			for _, td := range cfg.TrustDomains {
				cas, err := parseCerts(td.GetTrustBundle().GetInlineBytes())
				if err != nil {
					return nil, fmt.Errorf("trust domain %q: %w", td.Name, err)
				}
				pool := x509.NewCertPool()
				for _, c := range cas {
					pool.AddCert(c)
				}
				info.roots[td.Name] = pool
				info.TrustDomains = append(info.TrustDomains, trustDomainInfo{Name: td.Name, CACount: len(cas)})
			}
		} else if ca := vc.GetTrustedCa(); ca != nil {
			cas, err := parseCerts(ca.GetInlineBytes())
			if err != nil {
				return nil, fmt.Errorf("trusted_ca: %w", err)
			}
			pool := x509.NewCertPool()
			for _, c := range cas {
				pool.AddCert(c)
			}
			info.roots[""] = pool
			info.TrustedCACount = len(cas)
		} else {
			return nil, fmt.Errorf("validation context has neither custom_validator_config nor trusted_ca")
		}
	default:
		return nil, fmt.Errorf("unexpected secret type %T", s.Type)
	}
	return info, nil
}
