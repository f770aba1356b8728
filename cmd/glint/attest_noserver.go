//go:build !attestserver && !payload

package main

import "errors"

// The default build is the one that runs as /init from flash: it carries
// the attestation client, not the server (database drivers, dashboard).

func init() {
	for _, name := range []string{"attest serve", "attest admin add", "attest preregister", "attest golden import"} {
		register(command{name: name, summary: "(server build only: make server)", run: noServer})
	}
}

func noServer(e *env, args []string) error {
	return errors.New("this glint was built without the attestation server, because the same binary runs as /init from the flash chip and must stay small; build the server with `make server` (or go build -tags attestserver ./cmd/glint) and run out/glint-server attest serve")
}
