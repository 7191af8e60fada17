#!/usr/bin/env python3
"""One version in one place, and package manifests vcpkg and Conan would accept.

CMakeLists.txt's project(VERSION) is the version. conanfile.py reads it
(checked through `conan inspect`); vcpkg needs it literally in both vcpkg.json
files, so they are compared with it; CHANGELOG.md has its entry. The vcpkg JSON
files must parse and carry the fields vcpkg requires, and the optional
components of the CMake config, the port's features and the Conan options must
be the same set.
"""
import json
import re
import subprocess
import sys
from pathlib import Path

root = Path(__file__).resolve().parents[2]
errors = []


def check(ok, message):
    if not ok:
        errors.append(message)


cmake = (root / "CMakeLists.txt").read_text()
version = re.search(r"project\(conveyor VERSION ([0-9]+\.[0-9]+\.[0-9]+)", cmake).group(1)

# vcpkg manifests: https://learn.microsoft.com/vcpkg/reference/vcpkg-json
VERSION_FIELDS = {"version", "version-semver", "version-date", "version-string"}
KNOWN_FIELDS = VERSION_FIELDS | {
    "name", "port-version", "maintainers", "description", "homepage", "documentation", "license",
    "builtin-baseline", "dependencies", "overrides", "supports", "default-features", "features",
    "vcpkg-configuration",
}
NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def check_dependencies(where, dependencies):
    check(isinstance(dependencies, list), f"{where}: dependencies is not a list")
    for dep in dependencies:
        name = dep if isinstance(dep, str) else dep.get("name") if isinstance(dep, dict) else None
        check(isinstance(name, str) and NAME.match(name), f"{where}: bad dependency {dep!r}")
        if isinstance(dep, dict):
            unknown = set(dep) - {"name", "host", "features", "default-features", "platform", "version>="}
            check(not unknown, f"{where}: dependency {name} has unknown fields {sorted(unknown)}")


def check_vcpkg_manifest(path, is_port):
    where = str(path.relative_to(root))
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        errors.append(f"{where}: not JSON: {error}")
        return {}
    unknown = {k for k in manifest if not k.startswith("$")} - KNOWN_FIELDS
    check(not unknown, f"{where}: fields vcpkg does not know: {sorted(unknown)}")
    check(NAME.match(manifest.get("name", "")), f"{where}: name missing or not lowercase-with-hyphens")
    present = VERSION_FIELDS & set(manifest)
    check(present == {"version"}, f"{where}: needs exactly one version field, \"version\" (has {sorted(present)})")
    check(manifest.get("version") == version, f"{where}: version {manifest.get('version')} != CMakeLists.txt {version}")
    if is_port:
        check(isinstance(manifest.get("description"), (str, list)), f"{where}: a port needs a description")
    check("license" in manifest, f"{where}: license field missing (null if unknown)")
    check_dependencies(where, manifest.get("dependencies", []))
    features = manifest.get("features", {})
    check(isinstance(features, dict), f"{where}: features is not an object")
    for name, feature in features.items():
        check(NAME.match(name) and name not in ("core", "default"), f"{where}: bad feature name {name}")
        check(isinstance(feature.get("description"), (str, list)), f"{where}: feature {name} has no description")
        check_dependencies(f"{where} [{name}]", feature.get("dependencies", []))
    for name in manifest.get("default-features", []):
        check(name in features, f"{where}: default feature {name} is not a feature")
    return manifest


port = check_vcpkg_manifest(root / "ports/conveyor/vcpkg.json", is_port=True)
check_vcpkg_manifest(root / "vcpkg.json", is_port=False)
for required in ("portfile.cmake", "usage"):
    check((root / "ports/conveyor" / required).is_file(), f"ports/conveyor/{required} is missing")

inspect = subprocess.run(["conan", "inspect", str(root / "conanfile.py"), "--format=json"],
                         capture_output=True, text=True)
check(inspect.returncode == 0, f"conan inspect failed: {inspect.stderr.strip()}")
conan = json.loads(inspect.stdout) if inspect.returncode == 0 else {}
check(conan.get("version") == version, f"conanfile.py: version {conan.get('version')} != CMakeLists.txt {version}")
check(conan.get("package_type") == "header-library", "conanfile.py: package_type is not header-library")

config = (root / "cmake/conveyor-config.cmake.in").read_text()
components = set(re.search(r"set\(_conveyor_components ([a-z0-9 ]+)\)", config).group(1).split()) - {"core"}
features = set(port.get("features", {}))
options = {name[len("with_"):] for name in conan.get("options", {}) if name.startswith("with_")}
check(components == features, f"config components {sorted(components)} != port features {sorted(features)}")
check(components == options, f"config components {sorted(components)} != Conan with_* options {sorted(options)}")

changelog = (root / "CHANGELOG.md").read_text()
check(re.search(r"^## \[Unreleased\]", changelog, re.M), "CHANGELOG.md: no ## [Unreleased] section")
check(re.search(rf"^## \[{re.escape(version)}\]", changelog, re.M), f"CHANGELOG.md: no ## [{version}] entry")
check("@PROJECT_VERSION@" in (root / "cmake/conveyor.pc.in").read_text(), "conveyor.pc.in: version not from the project")

for error in errors:
    print(f"check_manifests: {error}", file=sys.stderr)
print(f"check_manifests: version {version}; components {sorted(components)}; "
      f"{'ok' if not errors else f'{len(errors)} problem(s)'}")
sys.exit(1 if errors else 0)
