// Command accountcreation is a helpdesk backend's account creation, as a
// small HTTP server: it places each new account with domicile and tells every
// request where an account's data lives.
//
//	go run ./examples/accountcreation -addr localhost:8080 -db domicile.db [-catalog FILE]
//
// -db is the store: a file, or a PostgreSQL URL (postgres://... or
// postgresql://...) that several instances share. -catalog is the
// company's catalog file (JSON, as provider.LoadCatalog reads it), given to
// the Router with residency.WithCatalog; without it, the built-in catalog
// (provider.DefaultCatalog). Every program on one store, examples/migrate
// included, must be given the same catalog: a data center offline in one
// and active in another would receive accounts from the other.
//
//	POST /accounts       {"account_id": "acme", "country": "DE", "region": "EU"}
//	                     201 and the placement for a new account, 200 when it
//	                     exists already, 409 when it exists in another region,
//	                     400 {"error": "..."} for bad input, 413 for a body
//	                     over 64 KiB
//	GET  /accounts/{id}  200 and the placement, 404 when unknown (after
//	                     catching up with the database, Sync, on a miss)
//	GET  /readyz         200 while this instance answers reads, 503 and the
//	                     kind of failure when it does not (its lease on the
//	                     shared database has run out): for the load
//	                     balancer's readiness check; once shutting down,
//	                     the server stops listening, so the check cannot
//	                     connect
//	GET  /metrics        the router's metrics
//
// Every answer of 500 or more tells the client only the kind of failure
// ("residency: store unavailable: retry"), and logs the whole error, which
// may name the database's host, port, role and database; but for /readyz,
// which a load balancer asks every few seconds: its 503s are not logged.
//
// Every error, 404 and 405 from unknown paths and methods included, is
// JSON: {"error": "..."}. A body must be one JSON object, in valid UTF-8,
// with no lone surrogate escape ("\ud800"), and nothing but white space
// after it: encoding/json would turn invalid text into U+FFFD and make
// "acme\xff" and "acme\xfe" one account, so such bodies are refused (400)
// before decoding.
//
// It shuts down cleanly on SIGINT or SIGTERM: requests in flight finish,
// then the store is closed. Every 200 and 201 was durable before it was sent.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/domicile-go/domicile/internal/storeflag"
	"github.com/domicile-go/domicile/region"
	"github.com/domicile-go/domicile/residency"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// maxBody bounds a request body: an account creation is a few hundred bytes.
const maxBody = 64 << 10

func main() {
	addr := flag.String("addr", "localhost:8080", "address to listen on")
	db := flag.String("db", "domicile.db", "the domicile store: a file, or a PostgreSQL URL (postgres://... or postgresql://...)")
	catalog := flag.String("catalog", "", storeflag.CatalogUsage)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := serve(ctx, *addr, *db, *catalog, func(a net.Addr) { log.Printf("listening on %s, store %s", a, storeflag.Describe(*db)) })
	if err != nil {
		log.Fatal(err)
	}
}

