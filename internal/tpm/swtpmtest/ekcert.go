package swtpmtest

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/glint-boot/glint/internal/tpm"
)

// EK certificates: StartWithEKCert manufactures the TPM the way a vendor
// does, with an endorsement key and its X.509 certificate in NV, signed by
// a local CA (swtpm_localca, as QEMU/libvirt set-ups do). The CA is made
// once per test binary in a temporary directory; its root and intermediate
// certificates are returned so a verifier test can check the chain.

// CA is the certificate authority that signed the EK certificates.
type CA struct {
	Root         *x509.Certificate
	Intermediate *x509.Certificate
	// RootPEM is the root certificate, as an organization would configure it.
	RootPEM []byte
}

var (
	ekMu       sync.Mutex // one swtpm_localca at a time: it creates the CA on first use
	ekOnce     [2]sync.Once
	ekTemplate [2][]byte
	ekErr      [2]error
	caOnce     sync.Once
	caDir      string
	caErr      error
	theCA      *CA
)

// StartWithEKCert is Start for a TPM that carries an EK certificate.
func StartWithEKCert(t testing.TB, v tpm.Version) (spec string, ca *CA) {
	t.Helper()
	return StartWithEKCertIn(t, v, t.TempDir())
}

// StartWithEKCertIn is StartWithEKCert on the state directory dir; a
// later StartDir on dir power-cycles that TPM.
func StartWithEKCertIn(t testing.TB, v tpm.Version, dir string) (spec string, ca *CA) {
	t.Helper()
	if _, err := exec.LookPath("swtpm_localca"); err != nil {
		t.Skip("swtpm_localca is not installed (apt-get install swtpm-tools); skipping the EK certificate test")
	}
	i := 0
	if v == tpm.Version20 {
		i = 1
	}
	ekOnce[i].Do(func() { ekTemplate[i], ekErr[i] = makeEKTemplate(v) })
	if ekErr[i] != nil {
		t.Fatalf("swtpmtest: %v", ekErr[i])
	}
	if err := os.WriteFile(filepath.Join(dir, stateFile(v)), ekTemplate[i], 0o600); err != nil {
		t.Fatal(err)
	}
	return StartDir(t, v, dir), theCA
}

// StartDistinctWithEKCert manufactures a TPM of its own in dir (about a
// second or two: swtpm_setup makes the EKs and their certificates), for
// tests that need two TPMs with different endorsement keys; StartWithEKCert
// copies one template, so all its TPMs share their seeds and keys.
func StartDistinctWithEKCert(t testing.TB, v tpm.Version, dir string) (spec string, ca *CA) {
	t.Helper()
	if _, err := exec.LookPath("swtpm_localca"); err != nil {
		t.Skip("swtpm_localca is not installed (apt-get install swtpm-tools); skipping the EK certificate test")
	}
	state, err := manufactureEK(v)
	if err != nil {
		t.Fatalf("swtpmtest: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, stateFile(v)), state, 0o600); err != nil {
		t.Fatal(err)
	}
	return StartDir(t, v, dir), theCA
}

func localCA() (string, error) {
	caOnce.Do(func() {
		caDir, caErr = os.MkdirTemp("", "glint-swtpm-ca-")
		if caErr != nil {
			return
		}
		conf := fmt.Sprintf("statedir = %[1]s\nsigningkey = %[1]s/signkey.pem\nissuercert = %[1]s/issuercert.pem\ncertserial = %[1]s/certserial\n", caDir)
		opts := "--platform-manufacturer glint\n--platform-version 2.1\n--platform-model QEMU\n"
		setup := fmt.Sprintf("create_certs_tool = swtpm_localca\ncreate_certs_tool_config = %[1]s/localca.conf\ncreate_certs_tool_options = %[1]s/localca.options\n", caDir)
		for name, body := range map[string]string{"localca.conf": conf, "localca.options": opts, "setup.conf": setup} {
			if caErr = os.WriteFile(filepath.Join(caDir, name), []byte(body), 0o600); caErr != nil {
				return
			}
		}
	})
	return caDir, caErr
}

func makeEKTemplate(v tpm.Version) ([]byte, error) { return manufactureEK(v) }

func manufactureEK(v tpm.Version) ([]byte, error) {
	ekMu.Lock()
	defer ekMu.Unlock()
	dir, err := localCA()
	if err != nil {
		return nil, err
	}
	state, err := os.MkdirTemp("", "glint-swtpm-ektemplate-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(state)
	args := []string{"--tpmstate", state, "--create-ek-cert", "--config", filepath.Join(dir, "setup.conf")}
	if v == tpm.Version20 {
		args = append(args, "--tpm2", "--pcr-banks", "sha1,sha256")
	}
	out, err := exec.Command("swtpm_setup", args...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("swtpm_setup %v: %v\n%s", args, err, out)
	}
	if v == tpm.Version12 {
		if err := takeOwnership12(state); err != nil {
			return nil, err
		}
	}
	if theCA == nil {
		if theCA, err = readCA(dir); err != nil {
			return nil, err
		}
	}
	return os.ReadFile(filepath.Join(state, stateFile(v)))
}

func readCA(dir string) (*CA, error) {
	load := func(name string) (*x509.Certificate, []byte, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, nil, err
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, nil, errors.New(name + ": no PEM certificate")
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		return c, b, err
	}
	root, rootPEM, err := load("swtpm-localca-rootca-cert.pem")
	if err != nil {
		return nil, err
	}
	inter, _, err := load("issuercert.pem")
	if err != nil {
		return nil, err
	}
	return &CA{Root: root, Intermediate: inter, RootPEM: rootPEM}, nil
}
