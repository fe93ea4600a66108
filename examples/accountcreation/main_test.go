package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
	"github.com/google/go-cmp/cmp"
)

func newTestServer(t *testing.T) *httptest.Server {
	t.Helper()
	reg := newRegistry()
	r, err := residency.Open(context.Background(), residency.WithPath(filepath.Join(t.TempDir(), "d.db")), residency.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newHandler(r, reg))
	t.Cleanup(func() { srv.Close(); r.Close() })
	return srv
}

func do(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	data, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("Content-Type") == "application/json" {
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("%s %s: bad JSON %q: %v", method, url, data, err)
		}
	}
	return resp.StatusCode, out
}

func TestAccounts(t *testing.T) {
	srv := newTestServer(t)
	url := srv.URL + "/accounts"
	tests := []struct {
		name, method, url, body string
		status                  int
		want                    map[string]any // fields the answer must have
		errorSays               string
	}{
		{"create", "POST", url, `{"account_id": "acme", "country": "DE"}`, 201,
			map[string]any{"account_id": "acme", "region": "EU", "country": "DE", "version": 1.0, "rule": "EU member state"}, ""},
		{"repeat", "POST", url, `{"account_id": "acme", "country": "AT"}`, 200, map[string]any{"account_id": "acme", "region": "EU"}, ""},
		{"explicit region", "POST", url, `{"account_id": "globex", "country": "US", "region": "UK"}`, 201,
			map[string]any{"region": "UK", "datacenter": "linode-uk", "provider": "linode", "rule": "customer's choice"}, ""},
		{"conflict", "POST", url, `{"account_id": "acme", "country": "US"}`, 409, nil, `"acme" lives in EU`},
		{"malformed JSON", "POST", url, `{"account_id": "x", `, 400, nil, "malformed"},
		{"not an object", "POST", url, `["x"]`, 400, nil, "malformed"},
		{"unknown field", "POST", url, `{"account_id": "x", "country": "DE", "vip": true}`, 400, nil, "vip"},
		{"trailing data", "POST", url, `{"account_id": "x", "country": "DE"} {}`, 400, nil, "after"},
		{"unknown region", "POST", url, `{"account_id": "x", "country": "DE", "region": "Mars"}`, 400, nil, "unknown region"},
		{"unknown country", "POST", url, `{"account_id": "x", "country": "EU"}`, 400, nil, "invalid country"},
		{"no country", "POST", url, `{"account_id": "x"}`, 400, nil, "no country"},
		{"empty account", "POST", url, `{"account_id": "", "country": "DE"}`, 400, nil, "invalid account"},
		{"account with a newline", "POST", url, `{"account_id": "a\nb", "country": "DE"}`, 400, nil, "invalid account"},
		{"too large", "POST", url, `{"account_id": "` + strings.Repeat("x", maxBody) + `", "country": "DE"}`, 413, nil, "too large"},
		{"get", "GET", url + "/acme", "", 200, map[string]any{"account_id": "acme", "region": "EU"}, ""},
		{"get unknown", "GET", url + "/nobody", "", 404, nil, "not found"},
		{"get invalid", "GET", url + "/a%09b", "", 400, nil, "invalid account"},
		{"wrong method", "DELETE", url + "/acme", "", 405, nil, "method not allowed"},
		{"unknown path", "GET", srv.URL + "/nowhere", "", 404, nil, "not found"},
		{"no account ID", "GET", url + "/", "", 404, nil, "not found"},
		{"closing brace after the object", "POST", url, `{"account_id": "x", "country": "DE"} }`, 400, nil, "after"},
		{"closing bracket after the object", "POST", url, `{"account_id": "x", "country": "DE"}]`, 400, nil, "after"},
		{"whitespace past the limit", "POST", url, `{"account_id": "x", "country": "DE"}` + strings.Repeat(" ", maxBody), 413, nil, "too large"},
		{"data past the limit", "POST", url, `{"account_id": "x", "country": "DE"}` + strings.Repeat(" ", maxBody) + "{}", 413, nil, "too large"},
		{"invalid UTF-8", "POST", url, "{\"account_id\": \"acme\xff\", \"country\": \"DE\"}", 400, nil, "UTF-8"},
		{"invalid UTF-8, another byte", "POST", url, "{\"account_id\": \"acme\xfe\", \"country\": \"DE\"}", 400, nil, "UTF-8"},
		{"invalid UTF-8 outside strings", "POST", url, "{\"account_id\": \"y\", \"country\": \"DE\"}\xfe", 400, nil, "UTF-8"},
		{"lone high surrogate", "POST", url, `{"account_id": "acme\ud800", "country": "DE"}`, 400, nil, "surrogate"},
		{"lone low surrogate", "POST", url, `{"account_id": "acme\uDC00", "country": "DE"}`, 400, nil, "surrogate"},
		{"high surrogate then a letter", "POST", url, `{"account_id": "acme\ud800\u0041", "country": "DE"}`, 400, nil, "surrogate"},
		{"surrogate in a key", "POST", url, `{"account_id\udbff": "y", "country": "DE"}`, 400, nil, "surrogate"},
		{"escaped backslash before u", "POST", url, `{"account_id": "back\\ud800slash", "country": "DE"}`, 201,
			map[string]any{"account_id": `back\ud800slash`}, ""},
		{"surrogate pair", "POST", url, `{"account_id": "clef\ud834\udd1e", "country": "DE"}`, 201,
			map[string]any{"account_id": "clef\U0001D11E"}, ""},
		{"replacement character itself", "POST", url, `{"account_id": "r\ufffd", "country": "DE"}`, 201,
			map[string]any{"account_id": "r\uFFFD"}, ""},
	}
	for _, tt := range tests {
		status, got := do(t, tt.method, tt.url, tt.body)
		if status != tt.status {
			t.Errorf("%s: status %d, want %d (%v)", tt.name, status, tt.status, got)
			continue
		}
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("%s: %s = %v, want %v (%v)", tt.name, k, got[k], v, got)
			}
		}
		if tt.errorSays != "" {
			if msg, _ := got["error"].(string); !strings.Contains(msg, tt.errorSays) {
				t.Errorf("%s: error %q does not say %q", tt.name, msg, tt.errorSays)
			}
		}
	}
	// The repeated creation answered the same placement.
	_, first := do(t, "GET", url+"/acme", "")
	_, again := do(t, "POST", url, `{"account_id": "acme", "country": "DE"}`)
	if first["datacenter"] != again["datacenter"] || first["version"] != again["version"] {
		t.Errorf("repeat answered %v, the account is %v", again, first)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	srv := newTestServer(t)
	do(t, "POST", srv.URL+"/accounts", `{"account_id": "acme", "country": "DE"}`)
	do(t, "POST", srv.URL+"/accounts", `{"account_id": "x", "country": "EU"}`)
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`domicile_refusals_total{reason="invalid_country"} 1`, `domicile_placements_total{datacenter=`, `domicile_accounts{`, `go_goroutines`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// startServe runs serve on a free port of 127.0.0.1 with the store db and
// returns its base URL, and stop, which stops it as SIGTERM would and
// returns serve's error.
func startServe(t *testing.T, db string) (base string, stop func() error) {
	t.Helper()
	return startServeCatalog(t, db, "")
}

// startServeCatalog is startServe with the catalog file catalog.
func startServeCatalog(t *testing.T, db, catalog string) (base string, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, "127.0.0.1:0", db, catalog, func(a net.Addr) { addrc <- a }) }()
	select {
	case addr := <-addrc:
		return "http://" + addr.String(), func() error { cancel(); return <-done }
	case err := <-done:
		cancel()
		t.Fatal(err)
		return "", nil
	}
}