// serve runs the server on the store path, under the catalog file
// catalog ("" for the built-in one), until ctx ends, then shuts it down
// cleanly.
func serve(ctx context.Context, addr, path, catalog string, listening func(net.Addr)) error {
	reg := newRegistry()
	cat, err := storeflag.Catalog(catalog) // before the store: a bad catalog creates no store file
	if err != nil {
		return err
	}
	s, err := storeflag.Open(ctx, path)
	if err != nil {
		return err
	}
	// A store call that does not return (a database that holds the
	// write) fails well before the server's WriteTimeout, so that the
	// client gets an answer.
	r, err := residency.Open(ctx, residency.WithStore(s), residency.WithCatalog(cat), residency.WithRegisterer(reg), residency.WithWriteTimeout(writeTimeout))
	if err != nil {
		return err
	}
	defer r.Close()
	srv := &http.Server{
		Addr:              addr,
		Handler:           newHandler(r, reg),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      responseTimeout + 2*time.Second,
		IdleTimeout:       60 * time.Second,
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	listening(ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Print("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return err
	}
	return r.Close()
}

// writeTimeout bounds each call of the store (residency.WithWriteTimeout),
// and responseTimeout a POST's write as a whole: the server answers 503
// when the database does not commit in time, before its own WriteTimeout
// closes the connection without an answer.
const writeTimeout, responseTimeout = 5 * time.Second, 8 * time.Second

// newRegistry returns the server's own metrics registry, with the Go
// runtime's and the process's metrics; the router adds its own.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// newHandler serves the account API for r and the metrics of reg.
func newHandler(r *residency.Router, reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /accounts", func(w http.ResponseWriter, req *http.Request) {
		var body struct {
			AccountID string        `json:"account_id"`
			Country   string        `json:"country"`
			Region    region.Region `json:"region"`
		}
		if status, err := decodeBody(w, req, &body); err != nil {
			writeError(w, status, fmt.Errorf("malformed request: %w", err))
			return
		}
		// A deadline for the answer, within the server's WriteTimeout:
		// Create returns by it, and a write whose outcome is unknown at
		// that moment is 503 (Create is idempotent: a retry gets the
		// account if the write stood).
		ctx, cancel := context.WithTimeout(req.Context(), responseTimeout)
		defer cancel()
		var out struct {
			p       residency.Placement
			created bool
			err     error
		}
		out.p, out.created, out.err = r.Create(ctx, residency.PlaceRequest{AccountID: body.AccountID, Country: body.Country, Region: body.Region})
		switch {
		case out.err != nil:
			writeError(w, statusOf(out.err), out.err)
		case out.created:
			writeJSON(w, http.StatusCreated, out.p)
		default:
			writeJSON(w, http.StatusOK, out.p)
		}
	})
	mux.HandleFunc("GET /accounts/{id}", func(w http.ResponseWriter, req *http.Request) {
		id := req.PathValue("id")
		p, err := r.Lookup(id)
		if errors.Is(err, residency.ErrNotFound) {
			// Created a moment ago through another instance, perhaps:
			// catch up with the database (at once on a file) and look
			// again. Only a miss pays for it.
			if err = r.Sync(req.Context()); err == nil {
				p, err = r.Lookup(id)
			}
		}
		if err != nil {
			writeError(w, statusOf(err), err)
			return
		}
		writeJSON(w, http.StatusOK, p)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, req *http.Request) {
		if err := r.Ready(); err != nil {
			// Not logged: a load balancer asks every few seconds, and
			// the writes and lookups this instance refuses meanwhile
			// are (domicile_stale says so too).
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": publicError(err)})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return jsonErrors(mux)
}

// decodeBody reads the whole request body, at most maxBody bytes, and
// decodes the one JSON object it holds into v. It returns the status to
// answer when the body is refused: 413 when it is longer than maxBody, even
// if a whole object came first, and 400 when it is not one JSON object
// alone, or when it holds text that encoding/json would silently replace
// with U+FFFD (invalid UTF-8 or a lone surrogate escape such as "\ud800"):
// "acme\xff" and "acme\xfe" must not both become the account "acme\uFFFD".
func decodeBody(w http.ResponseWriter, req *http.Request, v any) (int, error) {
	data, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxBody))
	if err != nil {
		if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
			return http.StatusRequestEntityTooLarge, err
		}
		return http.StatusBadRequest, err
	}
	if !utf8.Valid(data) {
		return http.StatusBadRequest, errors.New("body is not valid UTF-8")
	}
	if err := checkSurrogates(data); err != nil {
		return http.StatusBadRequest, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return http.StatusBadRequest, err
	}
	// Only white space may follow the object: Token reports io.EOF then,
	// and an error or a token for anything else, a stray '}' included
	// (which Decoder.More would let pass).
	if _, err := dec.Token(); err != io.EOF {
		return http.StatusBadRequest, errors.New("data after the JSON object")
	}
	return 0, nil
}

