# bench/lib.sh - shared by the bench scripts (sourced, not run).

# bench_build_info BUILD_DIR: the build type from meson's introspection, with
# a warning when it is a debug or sanitizer build (it measures the wrong thing).
bench_build_info() {
	local f=$1/meson-info/intro-buildoptions.json
	[ -f "$f" ] || { echo "unknown (not in a meson build dir)"; return; }
	/usr/bin/python3 - "$f" <<'PY'
import json, sys
o = {x["name"]: x["value"] for x in json.load(open(sys.argv[1]))}
s = "buildtype=%s optimization=%s" % (o.get("buildtype"), o.get("optimization"))
if o.get("b_sanitize", "none") != "none":
    s += " sanitize=%s (NOT representative)" % o["b_sanitize"]
elif o.get("optimization") in ("0", "g"):
    s += " (NOT representative: unoptimised)"
print(s)
PY
}
