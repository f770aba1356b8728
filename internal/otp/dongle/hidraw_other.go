//go:build !(linux && (amd64 || 386 || arm || arm64 || riscv64 || loong64))

package dongle

import (
	"errors"
	"io/fs"
)

// Open needs Linux hidraw; on other systems it always fails.
func Open(sysfs fs.FS, devDir string) (Device, Found, error) {
	return nil, Found{}, errors.New("dongle access needs Linux hidraw")
}
