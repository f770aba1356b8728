package loadtest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/glint-boot/glint/internal/attest/client"
)

var (
	buildOnce sync.Once
	serverBin string
	buildErr  error
)

// ServerBinary builds glint with the attestation server (-tags
// attestserver) once per test binary and returns its path.
func ServerBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "glint-server-bin-")
		if err != nil {
			buildErr = err
			return
		}
		serverBin = filepath.Join(dir, "glint-server")
		cmd := exec.Command("go", "build", "-tags", "attestserver", "-o", serverBin, "github.com/glint-boot/glint/cmd/glint")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build -tags attestserver: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return serverBin
}

// Server is a glint-server attest serve process.
type Server struct {
	cmd    *exec.Cmd
	URL    string
	Pin    string
	Log    *lockedBuffer
	exited chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var pinLine = regexp.MustCompile(`TLS key pin (sha256:[0-9a-f]{64})`)

// StartServer runs the server on db with TLS kept in tlsDir (the same
// directory across restarts keeps the same key and pin), on a free
// loopback port, and waits until it serves. extra are more serve flags.
func StartServer(t testing.TB, db, tlsDir string, port int, extra ...string) *Server {
	t.Helper()
	if port == 0 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	args := append([]string{"attest", "serve", "--listen", "127.0.0.1:" + strconv.Itoa(port), "--db", db, "--tls-auto", tlsDir, "--tls-names", "127.0.0.1"}, extra...)
	cmd := exec.Command(ServerBinary(t), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{cmd: cmd, URL: fmt.Sprintf("https://127.0.0.1:%d", port), Log: &lockedBuffer{}, exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		said := false
		for sc.Scan() {
			line := sc.Text()
			s.Log.Write([]byte(line + "\n"))
			if m := pinLine.FindStringSubmatch(line); m != nil {
				s.Pin = m[1]
			}
			if strings.Contains(line, "serving on") && !said {
				said = true
				ready <- nil
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() { cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() { s.Kill() })
	select {
	case <-ready:
	case <-s.exited:
		t.Fatalf("glint-server exited at start:\n%s", s.Log)
	case <-time.After(60 * time.Second):
		t.Fatalf("glint-server did not start within 60 s:\n%s", s.Log)
	}
	return s
}

// Endpoint is how a client reaches this server.
func (s *Server) Endpoint() client.Endpoint {
	return client.Endpoint{URL: s.URL, Pin: s.Pin, Timeout: 60 * time.Second}
}

// Pid is the server's process ID (for its CPU time).
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Kill sends SIGKILL (a crash, a power cut for the process) and waits.
func (s *Server) Kill() {
	if s.cmd.Process == nil {
		return
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.exited
}

// CPUTime is the server's user+system CPU time so far (/proc/PID/stat).
func (s *Server) CPUTime() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.Pid()))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may contain spaces).
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc stat")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	// USER_HZ is 100 on every Linux architecture glint runs on.
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}
