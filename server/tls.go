package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/fanline/fanline/internal/config"
)

// serverTLS is the listener's TLS configuration on a node with the dispatch role:
// nil without cluster.tls_cert; with cluster.tls_ca, client certificates are
// verified against it when given (the internal API then requires one, so that
// probes and scrapers of /healthz, /readyz and /metrics need none).
func serverTLS(cfg config.Config) (*tls.Config, error) {
	c := cfg.Cluster
	if c.TLSCert == "" {
		return nil, nil
	}
	cert, err := clusterCert(c.TLSCert, c.TLSKey)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if c.TLSCA != "" {
		if tc.ClientCAs, err = readCA(c.TLSCA); err != nil {
			return nil, err
		}
		tc.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return tc, nil
}

// remoteTLS is a gateway-only node's TLS configuration for an https
// cluster.dispatch_url (nil for http): cluster.tls_ca as the roots (default the
// system's), cluster.tls_cert and tls_key as its client certificate.
func remoteTLS(cfg config.Config) (*tls.Config, error) {
	c := cfg.Cluster
	if !strings.HasPrefix(c.DispatchURL, "https://") {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.TLSCA != "" {
		pool, err := readCA(c.TLSCA)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	}
	if c.TLSCert != "" {
		cert, err := clusterCert(c.TLSCert, c.TLSKey)
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// clusterCert loads cluster.tls_cert and tls_key.
func clusterCert(certFile, keyFile string) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return cert, fmt.Errorf("server: cluster.tls_cert %s / tls_key %s: %w", certFile, keyFile, err)
	}
	return cert, nil
}

// readCA reads the PEM certificates of cluster.tls_ca.
func readCA(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("server: cluster.tls_ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("server: cluster.tls_ca %s: no PEM certificate in it", file)
	}
	return pool, nil
}