// checkSurrogates refuses a JSON text with a \u escape of a UTF-16
// surrogate that is not part of a pair: a high surrogate (D800-DBFF) not
// followed at once by an escaped low one (DC00-DFFF), or a low one alone.
// A backslash is only valid JSON inside a string, so the scan need not
// track strings: any escape outside one is a syntax error the decoder
// refuses anyway.
func checkSurrogates(data []byte) error {
	for i := 0; i < len(data); i++ {
		if data[i] != '\\' {
			continue
		}
		r, ok := escapedRune(data[i:])
		if !ok {
			i++ // skip the escaped character, a backslash included
			continue
		}
		switch {
		case utf16.IsSurrogate(r) && r < 0xDC00:
			if low, ok := escapedRune(data[i+6:]); ok && low >= 0xDC00 && low <= 0xDFFF {
				i += 11 // the pair
				continue
			}
			return fmt.Errorf("lone surrogate \\u%04x at byte %d", r, i)
		case utf16.IsSurrogate(r):
			return fmt.Errorf("lone surrogate \\u%04x at byte %d", r, i)
		}
		i += 5
	}
	return nil
}

// escapedRune returns the code unit of the \uXXXX escape that b starts
// with; ok is false when b starts with no such escape.
func escapedRune(b []byte) (r rune, ok bool) {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[2:6]), 16, 16)
	if err != nil {
		return 0, false
	}
	return rune(n), true
}

// jsonErrors answers the requests mux has no handler for (404) or no
// handler for with this method (405, with its Allow header) with a JSON
// error body like every other error, instead of mux's plain text.
func jsonErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h, pattern := mux.Handler(req)
		if pattern != "" {
			mux.ServeHTTP(w, req)
			return
		}
		// mux's own error handler: keep its status and headers, not its body.
		rec := &statusOnly{header: http.Header{}, code: http.StatusOK}
		h.ServeHTTP(rec, req)
		if allow := rec.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		writeError(w, rec.code, fmt.Errorf("%s %s: %s", req.Method, req.URL.Path, strings.ToLower(http.StatusText(rec.code))))
	})
}

// statusOnly is a ResponseWriter that keeps the status and headers written
// to it and drops the body.
type statusOnly struct {
	header http.Header
	code   int
	wrote  bool
}

func (s *statusOnly) Header() http.Header { return s.header }

func (s *statusOnly) WriteHeader(code int) {
	if !s.wrote {
		s.code, s.wrote = code, true
	}
}

func (s *statusOnly) Write(b []byte) (int, error) {
	s.WriteHeader(http.StatusOK)
	return len(b), nil
}

// publicError is what an answer of 500 or more tells the client of err:
// the kind of failure, not the store's own error, which names the
// database's host, port, role and database. A region without an active
// data center says which region.
func publicError(err error) string {
	if errors.Is(err, residency.ErrNoDataCenter) {
		return err.Error()
	}
	for _, kind := range []error{residency.ErrStale, residency.ErrStoreFailed, residency.ErrUnavailable, residency.ErrClosed} {
		if errors.Is(err, kind) {
			return kind.Error() + ": retry"
		}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return "no answer in time: retry"
	}
	return "internal error"
}

// statusOf maps domicile's errors to HTTP statuses.
func statusOf(err error) int {
	switch {
	case errors.Is(err, residency.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, residency.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, residency.ErrInvalidAccount), errors.Is(err, region.ErrInvalidCountry),
		errors.Is(err, region.ErrUnknownRegion), errors.Is(err, region.ErrNoRegion):
		return http.StatusBadRequest
	case errors.Is(err, residency.ErrNoDataCenter):
		return http.StatusServiceUnavailable // the home region has no active data center now
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, residency.ErrStoreFailed), errors.Is(err, residency.ErrUnavailable):
		return http.StatusServiceUnavailable // the store failed: a retry may succeed
	case errors.Is(err, residency.ErrStale):
		return http.StatusServiceUnavailable // cut off from the shared database: another instance can answer
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// writeError answers err as JSON with status. An answer of 500 or more
// tells the client the kind of failure only (publicError), and the log
// gets the whole error: the operator's side of a client's 503.
func writeError(w http.ResponseWriter, status int, err error) {
	if status >= http.StatusInternalServerError {
		log.Printf("answered %d: %v", status, err)
		err = errors.New(publicError(err))
	}
	writeJSON(w, status, map[string]string{"error": err.Error()})
}
