package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/glint-boot/glint/internal/attest"
	"github.com/glint-boot/glint/internal/attest/store"
	"github.com/glint-boot/glint/internal/attest/wire"
	"github.com/glint-boot/glint/internal/tpm"
)

// Token lifetimes: a report's token must come back within minutes (a
// quote takes a TPM well under a second); an enrolment waits for a slow
// TPM 1.2 and a person.
const (
	reportTokenAge = 5 * time.Minute
	enrollTokenAge = 10 * time.Minute
)

// refusal is a request the server answers with an error and no change.
type refusal struct {
	status int
	reason string // sent to the device and logged
	metric string // refusals_total{reason=...}
}

func (r *refusal) Error() string { return r.reason }

func refuse(status int, metric, format string, a ...any) *refusal {
	return &refusal{status: status, metric: metric, reason: fmt.Sprintf(format, a...)}
}

type deviceHandler func(ctx context.Context, r *http.Request, body []byte) ([]byte, error)

// device wraps a device API handler: per-address rate limit, a capped
// body, the content type, bounded work in flight, and errors as
// wire.ErrorMessage.
func (s *Server) device(h deviceHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		route := r.URL.Path
		status := http.StatusOK
		defer func() { s.metrics.request(route, status, time.Since(start)) }()
		fail := func(e *refusal) {
			status = e.status
			s.metrics.refused(e.metric)
			if e.status == http.StatusTooManyRequests || e.status == http.StatusServiceUnavailable {
				w.Header().Set("Retry-After", "10")
			}
			w.Header().Set("Content-Type", wire.ContentType)
			w.WriteHeader(e.status)
			w.Write((&wire.ErrorMessage{Code: uint16(e.status), Message: e.reason}).Marshal())
			if e.metric != "rate-limited" {
				s.log.Printf("attest: %s from %s refused: %s", route, clientAddr(r), e.reason)
			}
		}
		if !s.perClient.allow(clientAddr(r)) {
			fail(refuse(http.StatusTooManyRequests, "rate-limited", "too many requests from this address; retry later"))
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != wire.ContentType {
			fail(refuse(http.StatusUnsupportedMediaType, "malformed", "content type %q, want %s", ct, wire.ContentType))
			return
		}
		if r.ContentLength > wire.MaxMessage {
			fail(refuse(http.StatusRequestEntityTooLarge, "too-large", "%d bytes, limit %d", r.ContentLength, wire.MaxMessage))
			return
		}
		select {
		case s.inFlight <- struct{}{}:
			defer func() { <-s.inFlight }()
		default:
			fail(refuse(http.StatusServiceUnavailable, "busy", "the server is busy; retry in a few seconds"))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, wire.MaxMessage))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				fail(refuse(http.StatusRequestEntityTooLarge, "too-large", "more than %d bytes", wire.MaxMessage))
			} else {
				fail(refuse(http.StatusBadRequest, "malformed", "reading the request: %v", err))
			}
			return
		}
		rsp, err := h(r.Context(), r, body)
		if err != nil {
			var rf *refusal
			var werr *wire.Error
			switch {
			case errors.As(err, &rf):
				fail(rf)
			case errors.As(err, &werr):
				fail(refuse(http.StatusBadRequest, "malformed", "%v", werr))
			default:
				s.log.Printf("attest: %s: internal error: %v", route, err)
				fail(refuse(http.StatusInternalServerError, "internal", "internal server error; the administrator's log has the details"))
			}
			return
		}
		w.Header().Set("Content-Type", wire.ContentType)
		w.Write(rsp)
	}
}

func (s *Server) handleChallenge(ctx context.Context, r *http.Request, body []byte) ([]byte, error) {
	req, err := wire.DecodeChallengeRequest(body)
	if err != nil {
		return nil, err
	}
	return (&wire.Challenge{Token: s.tokens.Issue(req.Purpose, req.DeviceID)}).Marshal(), nil
}

// enrolment is an identity whose keys parse and whose certificate, if
// any, is for its EK.
type enrolment struct {
	ek          *tpm.EK
	fingerprint string
	cert        *x509.Certificate
	subject     []byte // what the enrolment token binds: SHA-256 of the identity
}

