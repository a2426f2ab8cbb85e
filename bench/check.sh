#!/bin/sh
# bench/check.sh BINDIR: validate 100,000 records (10 properties, a nested
# array of objects, patterns, an enum, required, additionalProperties:
# false) against a JSON Schema with orch-check, side by side with jq
# checking the same rules by a program written for them (issue 16). 1 record
# in 100 breaks one rule; both must find the same records.
set -eu
bin=${1:?usage: bench/check.sh BINDIR}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/schema.json" <<'SCHEMA'
{"type": "object", "additionalProperties": false,
 "required": ["id", "name", "email", "status", "created", "score", "tags", "items"],
 "properties": {
  "id": {"type": "integer", "minimum": 1},
  "name": {"type": "string", "minLength": 1, "maxLength": 80},
  "email": {"type": "string", "pattern": "^[^@ ]+@[^@ ]+\\.[a-z]+$"},
  "status": {"enum": ["open", "closed", "pending"]},
  "created": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
  "score": {"type": "number", "minimum": 0, "maximum": 100},
  "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 10, "uniqueItems": true},
  "active": {"type": "boolean"},
  "note": {"type": ["string", "null"]},
  "items": {"type": "array", "minItems": 1, "items": {
    "type": "object", "additionalProperties": false, "required": ["sku", "qty"],
    "properties": {
      "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
      "qty": {"type": "integer", "minimum": 1},
      "price": {"type": "number", "exclusiveMinimum": 0}}}}}}
SCHEMA
# the same rules in jq: one line per invalid record, its errors
cat > "$tmp/check.jq" <<'JQ'
def int: type == "number" and . == floor;
def item_errs:
  if type != "object" then "not an object" else
    ((["sku", "qty"][] as $k | select(has($k) | not) | "\($k) is required"),
     (keys[] | select(IN("sku", "qty", "price") | not) | "\(.) is not allowed"),
     (select(has("sku")) | .sku | select(type != "string" or (test("^[A-Z]{3}-[0-9]{4}$") | not)) | "sku"),
     (select(has("qty")) | .qty | select((int | not) or . < 1) | "qty"),
     (select(has("price")) | .price | select(type != "number" or . <= 0) | "price"))
  end;
def errs:
  if type != "object" then "not an object" else
    ((["id", "name", "email", "status", "created", "score", "tags", "items"][] as $k
       | select(has($k) | not) | "\($k) is required"),
     (keys[] | select(IN("id", "name", "email", "status", "created", "score", "tags", "active", "note", "items") | not)
       | "\(.) is not allowed"),
     (select(has("id")) | .id | select((int | not) or . < 1) | "id"),
     (select(has("name")) | .name | select(type != "string" or length < 1 or length > 80) | "name"),
     (select(has("email")) | .email | select(type != "string" or (test("^[^@ ]+@[^@ ]+\\.[a-z]+$") | not)) | "email"),
     (select(has("status")) | .status | select(IN("open", "closed", "pending") | not) | "status"),
     (select(has("created")) | .created | select(type != "string" or (test("^[0-9]{4}-[0-9]{2}-[0-9]{2}$") | not)) | "created"),
     (select(has("score")) | .score | select(type != "number" or . < 0 or . > 100) | "score"),
     (select(has("tags")) | .tags | select(type != "array" or length > 10 or any(.[]; type != "string")
       or (unique | length) != length) | "tags"),
     (select(has("active")) | .active | select(type != "boolean") | "active"),
     (select(has("note")) | .note | select(type != "string" and type != "null") | "note"),
     (select(has("items")) | .items | if type != "array" or length < 1 then "items"
       else to_entries[] | .key as $i | .value | item_errs | "items/\($i): \(.)" end))
  end;
[errs] | select(length > 0)
JQ
awk 'BEGIN { split("open closed pending", st, " ")
	for (i = 1; i <= 100000; i++) {
		bad = i % 100 == 0 ? (i / 100) % 6 : -1
		email = bad == 0 ? "user" i "@example" : "user" i "@example.com"
		status = bad == 1 ? "done" : st[i % 3 + 1]
		extra = bad == 2 ? ",\"colour\":\"red\"" : ""
		name = bad == 3 ? "" : ",\"name\":\"Customer " i "\""
		qty = bad == 4 ? 0 : i % 7 + 1
		sku = bad == 5 ? "abc-" i % 10000 : sprintf("ABC-%04d", i % 10000)
		printf "{\"id\":%d%s,\"email\":\"%s\",\"status\":\"%s\",\"created\":\"2026-%02d-%02d\",\"score\":%d.5,\"tags\":[\"a%d\",\"b%d\"],\"active\":%s,\"note\":null,\"items\":[{\"sku\":\"%s\",\"qty\":%d,\"price\":9.99},{\"sku\":\"XYZ-0001\",\"qty\":1}]%s}\n",
			i, name, email, status, i % 12 + 1, i % 28 + 1, i % 100, i % 5, i % 7, i % 2 ? "true" : "false", sku, qty, extra
	} }' > "$tmp/records.ndjson"
echo "records.ndjson: $(wc -l < "$tmp/records.ndjson") records, $(du -m "$tmp/records.ndjson" | cut -f1) MB; 1 in 100 invalid"
t() {  # t RUNS LABEL CMD...: best wall of RUNS, records/s, invalid records found
	runs=$1 label=$2; shift 2
	best=
	for r in $(seq "$runs"); do
		s=$(date +%s.%N)
		"$@" > "$tmp/out" || [ $? -eq 1 ]
		e=$(date +%s.%N)
		w=$(echo "$e - $s" | bc -l)
		if [ -z "$best" ] || [ "$(echo "$w < $best" | bc -l)" -eq 1 ]; then best=$w; fi
	done
	printf '%-42s %7.3f s %8.0f records/s %5d invalid\n' "$label" "$best" \
		"$(echo "100000 / $best" | bc -l)" "$(invalid < "$tmp/out")"
	echo "$best" > "$tmp/last"
}
# orch-check prints a line per error, jq one per invalid record
invalid() { if [ "$label" = jq ]; then wc -l; else cut -d: -f2 | uniq | wc -l; fi; }
echo true > "$tmp/true.json"
t 3 "orch-check --schema true (reading, floor)" "$bin/orch-check" --schema "$tmp/true.json" "$tmp/records.ndjson"
t 3 "orch-check --schema schema.json" "$bin/orch-check" --schema "$tmp/schema.json" "$tmp/records.ndjson"
o=$(cat "$tmp/last")
t 1 jq jq -c -f "$tmp/check.jq" "$tmp/records.ndjson"  # once: it takes ~50 s
j=$(cat "$tmp/last")
printf 'orch-check is %.1fx faster than jq\n' "$(echo "$j / $o" | bc -l)"
