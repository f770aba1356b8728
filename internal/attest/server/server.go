// Package server is glint's attestation server: the device API (enrolment
// with credential activation, challenge, report, network-bound disk
// unlock), the administrators' dashboard (server-rendered HTML, no
// JavaScript) and Prometheus metrics, over one HTTPS listener.
//
//	s, err := store.Open(ctx, "sqlite:/var/lib/glint-attest/attest.db")
//	srv, err := server.New(ctx, s, server.Config{StaleAfter: 15 * time.Minute})
//	err = srv.Serve(ctx, listener, tlsConfig)
//
// # What a request can and cannot do
//
// Nothing a device sends is believed before its TPM signature verifies:
//
//   - /v1/challenge issues a stateless token (attest.Tokens): no database
//     access, an HMAC per request.
//   - /v1/enroll checks the keys' form and answers with a credential for
//     the TPM (tpm.MakeCredential); nothing is stored. /v1/activate stores
//     the device only when the secret inside that credential comes back,
//     which proves the attestation key lives in the TPM of the endorsement
//     key; the enrolment is approved by policy (EK certificate chain to a
//     configured manufacturer CA, or an EK pre-registered by the
//     organization's flashing station) or waits for an administrator.
//   - /v1/report verifies the quote's signature and nonce against the
//     enrolled key FIRST; only then is the event log parsed (with caps) and
//     the result recorded (one transaction, refused if the token was
//     already used).
//
// A malformed, unauthenticated, replayed or rate-limited request changes
// nothing. Bodies are capped before they are read (wire.MaxMessage), slow
// clients are cut off by the HTTP timeouts, work in flight is bounded, and
// per-address and per-device token buckets answer 429 beyond their rates.
//
// Administrators log in with a name and password (argon2id hashes,
// server-side sessions in the database, HttpOnly SameSite=Strict cookies, a
// CSRF token in every form); every change they make is in the audit log.
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/glint-boot/glint/internal/attest"
	"github.com/glint-boot/glint/internal/attest/store"
)

// Config is the server's policy. The zero value is usable: manual approval
// of every enrolment, stale after 15 minutes, no disk unlock.
type Config struct {
	// EKRoots, if set, approve at enrolment every TPM whose EK certificate
	// chains to one of them (through EKIntermediates).
	EKRoots         []*x509.Certificate
	EKIntermediates []*x509.Certificate
	// ApprovePreregistered approves TPMs whose EK fingerprint was
	// pre-registered (glint attest preregister, or the dashboard).
	ApprovePreregistered bool
	// StaleAfter flags an approved device whose last report is older.
	StaleAfter time.Duration
	// UnlockKey (32 bytes) encrypts the devices' disk-key halves at rest;
	// nil disables network-bound disk unlock.
	UnlockKey []byte
	// Limits; zero picks the defaults below.
	ReportsPerDevice  Rate // per device, after its quote verified
	RequestsPerClient Rate // per client address, before anything else
	LoginsPerClient   Rate
	MaxInFlight       int // reports and enrolments verified at once
	// GoldenCache is how long a replica keeps a model's golden sets before
	// reading them again (default 5 s): a set approved on another replica
	// counts within this time.
	GoldenCache time.Duration
	// Log receives one line per refused request and per decision; nil logs
	// to the standard logger.
	Log *log.Logger
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
}

// Rate is a token bucket: Burst requests at once, then one per Every.
type Rate struct {
	Every time.Duration
	Burst int
}

// Defaults, sized for 10,000 devices reporting every 5 minutes with room
// to spare: a device may report 6 times at once (a boot, then the timer)
// and then once per 10 s; one client address (a NAT gateway in front of a
// site) may send 200 requests a second.
var (
	DefaultReportsPerDevice  = Rate{Every: 10 * time.Second, Burst: 6}
	DefaultRequestsPerClient = Rate{Every: 5 * time.Millisecond, Burst: 400}
	DefaultLoginsPerClient   = Rate{Every: 12 * time.Second, Burst: 10}
)

