package region_test

import (
	"fmt"

	"github.com/domicile-go/domicile/region"
)

func ExamplePolicy_Resolve() {
	for _, code := range []string{"de", "GBR", "840", "UK", "CH", "JP"} {
		c, err := region.ParseCountry(code)
		if err != nil {
			fmt.Println(err)
			continue
		}
		a, err := region.DefaultPolicy().Resolve(c)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%-4s -> %s %-4s (%s)\n", code, c, a.Region, a.Rule)
	}
	// Output:
	// de   -> DE EU   (EU member state)
	// GBR  -> GB UK   (United Kingdom)
	// 840  -> US US   (United States)
	// UK   -> GB UK   (United Kingdom)
	// CH   -> CH EU   (nearest region: Europe)
	// JP   -> JP APAC (APAC: East Asia)
}

func ExampleParseCountry_refused() {
	for _, code := range []string{"EU", "150", "QZ", "ZR"} {
		_, err := region.ParseCountry(code)
		fmt.Println(err)
	}
	// Output:
	// region: invalid country "EU"
	// region: invalid country "150"
	// region: invalid country "QZ"
	// region: invalid country "ZR"
}

func ExamplePolicy_With() {
	ch := region.MustParseCountry("CH")
	p, err := region.StrictPolicy().With(region.Assignment{Country: ch, Region: region.EU, Rule: "contract: Swiss customers hosted in the EU"})
	if err != nil {
		panic(err)
	}
	a, _ := p.Resolve(ch)
	fmt.Println(a.Region, a.Rule)
	_, err = region.StrictPolicy().Resolve(ch)
	fmt.Println(err)
	// Output:
	// EU contract: Swiss customers hosted in the EU
	// region: no region for country "CH"
}
