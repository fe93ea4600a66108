package postgres_test

import (
	osexec "os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestResidencyDoesNotLinkPgx: a program that imports residency alone
// does not link pgx; only this package does.
func TestResidencyDoesNotLinkPgx(t *testing.T) {
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := osexec.Command(goTool, "list", "-deps", "github.com/domicile-go/domicile/residency").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "github.com/domicile-go/domicile/residency\n") {
		t.Fatalf("go list did not list residency itself:\n%s", out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/jackc/") {
			t.Errorf("residency depends on %s", dep)
		}
	}
}