// Server serves the device API, the dashboard and metrics.
type Server struct {
	store   *store.Store
	cfg     Config
	tokens  *attest.Tokens
	csrfKey []byte
	log     *log.Logger
	now     func() time.Time

	inFlight   chan struct{}
	perDevice  *limiter
	perClient  *limiter
	logins     *limiter
	passwords  chan struct{} // argon2id checks at once (each takes ~20 MiB)
	metrics    *metrics
	goldens    goldenCache
	handler    http.Handler
	statsMu    sync.Mutex
	statsAt    time.Time
	statsCache *store.Stats
}

// New prepares a server on s. The token and CSRF keys are shared by every
// replica through the database.
func New(ctx context.Context, s *store.Store, cfg Config) (*Server, error) {
	if cfg.StaleAfter == 0 {
		cfg.StaleAfter = 15 * time.Minute
	}
	if cfg.ReportsPerDevice.Every == 0 {
		cfg.ReportsPerDevice = DefaultReportsPerDevice
	}
	if cfg.RequestsPerClient.Every == 0 {
		cfg.RequestsPerClient = DefaultRequestsPerClient
	}
	if cfg.LoginsPerClient.Every == 0 {
		cfg.LoginsPerClient = DefaultLoginsPerClient
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = 4 * runtime.GOMAXPROCS(0)
	}
	if cfg.UnlockKey != nil && len(cfg.UnlockKey) != 32 {
		return nil, errors.New("the unlock key must be 32 bytes")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = log.Default()
	}
	tk, err := s.ServerKey(ctx, "tokens", 32)
	if err != nil {
		return nil, fmt.Errorf("server keys: %w", err)
	}
	ck, err := s.ServerKey(ctx, "csrf", 32)
	if err != nil {
		return nil, fmt.Errorf("server keys: %w", err)
	}
	tokens, err := attest.NewTokens(tk, cfg.Now)
	if err != nil {
		return nil, err
	}
	srv := &Server{
		store: s, cfg: cfg, tokens: tokens, csrfKey: ck, log: cfg.Log, now: cfg.Now,
		inFlight:  make(chan struct{}, cfg.MaxInFlight),
		perDevice: newLimiter(cfg.ReportsPerDevice, cfg.Now),
		perClient: newLimiter(cfg.RequestsPerClient, cfg.Now),
		logins:    newLimiter(cfg.LoginsPerClient, cfg.Now),
		passwords: make(chan struct{}, 2),
		metrics:   newMetrics(),
	}
	srv.goldens.ttl = cfg.GoldenCache
	if srv.goldens.ttl == 0 {
		srv.goldens.ttl = 5 * time.Second
	}
	srv.handler = srv.routes()
	return srv, nil
}

// Handler is the server's HTTP handler (for tests and custom listeners).
func (s *Server) Handler() http.Handler { return s.handler }

// Serve answers on l until ctx ends, over TLS if tlsConfig is set. Only
// tests serve plain HTTP.
func (s *Server) Serve(ctx context.Context, l net.Listener, tlsConfig *tls.Config) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          log.New(io.Discard, "", 0), // TLS handshake noise from scanners
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	if tlsConfig != nil {
		l = tls.NewListener(l, tlsConfig)
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	select {
	case <-ctx.Done():
		shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hs.Shutdown(shut)
		return nil
	case err := <-errc:
		return err
	}
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/challenge", s.device(s.handleChallenge))
	mux.HandleFunc("POST /v1/enroll", s.device(s.handleEnroll))
	mux.HandleFunc("POST /v1/activate", s.device(s.handleActivate))
	mux.HandleFunc("POST /v1/report", s.device(s.handleReport))
	mux.HandleFunc("GET /metrics", s.handleMetrics)
	mux.HandleFunc("GET /healthz", s.handleHealth)
	s.webRoutes(mux)
	return s.securityHeaders(mux)
}

func (s *Server) securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, err := s.store.AdminCount(ctx); err != nil {
		http.Error(w, "database unavailable", http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, "ok\n")
}

// clientAddr is the address rate limits count against: the TCP peer. A
// deployment behind a load balancer sets limits per balancer accordingly.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
