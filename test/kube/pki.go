package kube

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pki is the cluster's trust: one CA that signs the API server's serving
// certificate (pods check it through the kube-root-ca.crt ConfigMap the
// controller-manager publishes), and the key pair that signs and checks
// service account tokens. Clients authenticate with static tokens, so no
// client certificates are needed.
type pki struct {
	dir string
}

func (p pki) caCert() string     { return filepath.Join(p.dir, "ca.crt") }
func (p pki) serverCert() string { return filepath.Join(p.dir, "apiserver.crt") }
func (p pki) serverKey() string  { return filepath.Join(p.dir, "apiserver.key") }
func (p pki) saKey() string      { return filepath.Join(p.dir, "sa.key") }
func (p pki) saPub() string      { return filepath.Join(p.dir, "sa.pub") }

// make writes the CA, the API server's certificate for names and ips, and
// the service account keys.
func (p pki) make(names []string, ips []net.IP) error {
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTmpl := certTemplate(1, "netshim-kube-ca")
	caTmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	caTmpl.BasicConstraintsValid, caTmpl.IsCA = true, true
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	srvTmpl := serverTemplate(2, "kube-apiserver", names, ips)
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("API server certificate: %w", err)
	}
	// Service account tokens: RS256, the algorithm every client expects.
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	saPub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return err
	}
	srvKeyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		return err
	}
	files := []struct {
		path, typ string
		der       []byte
	}{
		{p.caCert(), "CERTIFICATE", caDER},
		{p.serverCert(), "CERTIFICATE", srvDER},
		{p.serverKey(), "EC PRIVATE KEY", srvKeyDER},
		{p.saKey(), "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(saKey)},
		{p.saPub(), "PUBLIC KEY", saPub},
	}
	for _, f := range files {
		data := pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der})
		if err := os.WriteFile(f.path, data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// selfSigned is a certificate and key for localhost, as agnhost's porter
// serves TLS with (upstream's image carries one at /localhost.crt): its
// clients, the API server's proxy among them, do not verify it.
func selfSigned() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := serverTemplate(1, "localhost", []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")})
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

// certTemplate is a certificate valid for ten years from an hour ago (the
// hour forgives a clock a little behind).
func certTemplate(serial int64, name string) *x509.Certificate {
	from := time.Now().Add(-time.Hour)
	return &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    from,
		NotAfter:     from.Add(10 * 365 * 24 * time.Hour),
	}
}

// serverTemplate is a TLS server's certificate for names and ips.
func serverTemplate(serial int64, name string, names []string, ips []net.IP) *x509.Certificate {
	t := certTemplate(serial, name)
	t.KeyUsage = x509.KeyUsageDigitalSignature
	t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	t.DNSNames, t.IPAddresses = names, ips
	return t
}
