//go:build attestserver

package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log"
	"math/big"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/glint-boot/glint/internal/attest/client"
	"github.com/glint-boot/glint/internal/attest/server"
	"github.com/glint-boot/glint/internal/attest/store"
	"github.com/glint-boot/glint/internal/safefile"
	"github.com/glint-boot/glint/internal/secret"
)

// The attestation server's verbs, built only with -tags attestserver
// (make server): see attest.go for why.

func init() {
	register(command{name: "attest serve", usage: "--listen ADDR --db URL (--tls-auto DIR | --tls-cert F --tls-key F)",
		summary: "run the attestation server and dashboard", run: runAttestServe})
	register(command{name: "attest admin add", usage: "--db URL [--replace] NAME",
		summary: "create a dashboard login (password from the terminal or stdin)", run: runAttestAdminAdd})
	register(command{name: "attest preregister", usage: "--db URL FINGERPRINT [NOTE...]",
		summary: "pre-register a TPM's EK fingerprint (from glint attest ek) for automatic approval", run: runAttestPreregister})
	register(command{name: "attest golden import", usage: "--db URL [--model M] [--label L] FILE",
		summary: "approve golden measurements from a file (a golden set, or glint rom predict --json output)", run: runAttestGoldenImport})
}

func openStore(url string) (*store.Store, error) {
	if url == "" {
		return nil, usageErrorf("--db URL is required: sqlite:PATH or postgres://USER@HOST/DB")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return store.Open(ctx, url)
}

func runAttestServe(e *env, args []string) error {
	fs := commandFlags(e, "attest serve")
	listen := fs.String("listen", ":8443", "address to listen on")
	dbURL := fs.String("db", "", "database: sqlite:PATH or postgres://USER@HOST/DB")
	tlsAuto := fs.String("tls-auto", "", "keep a self-signed key and certificate in this directory (made on first start) and print its pin")
	tlsNames := fs.String("tls-names", "", "comma-separated host names and addresses for --tls-auto's certificate (default: this host's name, localhost, 127.0.0.1)")
	tlsCert := fs.String("tls-cert", "", "certificate chain (PEM)")
	tlsKey := fs.String("tls-key", "", "private key (PEM)")
	insecure := fs.Bool("insecure-http", false, "serve plain HTTP on a loopback address (tests and a TLS-terminating proxy on the same host only)")
	ekRoots := fs.String("ek-roots", "", "approve TPMs whose EK certificate chains to a CA in this PEM file (TPM manufacturers' roots and intermediates)")
	preregistered := fs.Bool("approve-preregistered", false, "approve TPMs whose EK fingerprint was pre-registered")
	staleAfter := fs.Duration("stale-after", 15*time.Minute, "flag an approved device whose last report is older")
	clientRate := fs.Int("client-rate", 200, "requests per second one client address may send (a site's NAT gateway counts as one client)")
	deviceInterval := fs.Duration("device-interval", 10*time.Second, "after a burst of 6, a device may report once per this interval")
	unlockKey := fs.String("unlock-key", "", "enable network-bound disk unlock; the key (32 bytes) that encrypts the disk-key halves at rest is kept in this file (made on first start)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *clientRate < 1 || *deviceInterval <= 0 {
		return usageErrorf("--client-rate and --device-interval must be positive")
	}
	cfg := server.Config{ApprovePreregistered: *preregistered, StaleAfter: *staleAfter, Log: log.New(e.stderr, "", log.LstdFlags),
		RequestsPerClient: server.Rate{Every: time.Second / time.Duration(*clientRate), Burst: 2 * *clientRate},
		ReportsPerDevice:  server.Rate{Every: *deviceInterval, Burst: server.DefaultReportsPerDevice.Burst}}
	if *ekRoots != "" {
		certs, err := readCerts(*ekRoots)
		if err != nil {
			return err
		}
		for _, c := range certs {
			if c.Subject.String() == c.Issuer.String() {
				cfg.EKRoots = append(cfg.EKRoots, c)
			} else {
				cfg.EKIntermediates = append(cfg.EKIntermediates, c)
			}
		}
		if len(cfg.EKRoots) == 0 {
			return fmt.Errorf("%s holds no self-signed root certificate", *ekRoots)
		}
	}
	if *unlockKey != "" {
		k, err := loadOrMakeKey(*unlockKey)
		if err != nil {
			return err
		}
		cfg.UnlockKey = k
	}
	var tlsConfig *tls.Config
	switch {
	case *insecure:
		host, _, err := net.SplitHostPort(*listen)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			return usageErrorf("--insecure-http listens on loopback only (e.g. 127.0.0.1:8080), not %q", *listen)
		}
	case *tlsAuto != "":
		cert, pin, err := autoCert(*tlsAuto, *tlsNames)
		if err != nil {
			return err
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		fmt.Fprintf(e.stderr, "glint attest: TLS key pin %s (devices: glint attest enroll --server https://HOST%s --pin %s)\n", pin, portOf(*listen), pin)
	case *tlsCert != "" && *tlsKey != "":
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			return err
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	default:
		return usageErrorf("choose TLS: --tls-auto DIR, or --tls-cert FILE --tls-key FILE")
	}
	s, err := openStore(*dbURL)
	if err != nil {
		return err
	}
	defer s.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := server.New(ctx, s, cfg)
	if err != nil {
		return err
	}
	if n, err := s.AdminCount(ctx); err == nil && n == 0 {
		fmt.Fprintf(e.stderr, "glint attest: no administrator yet. Create the first login with:\n    glint attest admin add --db %s NAME\n", s.URL)
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "glint attest: serving on %s (%s database, schema %d)\n", l.Addr(), s.Kind(), store.SchemaVersion())
	return srv.Serve(ctx, l, tlsConfig)
}

func portOf(listen string) string {
	if _, p, err := net.SplitHostPort(listen); err == nil && p != "443" {
		return ":" + p
	}
	return ""
}

func readCerts(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return out, nil
}

func loadOrMakeKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) != 32 {
			return nil, fmt.Errorf("%s: %d bytes, an unlock key is 32", path, len(b))
		}
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	k := make([]byte, 32)
	rand.Read(k)
	if err := safefile.Write(path, k, 0o600); err != nil {
		return nil, err
	}
	return k, nil
}