// post503 POSTs a new account to base while the database does not commit,
// and checks that the answer is a 503 (and comes at all: the client
// waits minutes).
func post503(t *testing.T, base, what string) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Minute}
	resp, err := client.Post(base+"/accounts", "application/json", strings.NewReader(`{"account_id": "stuck", "country": "DE"}`))
	if err != nil {
		t.Fatalf("POST while %s: no answer: %v", what, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("POST while %s = %d %s, want 503", what, resp.StatusCode, body)
	}
}

// TestServeShutsDownCleanly runs the whole server, creates accounts from
// several clients, stops it as SIGTERM would, and checks that every account
// it acknowledged is in the store.
func TestServeShutsDownCleanly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.db")
	base, stop := startServe(t, path)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var acknowledged []string
	for c := range 4 {
		wg.Go(func() {
			for i := range 25 {
				id := strings.Repeat("c", c+1) + "-" + string(rune('a'+i))
				resp, err := http.Post(base+"/accounts", "application/json",
					strings.NewReader(`{"account_id": "`+id+`", "country": "FR"}`))
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated {
					mu.Lock()
					acknowledged = append(acknowledged, id)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if err := stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	r, err := residency.Open(context.Background(), residency.WithPath(path))
	if err != nil {
		t.Fatalf("reopen after shutdown: %v", err)
	}
	defer r.Close()
	if len(acknowledged) != 100 {
		t.Errorf("%d accounts created, want 100", len(acknowledged))
	}
	for _, id := range acknowledged {
		if _, err := r.Lookup(id); err != nil {
			t.Errorf("acknowledged %s lost: %v", id, err)
		}
	}
}

func TestNoDataCenterIs503(t *testing.T) {
	reg := newRegistry()
	cat, err := provider.NewCatalog(provider.DataCenter{ID: "uk-1", Provider: provider.Linode, Region: region.UK, Status: provider.Draining})
	if err != nil {
		t.Fatal(err)
	}
	r, err := residency.Open(context.Background(), residency.WithCatalog(cat), residency.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	srv := httptest.NewServer(newHandler(r, reg))
	defer srv.Close()
	status, got := do(t, "POST", srv.URL+"/accounts", `{"account_id": "brit", "country": "GB"}`)
	if msg, _ := got["error"].(string); status != http.StatusServiceUnavailable || !strings.Contains(msg, "region UK") {
		t.Errorf("POST with no active UK data center = %d %v; want 503 naming the region", status, got)
	}
}

// failingStore is a store whose writes fail without persisting anything.
type failingStore struct{ *residency.MemoryStore }

func (failingStore) Apply(context.Context, []residency.Change) error {
	return errors.New("test: disk full")
}

// TestStoreFailureIs503 checks that a write the store failed is answered
// 503, which a client may retry, and not 500 or 409; the answer says the
// store failed, and the log has the store's own error, which may name the
// database's host, port and role (the answer said it too).
func TestStoreFailureIs503(t *testing.T) {
	reg := newRegistry()
	r, err := residency.Open(context.Background(), residency.WithStore(failingStore{residency.NewMemoryStore()}), residency.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	srv := httptest.NewServer(newHandler(r, reg))
	defer srv.Close()
	var logged bytes.Buffer
	log.SetOutput(&logged)
	defer log.SetOutput(os.Stderr)
	status, got := do(t, "POST", srv.URL+"/accounts", `{"account_id": "acme", "country": "DE"}`)
	if msg, _ := got["error"].(string); status != http.StatusServiceUnavailable || msg != residency.ErrStoreFailed.Error()+": retry" {
		t.Errorf("POST on a failing store = %d %v; want 503 saying the store failed, and no more", status, got)
	}
	if !strings.Contains(logged.String(), "answered 503") || !strings.Contains(logged.String(), "disk full") {
		t.Errorf("log = %q; want the 503 with the store's error", logged.String())
	}
	if status, _ := do(t, "GET", srv.URL+"/accounts/acme", ""); status != http.StatusNotFound {
		t.Errorf("GET of the account the store refused = %d, want 404", status)
	}
}

// TestReadyz: the readiness check answers 200 while the Router answers
// reads, and 503 with why once it does not (here, shut down; a lease run
// out on a shared store is the same Router.Ready, tested in residency).
func TestReadyz(t *testing.T) {
	reg := newRegistry()
	r, err := residency.Open(context.Background(), residency.WithPath(filepath.Join(t.TempDir(), "d.db")), residency.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newHandler(r, reg))
	defer srv.Close()
	if status, got := do(t, "GET", srv.URL+"/readyz", ""); status != http.StatusOK || got["status"] != "ready" {
		t.Errorf("GET /readyz = %d %v; want 200 ready", status, got)
	}
	r.Close()
	var logged bytes.Buffer
	log.SetOutput(&logged)
	defer log.SetOutput(os.Stderr)
	status, got := do(t, "GET", srv.URL+"/readyz", "")
	if msg, _ := got["error"].(string); status != http.StatusServiceUnavailable || !strings.Contains(msg, "closed") {
		t.Errorf("GET /readyz once closed = %d %v; want 503 saying the router is closed", status, got)
	}
	if logged.Len() != 0 {
		t.Errorf("GET /readyz logged %q; want nothing (a load balancer asks every few seconds)", logged.String())
	}
}

// TestMethodNotAllowedSaysAllow checks that the JSON 405 keeps the Allow
// header the mux computed.
func TestMethodNotAllowedSaysAllow(t *testing.T) {
	srv := newTestServer(t)
	req, err := http.NewRequest("DELETE", srv.URL+"/accounts/acme", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := []string{resp.Status, resp.Header.Get("Content-Type"), resp.Header.Get("Allow")}
	want := []string{"405 Method Not Allowed", "application/json", "GET, HEAD"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DELETE /accounts/acme mismatch (-want +got):\n%s", diff)
	}
}

// TestServeFollowsTheCatalogFile: with -catalog, the server places
// accounts under that catalog (here linode-eu and websupport-eu are
// offline: every EU account goes to aws-eu-west-1); a catalog file that
// cannot be read stops it before it creates a store.
func TestServeFollowsTheCatalogFile(t *testing.T) {
	dir := t.TempDir()
	catalog := filepath.Join(dir, "catalog.json")
	if err := os.WriteFile(catalog, []byte(`{"datacenters": [
 {"id": "linode-eu", "provider": "linode", "region": "EU", "status": "offline"},
 {"id": "aws-eu-west-1", "provider": "aws", "region": "EU"},
 {"id": "websupport-eu", "provider": "websupport", "region": "EU", "status": "offline"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	base, stop := startServeCatalog(t, filepath.Join(dir, "d.db"), catalog)
	var got []string
	for i := range 6 {
		status, p := do(t, "POST", base+"/accounts", fmt.Sprintf(`{"account_id": "acct-%d", "country": "DE"}`, i))
		if status != http.StatusCreated {
			t.Fatalf("POST = %d %v", status, p)
		}
		got = append(got, fmt.Sprint(p["datacenter"]))
	}
	if err := stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	if diff := cmp.Diff(slices.Repeat([]string{"aws-eu-west-1"}, 6), got); diff != "" {
		t.Errorf("data centers under the catalog file mismatch (-want +got):\n%s", diff)
	}

	missing, db := filepath.Join(dir, "missing.json"), filepath.Join(dir, "other.db")
	err := serve(context.Background(), "127.0.0.1:0", db, missing, func(net.Addr) { t.Error("serve listened without its catalog") })
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("serve with a missing catalog file = %v, want an error naming it", err)
	}
	if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("serve with a missing catalog file created the store %s", db)
	}
}