func (s *Server) checkIdentity(id *wire.Identity) (*enrolment, error) {
	v := tpm.Version(id.TPMVersion)
	ek := &tpm.EK{Version: v, Public: id.EKPublic, Certificate: id.EKCertificate}
	fp, err := ek.Fingerprint()
	if err != nil {
		return nil, refuse(http.StatusBadRequest, "bad-key", "endorsement key: %v", err)
	}
	if err := tpm.CheckAKPublic(v, id.AKPublic); err != nil {
		return nil, refuse(http.StatusBadRequest, "bad-key", "attestation key: %v", err)
	}
	e := &enrolment{ek: ek, fingerprint: fp}
	if len(id.EKCertificate) > 0 {
		if e.cert, err = ek.ParseCertificate(); err != nil {
			return nil, refuse(http.StatusBadRequest, "bad-key", "%v", err)
		}
	}
	enc := (&wire.EnrollRequest{Identity: *id}).Marshal()
	sum := sha256.Sum256(enc)
	e.subject = sum[:]
	return e, nil
}

func (s *Server) handleEnroll(ctx context.Context, r *http.Request, body []byte) ([]byte, error) {
	req, err := wire.DecodeEnrollRequest(body)
	if err != nil {
		return nil, err
	}
	e, err := s.checkIdentity(&req.Identity)
	if err != nil {
		return nil, err
	}
	token := s.tokens.Issue(wire.PurposeEnroll, e.subject)
	secret := s.tokens.ActivationSecret(token)
	cred, err := tpm.MakeCredential(e.ek, req.AKPublic, secret, rand.Reader)
	if err != nil {
		return nil, refuse(http.StatusBadRequest, "bad-key", "%v", err)
	}
	return (&wire.EnrollChallenge{Token: token, Credential: wire.Credential{EKEncrypted: cred.EKEncrypted, Blob: cred.Blob}}).Marshal(), nil
}

func (s *Server) handleActivate(ctx context.Context, r *http.Request, body []byte) ([]byte, error) {
	req, err := wire.DecodeActivateRequest(body)
	if err != nil {
		return nil, err
	}
	e, err := s.checkIdentity(&req.Identity)
	if err != nil {
		return nil, err
	}
	if _, err := s.tokens.Check(req.Token, wire.PurposeEnroll, e.subject, enrollTokenAge); err != nil {
		return nil, refuse(http.StatusUnauthorized, "bad-token", "%v", err)
	}
	if !tpm.EqualSecret(req.Secret, s.tokens.ActivationSecret(req.Token)) {
		return nil, refuse(http.StatusUnauthorized, "bad-activation", "the activation secret is wrong: the attestation key is not in the TPM of this endorsement key")
	}
	// Proven: the AK lives in the EK's TPM. Decide the status.
	status, by := store.StatusPending, "enrolment (waiting for an administrator)"
	if e.cert != nil && len(s.cfg.EKRoots) > 0 {
		if err := tpm.VerifyEKCertificate(e.cert, s.cfg.EKRoots, s.cfg.EKIntermediates, s.now()); err == nil {
			status, by = store.StatusApproved, "policy: EK certificate from a trusted manufacturer CA"
		} else {
			s.log.Printf("attest: enrolment of %s (%s): %v", e.fingerprint, req.Hostname, err)
		}
	}
	if status == store.StatusPending && s.cfg.ApprovePreregistered {
		ok, err := s.store.IsPreregistered(ctx, e.fingerprint)
		if err != nil {
			return nil, err
		}
		if ok {
			status, by = store.StatusApproved, "policy: pre-registered EK"
		}
	}
	devID := sha256.Sum256(req.AKPublic)
	d, err := s.store.Enroll(ctx, &store.Device{
		DeviceID: devID[:], EKFingerprint: e.fingerprint, EKPublic: bytes.Clone(req.EKPublic), EKCertificate: bytes.Clone(req.EKCertificate),
		AKPublic: bytes.Clone(req.AKPublic), TPMVersion: int(req.TPMVersion), Hostname: req.Hostname, Model: req.Model, Firmware: req.Firmware,
	}, status, by, s.now())
	if err != nil {
		return nil, err
	}
	s.metrics.enrolled(d.Status)
	msg := "enrolled and approved; glint attest report will now be judged against the golden measurements of model " + strconv.Quote(d.Model)
	if d.Status != store.StatusApproved {
		msg = fmt.Sprintf("enrolled, %s: an administrator must approve device %s (EK %s) on the dashboard", d.Status, hex.EncodeToString(d.DeviceID)[:16], e.fingerprint[:16])
	}
	s.log.Printf("attest: enrolled %x %q (%s) from %s: %s (%s)", d.DeviceID[:8], d.Hostname, d.Model, clientAddr(r), d.Status, d.StatusBy)
	return (&wire.Enrolled{DeviceID: d.DeviceID, Status: d.Status, Message: msg}).Marshal(), nil
}

