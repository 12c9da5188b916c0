-- wrk script: Places API (New) searchNearby, one fixed request.
--   wrk -t1 -c16 -d5s -s tests/fake_places/search_nearby.lua http://127.0.0.1:PORT
-- wrk reports "Non-2xx or 3xx responses" when an answer is not 200.
-- Put /_mode/<mode> before the path to benchmark a fault mode, e.g. WRK_PATH=/_mode/zero/v1/...
wrk.method = "POST"
wrk.path = os.getenv("WRK_PATH") or "/v1/places:searchNearby"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Goog-Api-Key"] = os.getenv("WRK_KEY") or "test-key"
wrk.headers["X-Goog-FieldMask"] =
  "places.id,places.displayName,places.formattedAddress,places.location,places.types,places.rating"
wrk.body = [[{"maxResultCount": 20, "rankPreference": "DISTANCE", "locationRestriction": {"circle": {"center": {"latitude": 34.0689, "longitude": -118.4451}, "radius": 10000.0}}}]]

