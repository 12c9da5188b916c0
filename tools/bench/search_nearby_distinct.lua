-- wrk script: Places API (New) searchNearby with a different centre on every request, the
-- same request a herd server makes for "WHATSAT <client> 10 20" (see tools/bench-places).
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Goog-Api-Key"] = "test-key"
wrk.headers["X-Goog-FieldMask"] = "places.id,places.displayName,places.location,places.shortFormattedAddress,places.formattedAddress,places.types,places.rating,places.userRatingCount,places.businessStatus"

request = function()
  counter = counter + 1
  local body = string.format(
    '{"maxResultCount":20,"locationRestriction":{"circle":{"center":{"latitude":34.%d,"longitude":-118.4},"radius":10000}}}',
    counter)
  return wrk.format(nil, "/v1/places:searchNearby", nil, body)
end
