package layers

import (
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/llmbatch/llmbatch"

// imports returns the non-test imports of every package of the module, by
// package path relative to the module ("." for the module itself).
func imports(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	pkgs := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkgs[rel(fields[0])] = fields[1:]
	}
	return pkgs
}

// rel is path relative to the module: "." for the module, "cli" for
// module/cli; a path outside the module is returned as it is.
func rel(path string) string {
	if path == module {
		return "."
	}
	if r, ok := strings.CutPrefix(path, module+"/"); ok {
		return r
	}
	return path
}

// under reports whether pkg is dir or below it.
func under(pkg string, dirs ...string) bool {
	for _, d := range dirs {
		if pkg == d || strings.HasPrefix(pkg, d+"/") {
			return true
		}
	}
	return false
}

func isSQL(imp string) bool {
	return imp == "database/sql" || strings.HasPrefix(imp, "database/sql/") ||
		strings.Contains(imp, "go-sqlite3") || strings.Contains(imp, "jackc/pgx") || strings.Contains(imp, "lib/pq")
}

func isHTTP(imp string) bool { return imp == "net/http" || strings.HasPrefix(imp, "net/http/") }

// isStd reports whether imp is in the standard library: no dot in its
// first element.
func isStd(imp string) bool {
	first, _, _ := strings.Cut(imp, "/")
	return !strings.Contains(first, ".")
}

func TestLayering(t *testing.T) {
	pkgs := imports(t)
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages: %v", len(pkgs), pkgs)
	}
	rules := []struct {
		name  string
		holds func(pkg, imp string) bool
	}{
		{"only store/... (and internal/pgtest, the tests' database) speaks SQL", func(pkg, imp string) bool {
			return !isSQL(imp) || under(pkg, "store", "internal/pgtest")
		}},
		{"only worker/... (and test support in internal/) speaks HTTP", func(pkg, imp string) bool {
			return !isHTTP(imp) || under(pkg, "worker", "internal")
		}},
		{"cli reaches a storage engine only through store.Open", func(pkg, imp string) bool {
			return pkg != "cli" || !strings.HasPrefix(rel(imp), "store/")
		}},
		{"jobs imports the standard library and internal/jsonscan only", func(pkg, imp string) bool {
			return pkg != "jobs" || isStd(imp) || rel(imp) == "internal/jsonscan"
		}},
		{"output imports no worker and no store", func(pkg, imp string) bool {
			return pkg != "output" || !under(rel(imp), "worker", "store")
		}},
		{"no library package imports the command line", func(pkg, imp string) bool {
			return rel(imp) != "cli" || pkg == "." || under(pkg, "e2e")
		}},
		{"main.go only calls cli", func(pkg, imp string) bool {
			return pkg != "." || isStd(imp) || rel(imp) == "cli"
		}},
	}
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			for pkg, imps := range pkgs {
				for _, imp := range imps {
					if !r.holds(pkg, imp) {
						t.Errorf("%s imports %s", pkg, imp)
					}
				}
			}
		})
	}
	if !slices.Contains(pkgs["cli"], module+"/store") {
		t.Errorf("cli does not import store: the test no longer sees the command line's storage")
	}
}
