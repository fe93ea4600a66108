// Package region names the four residency regions of domicile and decides
// which of them a customer's country belongs to.
//
// # Regions
//
// A [Region] is one of [US], [EU], [UK] and [APAC]. The zero Region is not a
// valid region; it stands for "not chosen" in optional fields. A [Set] is a
// set of regions as a bitset ([AllRegions] holds the four), for what serves
// several regions, such as a sub-processor.
//
// # Countries
//
// A [Country] is one of the 249 ISO 3166-1 countries, or XK (Kosovo).
// [ParseCountry] accepts alpha-2, alpha-3 and numeric codes in any case, with
// surrounding spaces, and the alias UK for GB. Groupings (EU, UN, EZ, 150,
// 419), other private-use codes (AA, QM-QZ, XA-XZ, ZZ), deprecated codes
// (ZR, YU, ...) and anything else are refused with [ErrInvalidCountry].
// The list is this package's own table (countries.go), not CLDR's: CLDR's
// "EU" grouping still contains GB.
//
// # Policies
//
// A [Policy] maps countries to regions and says why with a rule a compliance
// officer can read:
//
//	a, err := region.DefaultPolicy().Resolve(region.MustParseCountry("AT"))
//	// a.Region == region.EU, a.Rule == "EU member state"
//
// [DefaultPolicy] resolves every country: the explicit rules (EU and EEA
// members and EU territories to EU; GB and the Crown Dependencies to UK; the
// US and its territories to US; East, South-East and South Asia and Oceania to
// APAC) and, for the rest, a nearest-region rule by UN M49 area.
// [StrictPolicy] has only the explicit rules and refuses other countries with
// [ErrNoRegion]. [Policy.With] and [NewPolicy] customise a policy without
// editing the library.
//
// # Concurrency
//
// Region, Set and Country are small comparable values. A Policy is
// immutable once built and safe for concurrent use; [DefaultPolicy] and
// [StrictPolicy] return a new handle on every call, so no caller can change
// the policy another one gets.
package region
