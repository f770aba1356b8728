package main

import "testing"

// As /init, glint gets the kernel command line's unknown words as arguments
// and its unknown name=value words as environment: --tpm and GLINT_TPM must
// reach the boot flow, and nothing else may stop it.
func TestInitTPMSpec(t *testing.T) {
	for _, c := range []struct {
		env  string
		args []string
		want string
	}{
		{"", nil, ""},
		{"", []string{"init"}, ""},
		{"", []string{"quiet", "e2e_entry=default", "splash"}, ""},
		{"", []string{"--tpm", "/dev/tpm0"}, "/dev/tpm0"},
		{"", []string{"init", "-tpm=swtpm:unix:/run/s.sock", "quiet"}, "swtpm:unix:/run/s.sock"},
		{"/dev/tpm0", []string{"quiet"}, "/dev/tpm0"},
		{"/dev/tpm0", []string{"--tpm=/dev/tpmrm0"}, "/dev/tpmrm0"},
		{"", []string{"--tpm"}, ""}, // no value: keep searching
	} {
		t.Setenv("GLINT_TPM", c.env)
		envSpec := c.env
		if envSpec == "" {
			envSpec = defaultTPM
		}
		if got := initTPMSpec(envSpec, c.args); got != c.want {
			t.Errorf("GLINT_TPM=%q args %q: got %q, want %q", c.env, c.args, got, c.want)
		}
	}
}
