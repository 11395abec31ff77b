#!/usr/bin/python3
"""Checks that the container image's Dockerfile installs what CMake requires.

Every package the top-level CMakeLists.txt finds (find_package, pkg_check_modules) and every tool
the build runs is traced, through the build tree's CMakeCache.txt and pkg-config, to the file
CMake actually used, and from that file to the Debian package that owns it (dpkg -S). The
Dockerfile's build stage must install that package (or a package that depends on it); the
runtime stage must install the package of every shared library that the binaries the image
ships load (ldd of the same binaries built on this host). A new dependency that the Dockerfile does not know about fails this check
instead of the image build: that drift (libpq, added for PostgreSQL, missing from both stages)
once left the image unbuildable without anyone noticing.

Usage: check_image_deps.py CMAKE_LISTS CMAKE_CACHE DOCKERFILE
"""
import os
import re
import subprocess
import sys

# find_package() in module mode: the cache variable naming the file CMake found.
MODULE_VARS = {
    "Protobuf": ["Protobuf_LIBRARY_RELEASE", "Protobuf_PROTOC_EXECUTABLE"],
    "OpenSSL": ["OPENSSL_SSL_LIBRARY", "OPENSSL_CRYPTO_LIBRARY"],
    "PkgConfig": ["PKG_CONFIG_EXECUTABLE"],
}
# Needs nothing beyond the C library, or only the tests (the image builds without them).
SKIPPED = {"Threads", "GTest"}
# Tools the build runs besides those found above.
TOOLS = ["cmake", "ninja", "grpc_cpp_plugin", "c++", "strip"]


def run(*args):
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def owner(path):
    """The Debian package that owns `path` (following symlinks)."""
    real = os.path.realpath(path)
    # Debian 12 merged /usr: dpkg may know a library by its /lib name.
    merged = [p.replace("/usr/lib/", "/lib/", 1) for p in (path, real) if p.startswith("/usr/lib/")]
    for candidate in (path, real, *merged):
        try:
            out = run("dpkg", "-S", candidate)
        except subprocess.CalledProcessError:
            continue
        return out.split(":")[0].strip()
    raise SystemExit(f"no Debian package owns {path}")


def read_cache(path):
    cache = {}
    for line in open(path):
        m = re.match(r"^([^/#][^:]*):[A-Z]+=(.*)$", line.rstrip("\n"))
        if m:
            cache[m.group(1)] = m.group(2)
    return cache


def stages(dockerfile):
    """The packages each FROM stage installs with apt-get install, in order."""
    text = re.sub(r"\\\n", " ", open(dockerfile).read())
    result = []
    for line in text.splitlines():
        if re.match(r"^\s*FROM\s", line, re.I):
            result.append(set())
        elif result and "apt-get install" in line:
            for command in line.split("&&"):
                if "apt-get install" in command:
                    words = command.split("apt-get install", 1)[1].split()
                    result[-1].update(w for w in words if not w.startswith("-"))
    return result


def closure(packages):
    """The packages and everything they depend on (the host's apt lists)."""
    out = run("apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
              "--no-breaks", "--no-replaces", "--no-enhances", *sorted(packages))
    found = set()
    for line in out.splitlines():
        line = line.strip()
        if line.startswith(("Depends:", "PreDepends:")):
            line = line.split(":", 1)[1].strip()
        found.add(line.strip("<>").split(":")[0])
    return found


def main():
    cmake_lists, cache_path, dockerfile = sys.argv[1:4]
    top = open(cmake_lists).read()
    cache = read_cache(cache_path)
    build_files = {}  # file CMake used -> what required it
    runtime_libs = {}  # shared library an image binary loads -> which

    for name in re.findall(r"find_package\(\s*([A-Za-z0-9_-]+)", top):
        if name in SKIPPED:
            continue
        if name in MODULE_VARS:
            for var in MODULE_VARS[name]:
                build_files[cache[var]] = f"find_package({name})"
        elif cache.get(f"{name}_DIR", "").startswith("/"):
            d = cache[f"{name}_DIR"]
            configs = [f for f in os.listdir(d) if f.lower().endswith("config.cmake")]
            if not configs:
                raise SystemExit(f"find_package({name}): no config file in {d}")
            build_files[os.path.join(d, configs[0])] = f"find_package({name})"
        else:
            raise SystemExit(f"find_package({name}): not found in {cache_path}; teach {sys.argv[0]} how to trace it")
    for var, modules in re.findall(r"pkg_check_modules\(\s*(\w+)\s+REQUIRED\s+IMPORTED_TARGET\s+([^)]*)\)", top):
        for module in modules.split():
            pc = run("pkg-config", "--path", module).strip()
            build_files[pc] = f"pkg_check_modules({module})"
    for tool in TOOLS:
        path = run("sh", "-c", f"command -v {tool}").strip()
        build_files[path] = f"the build runs {tool}"

    found = stages(dockerfile)
    if len(found) < 2:
        raise SystemExit(f"{dockerfile}: expected a build stage and a runtime stage")
    build_have, runtime_have = closure(found[0]), closure(found[-1])
    problems = []
    for path, why in sorted(build_files.items()):
        package = owner(path)
        if package not in build_have:
            problems.append(f"build stage lacks {package} ({why}: {path})")
    # The runtime stage: every shared library the image's binaries load, as built on this host
    # (the image builds the same sources on the same Debian release).
    targets = re.findall(r"--target\s+([^\\&]+?)(?:&&|$)", re.sub(r"\\\n", " ", open(dockerfile).read()))
    binaries = [t for t in " ".join(targets).split() if t.startswith("kp-")]
    bin_dir = os.path.join(os.path.dirname(cache_path), "bin")
    for binary in binaries:
        path = os.path.join(bin_dir, binary)
        if not os.path.exists(path):
            raise SystemExit(f"{path} is not built; build the tree first")
        for line in run("ldd", path).splitlines():
            m = re.match(r"\s*\S+ => (/\S+)", line)
            if m:
                runtime_libs[m.group(1)] = f"{binary} loads it"
    for path, why in sorted(runtime_libs.items()):
        package = owner(os.path.realpath(path))
        if package not in runtime_have:
            problems.append(f"runtime stage lacks {package} ({why}: {os.path.realpath(path)})")
    if problems:
        print(f"{dockerfile} does not install what {cmake_lists} requires:")
        for p in problems:
            print("  " + p)
        return 1
    print(f"{dockerfile}: {len(build_files)} build inputs and the {len(runtime_libs)} shared libraries "
          f"of {len(binaries)} binaries, all installed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
