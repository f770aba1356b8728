//go:build !linux

package tpm

import "os"

func openBlocking(path string) (*os.File, error) { return os.OpenFile(path, os.O_RDWR, 0) }
