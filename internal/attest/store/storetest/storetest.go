// Package storetest gives tests a real database of each kind the server
// supports: a fresh SQLite file, and a fresh schema in a private
// PostgreSQL cluster (Debian's postgresql package) that the first test to
// need it starts in a temporary directory and Run stops at the end.
//
//	func TestMain(m *testing.M) { os.Exit(storetest.Run(m)) }
//
//	for _, kind := range storetest.Kinds {
//		t.Run(kind, func(t *testing.T) { s := storetest.Open(t, kind); ... })
//	}
//
// GLINT_TEST_POSTGRES=postgres://... uses an existing server instead. If
// PostgreSQL is not installed the postgres cases are skipped with a message
// (scripts/install-deps.sh installs it, so CI never skips).
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/glint-boot/glint/internal/attest/store"
)

// Kinds are the databases every store test runs on.
var Kinds = []string{"sqlite", "postgres"}

var (
	pgOnce sync.Once
	pgURL  string
	pgErr  error
	pgSkip string
	pgProc *exec.Cmd
	pgDir  string
)

// Run runs the tests and stops the PostgreSQL cluster if one was started.
func Run(m *testing.M) int {
	code := m.Run()
	Stop()
	return code
}

// Stop ends the private cluster (also used by benchmarks' own mains).
func Stop() {
	if pgProc != nil && pgProc.Process != nil {
		// To the group: runuser and the postmaster under it. SIGINT is
		// PostgreSQL's "fast shutdown".
		syscall.Kill(-pgProc.Process.Pid, syscall.SIGINT)
		done := make(chan struct{})
		go func() { pgProc.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-pgProc.Process.Pid, syscall.SIGKILL)
		}
		pgProc = nil
	}
	if pgDir != "" {
		os.RemoveAll(pgDir)
		pgDir = ""
	}
}

// URL returns a database URL of kind with nothing in it yet.
func URL(t testing.TB, kind string) string {
	t.Helper()
	switch kind {
	case "sqlite":
		return "sqlite:" + filepath.Join(t.TempDir(), "attest.db")
	case "postgres":
		base := PostgresURL(t)
		schema := "t_" + randomHex(6)
		db, err := sql.Open("pgx", base)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
			t.Fatalf("create schema: %v", err)
		}
		sep := "?"
		if strings.Contains(base, "?") {
			sep = "&"
		}
		return base + sep + "search_path=" + schema
	}
	t.Fatalf("storetest: unknown database kind %q", kind)
	return ""
}

// Open opens a fresh store of kind, closed when the test ends.
func Open(t testing.TB, kind string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), URL(t, kind))
	if err != nil {
		t.Fatalf("open %s store: %v", kind, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// PostgresURL returns the URL of the test cluster, starting it on first use.
func PostgresURL(t testing.TB) string {
	t.Helper()
	pgOnce.Do(func() {
		if u := os.Getenv("GLINT_TEST_POSTGRES"); u != "" {
			pgURL = u
			return
		}
		pgURL, pgSkip, pgErr = startCluster()
	})
	if pgSkip != "" {
		t.Skip(pgSkip)
	}
	if pgErr != nil {
		t.Fatalf("storetest: PostgreSQL: %v", pgErr)
	}
	return pgURL
}

// pgBin finds the newest installed PostgreSQL's programs.
func pgBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("not installed")
}

// startCluster runs initdb and postgres in a temporary directory, listening
// on a free loopback port. PostgreSQL refuses to run as root, so as root it
// runs as the postgres user the Debian package creates.
func startCluster() (url, skip string, err error) {
	bin, err := pgBin()
	if err != nil {
		return "", "PostgreSQL is not installed (apt-get install postgresql); skipping the PostgreSQL half of the store tests", nil
	}
	dir, err := os.MkdirTemp("", "glint-pg-")
	if err != nil {
		return "", "", err
	}
	pgDir = dir
	var asUser []string
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return "", "", errors.New("running as root and there is no postgres user to run PostgreSQL as (the Debian postgresql package creates it)")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return "", "", err
		}
		asUser = []string{"runuser", "-u", "postgres", "--"}
	}
	data := filepath.Join(dir, "data")
	run := func(name string, args ...string) *exec.Cmd {
		full := append(append([]string{}, asUser...), append([]string{filepath.Join(bin, name)}, args...)...)
		return exec.Command(full[0], full[1:]...)
	}
	if out, err := run("initdb", "-D", data, "-U", "glint", "-A", "trust", "-E", "UTF8", "--no-instructions").CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("initdb: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := run("postgres", "-D", data, "-p", strconv.Itoa(port), "-k", dir, "-c", "listen_addresses=127.0.0.1",
		"-c", "max_connections=200", "-c", "shared_buffers=64MB")
	logf, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		return "", "", err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return "", "", fmt.Errorf("start postgres: %w", err)
	}
	pgProc = cmd
	url = fmt.Sprintf("postgres://glint@127.0.0.1:%d/postgres?sslmode=disable", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		db, err := sql.Open("pgx", url)
		if err == nil {
			err = db.Ping()
			db.Close()
		}
		if err == nil {
			return url, "", nil
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
			return "", "", fmt.Errorf("postgres did not accept connections within 30 s: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
