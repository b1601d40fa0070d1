# geo.mk - country databases (see geo/README.md). Included by the Makefile
# after its variables; `make -f mk/geo.mk geo` also works on its own.
#
#   geo         fetch geo/geo-whois-asn-country.mmdb with npm unless present
#   geo-check   the geoip unit tests, against the test databases
#   build/test-geo.mmdb, build/test-geo-maxmind.mmdb
#               geo/test-countries.csv in the ip-location-db and MaxMind layouts

# Including this file must not change the default goal.
GEO_SAVED_GOAL := $(.DEFAULT_GOAL)

PYTHON ?= /usr/bin/python3
BUILD ?= build
GEO_DB ?= geo/geo-whois-asn-country.mmdb
GEO_NPM_PKG ?= @ip-location-db/geo-whois-asn-country-mmdb
GEO_CSV := geo/test-countries.csv
GEO_TEST_DBS := $(BUILD)/test-geo.mmdb $(BUILD)/test-geo-maxmind.mmdb

.PHONY: geo geo-check

geo: $(GEO_DB)
	@echo $(GEO_DB)

# The tarball goes to a temporary directory; only the database is kept, and
# only once whole.
$(GEO_DB):
	@command -v npm >/dev/null || { echo "geo: npm is needed to fetch $(GEO_NPM_PKG) (Debian package npm)" >&2; exit 1; }
	@echo "geo: fetching $(GEO_NPM_PKG) with npm" >&2
	@mkdir -p $(@D)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp" "$@.tmp"' EXIT && \
	(cd "$$tmp" && npm pack --loglevel=error $(GEO_NPM_PKG) >/dev/null) && \
	tar -xzOf "$$tmp"/*.tgz package/$(@F) > $@.tmp && mv $@.tmp $@

$(BUILD)/test-geo.mmdb: GEO_LAYOUT := ip-location-db
$(BUILD)/test-geo-maxmind.mmdb: GEO_LAYOUT := maxmind
$(GEO_TEST_DBS): $(GEO_CSV) tools/mmdb_write.py
	@mkdir -p $(@D)
	$(PYTHON) tools/mmdb_write.py --layout $(GEO_LAYOUT) $(GEO_CSV) $@

# The Makefile builds $(OBJDIR)/unit/test_geoip; `make unit` runs it too.
unit: $(GEO_TEST_DBS)
geo-check: $(GEO_TEST_DBS) $(OBJDIR)/unit/test_geoip
	./$(OBJDIR)/unit/test_geoip

.DEFAULT_GOAL := $(GEO_SAVED_GOAL)