// autoCert keeps a P-256 key and a self-signed certificate in dir, made on
// first use; devices trust it by its pin.
func autoCert(dir, names string) (tls.Certificate, string, error) {
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if cert, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil {
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			return tls.Certificate{}, "", err
		}
		return cert, client.PinOf(leaf), nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, "", err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	host, _ := os.Hostname()
	list := []string{host, "localhost", "127.0.0.1", "::1"}
	if names != "" {
		list = strings.Split(names, ",")
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "glint attestation server " + host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(20, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, n := range list {
		n = strings.TrimSpace(n)
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if n != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	if err := safefile.Write(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return tls.Certificate{}, "", err
	}
	if err := safefile.Write(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return tls.Certificate{}, "", err
	}
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	leaf, _ := x509.ParseCertificate(der)
	return cert, client.PinOf(leaf), nil
}

func runAttestAdminAdd(e *env, args []string) error {
	fs := commandFlags(e, "attest admin add")
	dbURL := fs.String("db", "", "database: sqlite:PATH or postgres://USER@HOST/DB")
	replace := fs.Bool("replace", false, "set a new password for an existing login (ends its sessions)")
	passFile := fs.String("password-file", "", "read the password from this file instead of asking")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErrorf("attest admin add needs the login NAME")
	}
	name := fs.Arg(0)
	pw, err := readSecretLine(e, *passFile, "Password for "+name+": ")
	if err != nil {
		return err
	}
	defer secret.Wipe(pw)
	hash, err := server.HashPassword(pw)
	if err != nil {
		return err
	}
	s, err := openStore(*dbURL)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.AddAdmin(context.Background(), name, hash, *replace, time.Now()); err != nil {
		if errors.Is(err, store.ErrExists) {
			return fmt.Errorf("login %q exists; use --replace to set a new password", name)
		}
		return err
	}
	fmt.Fprintf(e.stdout, "login %q ready\n", name)
	return nil
}

func runAttestPreregister(e *env, args []string) error {
	fs := commandFlags(e, "attest preregister")
	dbURL := fs.String("db", "", "database: sqlite:PATH or postgres://USER@HOST/DB")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() < 1 || len(fs.Arg(0)) != 64 {
		return usageErrorf("attest preregister needs an EK FINGERPRINT (64 hex digits, from glint attest ek)")
	}
	s, err := openStore(*dbURL)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Preregister(context.Background(), strings.ToLower(fs.Arg(0)), strings.Join(fs.Args()[1:], " "), "cli", time.Now())
}

func runAttestGoldenImport(e *env, args []string) error {
	fs := commandFlags(e, "attest golden import")
	dbURL := fs.String("db", "", "database: sqlite:PATH or postgres://USER@HOST/DB")
	model := fs.String("model", "", "the machine model the set is for (required for glint rom predict output)")
	label := fs.String("label", "", "the firmware image's name (default: from the file)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErrorf("attest golden import needs the FILE")
	}
	raw, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	g, err := server.ParseGoldenFile(raw, *model, *label)
	if err != nil {
		return err
	}
	s, err := openStore(*dbURL)
	if err != nil {
		return err
	}
	defer s.Close()
	id, err := s.AddGolden(context.Background(), g, "cli", time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "golden set %d approved for %q: %q (%d PCRs, %d events)\n", id, g.Model, g.Label, len(g.PCRs), len(g.Events))
	return nil
}
