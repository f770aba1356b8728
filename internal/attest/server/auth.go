package server

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/glint-boot/glint/internal/attest/store"
	"github.com/glint-boot/glint/internal/secret"
)

// Password hashing: argon2id with the parameters OWASP's Password Storage
// Cheat Sheet gives as a minimum (m=19 MiB, t=2, p=1), encoded in the PHC
// string format so they can be raised later without invalidating hashes.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
	// minPassword is NIST SP 800-63B's minimum for a memorised secret.
	minPassword = 8
	// sessionLife: a working day, then log in again.
	sessionLife = 12 * time.Hour
	cookieName  = "glint_session"
)

// HashPassword returns the encoded argon2id hash of password.
func HashPassword(password []byte) (string, error) {
	if len(password) < minPassword {
		return "", fmt.Errorf("the password must have at least %d characters", minPassword)
	}
	salt := make([]byte, 16)
	rand.Read(salt)
	key := argon2.IDKey(password, salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// checkPassword compares password with an encoded hash in constant time.
func checkPassword(encoded string, password []byte) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != "v=19" {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m > 1<<20 || t > 10 || p == 0 || p > 8 {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 || len(want) > 64 {
		return false
	}
	got := argon2.IDKey(password, salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// dummyHash is checked when the login name does not exist, so a wrong name
// and a wrong password take the same time.
var dummyHash, _ = HashPassword([]byte("glint-no-such-admin"))

type ctxKey struct{}

type session struct {
	admin *store.Admin
	token []byte
}

func sessionFrom(ctx context.Context) *session {
	s, _ := ctx.Value(ctxKey{}).(*session)
	return s
}

func hashToken(tok []byte) []byte {
	h := sha256.Sum256(tok)
	return h[:]
}

// csrfToken is the form token of a session: an HMAC of the session token,
// so it is worthless without the cookie and needs no storage.
func (s *Server) csrfToken(sess *session) string {
	m := hmac.New(sha256.New, s.csrfKey)
	m.Write([]byte("glint csrf v1"))
	m.Write(sess.token)
	return hex.EncodeToString(m.Sum(nil))
}

// admin wraps a dashboard handler: a valid session is required (else the
// login page), and every POST must carry the session's CSRF token.
func (s *Server) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(cookieName)
		var sess *session
		if err == nil {
			if tok, err := base64.RawURLEncoding.DecodeString(c.Value); err == nil && len(tok) == 32 {
				if a, err := s.store.SessionAdmin(r.Context(), hashToken(tok), s.now()); err == nil {
					sess = &session{admin: a, token: tok}
				}
			}
		}
		if sess == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/login?next="+urlQueryEscape(r.URL.Path), http.StatusSeeOther)
			} else {
				http.Error(w, "not logged in", http.StatusUnauthorized)
			}
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
			if err := r.ParseMultipartForm(maxFormBody); err != nil && !errors.Is(err, http.ErrNotMultipart) {
				http.Error(w, "malformed form: "+err.Error(), http.StatusBadRequest)
				return
			}
			if !hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(s.csrfToken(sess))) {
				http.Error(w, "the form's CSRF token is missing or wrong; reload the page", http.StatusForbidden)
				return
			}
		}
		h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, sess)))
	}
}

// maxFormBody bounds a dashboard form (a golden-set import is the largest).
const maxFormBody = 4 << 20

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		s.render(w, r, "login", map[string]any{"Next": safeNext(r.URL.Query().Get("next"))})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "malformed form", http.StatusBadRequest)
		return
	}
	name := r.PostFormValue("name")
	next := safeNext(r.PostFormValue("next"))
	fail := func(status int, msg string) {
		w.WriteHeader(status)
		s.render(w, r, "login", map[string]any{"Error": msg, "Name": name, "Next": next})
	}
	if !s.logins.allow(clientAddr(r)) || !s.logins.allow("name:"+name) {
		s.metrics.refused("login-rate-limited")
		fail(http.StatusTooManyRequests, "Too many login attempts; wait a minute.")
		return
	}
	password := []byte(r.PostFormValue("password"))
	defer secret.Wipe(password)
	select {
	case s.passwords <- struct{}{}:
		defer func() { <-s.passwords }()
	case <-r.Context().Done():
		return
	}
	a, err := s.store.AdminByName(r.Context(), name)
	hash := dummyHash
	if err == nil {
		hash = a.PasswordHash
	} else if !errors.Is(err, store.ErrNotFound) {
		http.Error(w, "database unavailable", http.StatusServiceUnavailable)
		return
	}
	if !checkPassword(hash, password) || a == nil {
		s.metrics.refused("login-failed")
		s.log.Printf("attest: failed login for %q from %s", name, clientAddr(r))
		fail(http.StatusUnauthorized, "Wrong name or password.")
		return
	}
	tok := make([]byte, 32)
	rand.Read(tok)
	if err := s.store.CreateSession(r.Context(), hashToken(tok), a.ID, s.now().Add(sessionLife)); err != nil {
		http.Error(w, "database unavailable", http.StatusServiceUnavailable)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: base64.RawURLEncoding.EncodeToString(tok), Path: "/",
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: int(sessionLife.Seconds())})
	s.log.Printf("attest: %s logged in from %s", a.Name, clientAddr(r))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	sess := sessionFrom(r.Context())
	s.store.DeleteSession(r.Context(), hashToken(sess.token), s.now())
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// safeNext keeps a post-login redirect on this site.
func safeNext(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n") {
		return "/"
	}
	return p
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }
