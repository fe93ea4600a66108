// Command accountcreation is a helpdesk backend's account creation, as a
// small HTTP server: it places each new account with domicile and tells every
// request where an account's data lives.
//
//	go run ./examples/accountcreation -addr localhost:8080 -db domicile.db
//
//	POST /accounts       {"account_id": "acme", "country": "DE", "region": "EU"}
//	                     201 and the placement for a new account, 200 when it
//	                     exists already, 409 when it exists in another region,
//	                     400 {"error": "..."} for bad input
//	GET  /accounts/{id}  200 and the placement, 404 when unknown
//	GET  /metrics        the router's metrics
//
// It shuts down cleanly on SIGINT or SIGTERM: requests in flight finish,
// then the store is closed. Every 200 and 201 was durable before it was sent.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

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
	db := flag.String("db", "domicile.db", "the domicile store file")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := serve(ctx, *addr, *db, func(a net.Addr) { log.Printf("listening on %s, store %s", a, *db) })
	if err != nil {
		log.Fatal(err)
	}
}

// serve runs the server until ctx ends, then shuts it down cleanly.
func serve(ctx context.Context, addr, path string, listening func(net.Addr)) error {
	reg := newRegistry()
	r, err := residency.Open(ctx, residency.WithPath(path), residency.WithRegisterer(reg))
	if err != nil {
		return err
	}
	defer r.Close()
	srv := &http.Server{
		Addr:              addr,
		Handler:           newHandler(r, reg),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
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
		dec := json.NewDecoder(http.MaxBytesReader(w, req.Body, maxBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			status := http.StatusBadRequest
			if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
				status = http.StatusRequestEntityTooLarge
			}
			writeError(w, status, fmt.Errorf("malformed request: %w", err))
			return
		}
		if dec.More() {
			writeError(w, http.StatusBadRequest, errors.New("malformed request: data after the JSON object"))
			return
		}
		p, created, err := r.Create(req.Context(), residency.PlaceRequest{AccountID: body.AccountID, Country: body.Country, Region: body.Region})
		switch {
		case err != nil:
			writeError(w, statusOf(err), err)
		case created:
			writeJSON(w, http.StatusCreated, p)
		default:
			writeJSON(w, http.StatusOK, p)
		}
	})
	mux.HandleFunc("GET /accounts/{id}", func(w http.ResponseWriter, req *http.Request) {
		p, err := r.Lookup(req.PathValue("id"))
		if err != nil {
			writeError(w, statusOf(err), err)
			return
		}
		writeJSON(w, http.StatusOK, p)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return mux
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
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}