func (s *Server) handleReport(ctx context.Context, r *http.Request, body []byte) ([]byte, error) {
	req, err := wire.DecodeReportRequest(body)
	if err != nil {
		return nil, err
	}
	dev, err := s.store.DeviceByID(ctx, req.DeviceID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, refuse(http.StatusForbidden, "unknown-device", "device %x is not enrolled here (glint attest enroll first)", req.DeviceID[:8])
	}
	if err != nil {
		return nil, err
	}
	if dev.Status == store.StatusRejected {
		return nil, refuse(http.StatusForbidden, "rejected", "an administrator rejected this device's enrolment")
	}
	issued, err := s.tokens.Check(req.Token, req.Purpose, req.DeviceID, reportTokenAge)
	if err != nil {
		return nil, refuse(http.StatusUnauthorized, "bad-token", "%v", err)
	}
	verifyStart := time.Now()
	bank, pcrs, err := attest.VerifyQuote(tpm.Version(dev.TPMVersion), dev.AKPublic, req)
	if err != nil {
		return nil, refuse(http.StatusUnauthorized, "bad-quote", "%v", err)
	}
	// From here on the request is the device's own.
	if !s.perDevice.allow(string(req.DeviceID)) {
		return nil, refuse(http.StatusTooManyRequests, "rate-limited", "this device reports too often; retry later")
	}
	if len(req.HostChecks) > 0 && !json.Valid(req.HostChecks) {
		return nil, refuse(http.StatusBadRequest, "malformed", "host_checks is not JSON")
	}
	goldens, err := s.goldens.get(ctx, s.store, dev.Model)
	if err != nil {
		return nil, err
	}
	a := attest.Appraise(bank, pcrs, req.EventLog, goldens, req.Firmware)
	if dev.Status != store.StatusApproved {
		a.Verdict = wire.NotApproved
	}
	s.metrics.verified(a.Verdict, time.Since(verifyStart))
	rep, err := reportRow(dev.Row, req, a)
	if err != nil {
		return nil, err
	}
	if _, err := s.store.RecordReport(ctx, rep, issued.UnixNano(), req.EventLog, s.now()); err != nil {
		if errors.Is(err, store.ErrReplay) {
			return nil, refuse(http.StatusConflict, "replay", "%v", err)
		}
		return nil, err
	}
	res := &wire.ReportResult{Verdict: a.Verdict, Summary: a.Summary()}
	if req.Purpose == wire.PurposeUnlock || req.Purpose == wire.PurposeUnlockSetup {
		if err := s.releaseUnlock(ctx, dev, req.Purpose, a, res); err != nil {
			return nil, err
		}
	}
	return res.Marshal(), nil
}

// differences is the stored JSON of an appraisal's details.
type differences struct {
	PCRDiffs    []attest.PCRDiff   `json:"pcr_diffs,omitempty"`
	EventDiffs  []attest.EventDiff `json:"event_diffs,omitempty"`
	Unexplained []int              `json:"unexplained,omitempty"`
	LogError    string             `json:"log_error,omitempty"`
}

func reportRow(device int64, req *wire.ReportRequest, a *attest.Appraisal) (*store.Report, error) {
	pcrs, err := store.EncodePCRs(a.PCRs)
	if err != nil {
		return nil, err
	}
	diff, err := json.Marshal(differences{PCRDiffs: a.PCRDiffs, EventDiffs: a.EventDiffs, Unexplained: a.Unexplained, LogError: a.LogError})
	if err != nil {
		return nil, err
	}
	var golden int64
	if a.Golden != nil {
		golden = a.Golden.ID
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s|%s|%d|%s|%d|%s|", req.Purpose, a.Verdict, a.Bank, pcrs, golden, req.Firmware)
	h.Write(a.LogSHA256)
	h.Write(req.HostChecks)
	return &store.Report{Device: device, Purpose: req.Purpose.String(), Verdict: a.Verdict.String(), Bank: int(a.Bank), PCRs: pcrs,
		GoldenID: golden, Differences: string(diff), Summary: a.Summary(), LogSHA256: a.LogSHA256, EventCount: a.EventCount,
		HostChecks: string(req.HostChecks), Firmware: req.Firmware, Fingerprint: h.Sum(nil)}, nil
}
