package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/domicile-go/domicile/residency"
	"github.com/domicile-go/domicile/residency/postgres"
	"github.com/domicile-go/domicile/residency/postgres/pgtest"
)

// historyEntries is the size of the log BenchmarkHistory lists an
// account's entries of.
const historyEntries = 100_000

// BenchmarkHistory lists one account's entries in a log of 100,000
// imported accounts (an entry each), against a checkpoint of the whole
// log: history decodes every entry the checkpoint covers and checks it
// hashes to it (CheckLog) before proving the account's, so ns/entry is
// its cost per entry of the log.
func BenchmarkHistory(b *testing.B) {
	want := `1 entry of account "account-0050000"`
	eachStore(b, func(b *testing.B, db, pub, checkpoint string) {
		benchAudit(b, want, "history", "-db", db, "-pub", pub, "-checkpoint", checkpoint, "-account", "account-0050000")
	})
}

// BenchmarkVerify verifies a log of 100,000 imported accounts (an entry
// each) against a checkpoint of it: it checks every entry hashes to the
// tree and compares every stored account, its trail included, with the
// log, so ns/entry is its cost per account.
func BenchmarkVerify(b *testing.B) {
	want := fmt.Sprintf("%d accounts and", historyEntries)
	eachStore(b, func(b *testing.B, db, pub, checkpoint string) {
		benchAudit(b, want, "verify", "-db", db, "-pub", pub, "-checkpoint", checkpoint)
	})
}

// eachStore runs bench on a file and on a PostgreSQL database, each
// holding historyEntries imported accounts, with the public key and a
// signed checkpoint of the whole log.
func eachStore(b *testing.B, bench func(b *testing.B, db, pub, checkpoint string)) {
	b.Run("file", func(b *testing.B) {
		db := filepath.Join(b.TempDir(), "domicile.db")
		pub, checkpoint := fillLog(b, db, residency.WithPath(db))
		bench(b, db, pub, checkpoint)
	})
	b.Run("postgres", func(b *testing.B) {
		dsn := pgtest.DatabaseURL(b)
		s, err := postgres.Open(context.Background(), dsn)
		if err != nil {
			b.Fatal(err)
		}
		pub, checkpoint := fillLog(b, dsn, residency.WithStore(s))
		bench(b, dsn, pub, checkpoint)
	})
}

// benchAudit runs the audit tool with args until the benchmark is done,
// failing unless it exits 0 and prints want.
func benchAudit(b *testing.B, want string, args ...string) {
	var out, log bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		out.Reset()
		if code := run(args, &out, &log); code != 0 || !strings.Contains(out.String(), want) {
			b.Fatalf("%s exited %d: %s%s", args[0], code, &out, &log)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/historyEntries, "ns/entry")
}

// fillLog imports historyEntries accounts into the store db that opt
// opens, and returns the files of a new public key and of a checkpoint of
// the whole log signed with its private key.
func fillLog(b *testing.B, db string, opt residency.Option) (pub, checkpoint string) {
	ctx := context.Background()
	dir := b.TempDir()
	r, err := residency.Open(ctx, opt)
	if err != nil {
		b.Fatal(err)
	}
	countries := []string{"DE", "US", "GB", "SG", "FR", "JP", "BR", "IN"}
	if _, err := r.Import(ctx, func(yield func(residency.ImportRow) bool) {
		for i := range historyEntries {
			if !yield(residency.ImportRow{AccountID: fmt.Sprintf("account-%07d", i), Country: countries[i%len(countries)]}) {
				return
			}
		}
	}); err != nil {
		b.Fatal(err)
	}
	if err := r.Close(); err != nil {
		b.Fatal(err)
	}
	key := filepath.Join(dir, "log.key")
	pub = filepath.Join(dir, "log.pub")
	var out, log bytes.Buffer
	if code := run([]string{"keygen", "-name", "example.com/domicile", "-key", key, "-pub", pub}, &out, &log); code != 0 {
		b.Fatalf("keygen exited %d: %s", code, &log)
	}
	out.Reset()
	if code := run([]string{"checkpoint", "-db", db, "-key", key}, &out, &log); code != 0 {
		b.Fatalf("checkpoint exited %d: %s", code, &log)
	}
	if size := strings.Split(out.String(), "\n")[1]; size != fmt.Sprint(historyEntries) {
		b.Fatalf("checkpoint of %s entries, want %d", size, historyEntries)
	}
	checkpoint = filepath.Join(dir, "c")
	if err := os.WriteFile(checkpoint, out.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	return pub, checkpoint
}
