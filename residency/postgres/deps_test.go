package postgres_test

import (
	osexec "os/exec"
	"strings"
	"testing"
)

// TestResidencyDoesNotLinkPgx: a program that imports residency alone
// does not link pgx; only this package does.
func TestResidencyDoesNotLinkPgx(t *testing.T) {
	// go test puts the go command that runs it first on the PATH of the
	// test binary (Go 1.19 and later): this is the same toolchain.
	out, err := osexec.Command("go", "list", "-deps", "github.com/domicile-go/domicile/residency").CombinedOutput()
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
