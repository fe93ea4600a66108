// Command subprocessors prints the sub-processor disclosure of one home
// region, the page customers of that region are shown, from the default
// catalog or a catalog file; or, with -since, the notice of what changed on
// that page since an older catalog.
//
//	subprocessors -region US|EU|UK|APAC [-catalog FILE] [-format markdown|json] [-since OLD_FILE] [-date YYYY-MM-DD]
//	subprocessors -export [-catalog FILE]
//
//	-region R      the home region whose page to print (required)
//	-catalog FILE  the catalog (JSON, as provider.LoadCatalog reads it);
//	               default: provider.DefaultCatalog
//	-format F      markdown (default) or json
//	-since FILE    print the change notice from this older catalog to the
//	               catalog instead of the page
//	-date D        the publication date printed on the page, and from which
//	               effective dates are counted (default: today, UTC)
//	-export        print the catalog itself as JSON, every default written
//	               out: the file to start a catalog of your own from
//
// A region's page lists the region's own data centers and their hosts only,
// then the other sub-processors that serve the region, says which need the
// customer's prior consent, and which are announced (effective later than
// the publication date). Fields the catalog leaves empty print as "not
// stated".
//
// Exit status: 0 on success, 1 when a catalog cannot be read, 2 for a usage
// error (an unknown region, for one).
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/domicile-go/domicile/provider"
	"github.com/domicile-go/domicile/region"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, time.Now)) }

// config is the command line.
type config struct {
	region         region.Region
	catalog, since string
	json, export   bool
	date           time.Time
}

const dateLayout = "2006-01-02"

func parseFlags(args []string, stderr io.Writer, now func() time.Time) (config, error) {
	fs := flag.NewFlagSet("subprocessors", flag.ContinueOnError)
	fs.SetOutput(stderr)
	reg := fs.String("region", "", "home region whose page to print: US, EU, UK or APAC (required)")
	cat := fs.String("catalog", "", "catalog JSON file (default: the built-in catalog)")
	format := fs.String("format", "markdown", "markdown or json")
	since := fs.String("since", "", "older catalog JSON file: print the change notice from it instead of the page")
	date := fs.String("date", "", "publication date, YYYY-MM-DD (default: today, UTC)")
	export := fs.Bool("export", false, "print the catalog as JSON instead of a page")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	cfg := config{catalog: *cat, export: *export}
	switch {
	case fs.NArg() > 0:
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case cfg.export && (*reg != "" || *since != "" || *date != ""):
		return cfg, errors.New("-export takes only -catalog")
	case cfg.export:
		return cfg, nil
	case *reg == "":
		return cfg, errors.New("-region is required (US, EU, UK or APAC)")
	}
	var err error
	if cfg.region, err = region.Parse(*reg); err != nil {
		return cfg, fmt.Errorf("-region: %w (want US, EU, UK or APAC)", err)
	}
	switch *format {
	case "markdown", "md":
	case "json":
		cfg.json = true
	default:
		return cfg, fmt.Errorf("-format %q: want markdown or json", *format)
	}
	cfg.date = now().UTC().Truncate(24 * time.Hour)
	if *date != "" {
		if cfg.date, err = time.Parse(dateLayout, *date); err != nil {
			return cfg, fmt.Errorf("-date %q: want YYYY-MM-DD", *date)
		}
	}
	cfg.since = *since
	return cfg, nil
}

func run(args []string, stdout, stderr io.Writer, now func() time.Time) int {
	cfg, err := parseFlags(args, stderr, now)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "subprocessors:", err)
		}
		return 2
	}
	if err := write(cfg, stdout); err != nil {
		fmt.Fprintln(stderr, "subprocessors:", err)
		return 1
	}
	return 0
}

