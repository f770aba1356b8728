package main

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// addModules puts the named modules and everything they depend on into
// /lib/modules/<version>/ (same relative paths as in the kernel package), and writes
// /lib/modules/load-order: paths relative to /lib/modules ("<version>/kernel/fs/ext4/ext4.ko"),
// dependencies before dependants, one a line; glint (internal/boot) loads them in that order.
//
// Dependencies come from each module's own .modinfo section ("depends=a,b"), not from
// modules.dep: the kernel's .deb ships no modules.dep (depmod runs at install time), and
// reading the modules keeps this in step with exactly the files we copy. Soft dependencies
// ("softdep=pre: crc32c" in ext4) name crypto aliases, not files, so the caller lists the
// implementation it wants (crc32c_generic) in want.
func (p *payload) addModules(modDir string, want []string) error {
	version := filepath.Base(filepath.Clean(modDir))
	byName := map[string]string{} // module name -> path relative to modDir
	err := filepath.WalkDir(modDir, func(file string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(file, ".ko") {
			return nil
		}
		rel, err := filepath.Rel(modDir, file)
		if err != nil {
			return err
		}
		byName[modName(filepath.Base(file))] = filepath.ToSlash(rel)
		return nil
	})
	if err != nil {
		return fmt.Errorf("list modules in %s: %w", modDir, err)
	}

	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name, from string) error
	visit = func(name, from string) error {
		name = modName(name)
		switch state[name] {
		case 1:
			return fmt.Errorf("module dependency cycle at %s", name)
		case 2:
			return nil
		}
		rel, ok := byName[name]
		if !ok {
			if from == "" {
				return fmt.Errorf("module %s not found under %s (built in? then drop it from -load)", name, modDir)
			}
			return fmt.Errorf("module %s (needed by %s) not found under %s", name, from, modDir)
		}
		state[name] = 1
		deps, err := moduleDeps(filepath.Join(modDir, filepath.FromSlash(rel)))
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d, name); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, rel)
		return nil
	}
	for _, w := range want {
		if err := visit(w, ""); err != nil {
			return err
		}
	}

	var list bytes.Buffer
	for _, rel := range order {
		dst := path.Join("lib/modules", version, rel)
		if err := p.addFile(dst, filepath.Join(modDir, filepath.FromSlash(rel)), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(&list, "%s\n", path.Join(version, rel))
	}
	p.add(entry{name: "lib/modules/load-order", mode: 0o100644, data: list.Bytes()})
	return nil
}

// modName normalises a module file or dependency name the way the kernel does: no suffix,
// dashes and underscores equivalent (kernel/module/main.c compares with '_').
func modName(s string) string {
	s = strings.TrimSuffix(s, ".ko")
	return strings.ReplaceAll(s, "-", "_")
}

// moduleDeps reads the "depends=" field of a module's .modinfo section.
func moduleDeps(file string) ([]string, error) {
	f, err := elf.Open(file)
	if err != nil {
		return nil, fmt.Errorf("read module %s: %w", file, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("module %s has no .modinfo section", file)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("read .modinfo of %s: %w", file, err)
	}
	var deps []string
	for _, field := range bytes.Split(data, []byte{0}) {
		k, v, ok := strings.Cut(string(field), "=")
		if !ok || k != "depends" {
			continue
		}
		for _, d := range strings.Split(v, ",") {
			if d != "" {
				deps = append(deps, d)
			}
		}
	}
	sort.Strings(deps)
	return deps, nil
}