func load(file string) (*provider.Catalog, error) {
	if file == "" {
		return provider.DefaultCatalog(), nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c, err := provider.LoadCatalog(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return c, nil
}

func write(cfg config, w io.Writer) error {
	c, err := load(cfg.catalog)
	if err != nil {
		return err
	}
	if cfg.export {
		b, err := json.MarshalIndent(c, "", "  ")
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	}
	published := cfg.date.Format(dateLayout)
	if cfg.since == "" {
		d := c.Disclosure(cfg.region)
		if cfg.json {
			return writeJSON(w, struct {
				Published string `json:"published"`
				provider.Disclosure
			}{published, d})
		}
		_, err := io.WriteString(w, page(d, cfg.date))
		return err
	}
	old, err := load(cfg.since)
	if err != nil {
		return err
	}
	changes := provider.Changes(old, c, cfg.region)
	if cfg.json {
		if changes == nil {
			changes = []provider.Change{}
		}
		return writeJSON(w, struct {
			Region    region.Region     `json:"region"`
			Published string            `json:"published"`
			Changes   []provider.Change `json:"changes"`
		}{cfg.region, published, changes})
	}
	_, err = io.WriteString(w, notice(cfg.region, changes, cfg.date))
	return err
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// page renders a region's disclosure as Markdown.
func page(d provider.Disclosure, date time.Time) string {
	var b strings.Builder
	r := d.Region
	fmt.Fprintf(&b, "# Sub-processors for accounts hosted in the %s region\n\n", r)
	fmt.Fprintf(&b, "Published %s. These are the third parties that may process the service data of accounts whose home region is %s. "+
		"An account's data is stored in one of the data centers below and moves only between them, "+
		"unless the customer agrees in writing to a move to another region. "+
		"Entries marked \"announced\" may not touch any data before the date shown.\n\n", date.Format(dateLayout), r)

	b.WriteString("## Data centers\n\n")
	if len(d.DataCenters) == 0 {
		fmt.Fprintf(&b, "The catalog has no data center in the %s region.\n\n", r)
	} else {
		b.WriteString("| Data center | Provider | Location | Country | Certifications | In use |\n|---|---|---|---|---|---|\n")
		names := map[provider.Provider]string{}
		for _, s := range d.SubProcessors {
			if s.Kind == provider.Host {
				names[s.Provider] = s.Name
			}
		}
		for _, dc := range d.DataCenters {
			loc := dc.Location
			if dc.City != "" && dc.City != loc {
				loc = strings.TrimPrefix(loc+", "+dc.City, ", ")
			}
			var certs []string
			for _, c := range dc.Certifications {
				certs = append(certs, string(c))
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", cell(dc.ID), cell(names[dc.Provider]), cell(loc),
				cell(country(dc.Country)), cell(strings.Join(certs, ", ")), inUse(dc.Effective, date))
		}
		b.WriteString("\n")
	}

	b.WriteString("## Sub-processors\n\n| ID | Name | Kind | Purpose | Prior consent | In use |\n|---|---|---|---|---|---|\n")
	var consent []string
	for _, s := range d.SubProcessors {
		c := "not needed"
		if s.RequiresConsent {
			c = "**required**"
			consent = append(consent, fmt.Sprintf("%s (`%s`)", text(s.Name), s.ID))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", cell(s.ID), cell(s.Name), s.Kind, cell(s.Purpose), c, inUse(s.Effective, date))
	}
	b.WriteString("\n")
	if len(consent) == 0 {
		b.WriteString("None of them needs the customer's prior consent.\n\n")
	} else {
		fmt.Fprintf(&b, "These may reach an account's data only with the customer's prior consent: %s.\n\n", strings.Join(consent, ", "))
	}

	for _, s := range d.SubProcessors {
		fmt.Fprintf(&b, "### %s (`%s`)\n\n", text(s.Name), s.ID)
		item(&b, "Kind", string(s.Kind))
		item(&b, "Purpose", s.Purpose)
		item(&b, "Data", s.Data)
		if s.Kind == provider.Host {
			item(&b, "Data centers", strings.Join(s.DataCenters, ", "))
		}
		item(&b, "Processing in", countries(s.Countries))
		fmt.Fprintf(&b, "- Transfer mechanism: %s\n", transfer(s, r))
		item(&b, "Legal address", s.Address)
		item(&b, "Contact", s.Contact)
		if s.RequiresConsent {
			b.WriteString("- Customer's prior consent: required\n")
		} else {
			b.WriteString("- Customer's prior consent: not needed\n")
		}
		fmt.Fprintf(&b, "- In use: %s\n\n", inUse(s.Effective, date))
	}

	b.WriteString("## Obligations\n\nEvery sub-processor is bound to:\n\n")
	for _, o := range d.Obligations {
		fmt.Fprintf(&b, "- %s\n", text(o))
	}
	return b.String()
}

// notice renders the change notice of a region as Markdown.
func notice(r region.Region, changes []provider.Change, date time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Changes to the sub-processors for accounts hosted in the %s region\n\n", r)
	if len(changes) == 0 {
		fmt.Fprintf(&b, "Published %s. No changes for accounts whose home region is %s.\n", date.Format(dateLayout), r)
		return b.String()
	}
	fmt.Fprintf(&b, "Published %s. These changes concern accounts whose home region is %s. "+
		"A new sub-processor may not touch any account's data before the date shown.\n\n", date.Format(dateLayout), r)
	b.WriteString("| Change | Entry | ID | Name | From |\n|---|---|---|---|---|\n")
	entries := map[string]string{"datacenter": "data center", "subprocessor": "sub-processor"}
	for _, c := range changes {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", c.Kind, entries[c.Entry], cell(c.ID), cell(c.Name), from(c, date))
	}
	for _, c := range changes {
		if c.Kind != provider.Changed {
			continue
		}
		fmt.Fprintf(&b, "\n### Changed: %s `%s`\n\n", entries[c.Entry], c.ID)
		for _, f := range c.Fields {
			fmt.Fprintf(&b, "- %s: %s → %s\n", f.Field, orNotStated(f.Old), orNotStated(f.New))
		}
	}
	return b.String()
}

// from says from when a change applies, counted from the publication date.
func from(c provider.Change, date time.Time) string {
	switch {
	case c.Kind == provider.Removed:
		return "at once"
	case !c.Effective.After(date) && c.Kind == provider.Added:
		return "at once (no advance notice)"
	case !c.Effective.After(date):
		return "at once"
	}
	days := int(c.Effective.Sub(date).Hours() / 24)
	return fmt.Sprintf("%s (%d days' notice)", c.Effective.Format(dateLayout), days)
}

func inUse(effective, date time.Time) string {
	if effective.After(date) {
		return "announced: from " + effective.Format(dateLayout)
	}
	return "yes"
}

// transfer says how data of region r's accounts processed outside r is
// covered.
func transfer(s provider.SubProcessor, r region.Region) string {
	outside := s.OutsideRegion(r)
	switch {
	case len(outside) > 0:
		return fmt.Sprintf("%s (processes data in %s, outside %s)", orNotStated(text(s.Transfer)), countries(outside), r)
	case s.Transfer != "":
		return text(s.Transfer)
	case len(s.Countries) == 0:
		return "not stated"
	default:
		return fmt.Sprintf("none needed (processes data only in %s)", r)
	}
}

func item(b *strings.Builder, name, value string) {
	fmt.Fprintf(b, "- %s: %s\n", name, orNotStated(text(value)))
}

func orNotStated(s string) string {
	if s == "" {
		return "not stated"
	}
	return s
}

func country(c region.Country) string {
	if c == (region.Country{}) {
		return ""
	}
	return c.String()
}

func countries(cs []region.Country) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = c.String()
	}
	return strings.Join(s, ", ")
}

// cell is text for a table cell: empty is "not stated".
func cell(s string) string { return orNotStated(text(s)) }

// text escapes what Markdown would read as markup; the catalog refuses
// control characters, so a value stays on one line.
var text = strings.NewReplacer(`\`, `\\`, "|", `\|`, "*", `\*`, "_", `\_`, "`", "\\`", "[", `\[`, "]", `\]`, "<", `\<`, ">", `\>`, "#", `\#`).Replace
