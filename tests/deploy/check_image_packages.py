#!/usr/bin/python3
"""Keeps deploy/Dockerfile's package lists honest, without a Docker engine (ctest deploy.image_packages).

Run with Debian's /usr/bin/python3 (stdlib only) on a Debian 12 machine, against binaries built
there:

  check_image_packages.py --dockerfile deploy/Dockerfile [--install-deps scripts/install-deps.sh]
                          [--cmake-cache build/CMakeCache.txt] BINARY...

Runtime stage (the last FROM, which must be debian:bookworm-slim):
  * every BINARY must be one the stage copies from the build stage, and every binary the stage
    copies from it must be given, so the test looks at what the image ships;
  * `ldd BINARY` must resolve every library ("not found" fails);
  * each library is mapped to its Debian package with `dpkg -S` (trying the path, its realpath and
    the /usr-merged or /usr-stripped spelling, because dpkg records whichever the .deb ships);
  * that package must be in the closure, under Depends and Pre-Depends as installed on this
    machine, of the packages the stage's `apt-get install` names plus what debian:bookworm-slim
    already holds (the installed packages that are Essential or Priority: required: the image is
    a minbase debootstrap, which installs exactly those). A library whose package is outside the
    closure fails, naming the library and the package;
  * packages the gateway needs without linking them (ca-certificates) must be in the closure too,
    and every package the stage names must be one of those or own a library, so none goes stale;
  * the stage must not install -dev packages, compilers or build tools.
Build stage (the stage the runtime stage copies from):
  * its base must be Debian 12, like the runtime's, so the sonames linked match;
  * its closure must hold every package scripts/install-deps.sh installs, except those listed in
    NOT_FOR_THE_IMAGE_BUILD below with the reason;
  * with --cmake-cache, its closure must hold the package of every file the project's configure
    found (find_program, find_package, pkg_check_modules results in CMakeCache.txt): the Dockerfile
    runs the same configure, so whatever it found here the image build must find too.

Prints lib -> package and how the package gets into the image. Exit 0 when all holds, 1 with the
reasons when not, 77 (ctest SKIP_RETURN_CODE) when this machine cannot answer: no dpkg or ldd, or
not Debian 12, whose dpkg database the closure is read from.
"""

import argparse
import glob
import json
import os
import re
import shlex
import subprocess
import sys

SKIP = 77

RUNTIME_BASE = "debian:bookworm-slim"
DEBIAN_12_IMAGES = ("debian:bookworm", "debian:bookworm-slim")

# Packages of scripts/install-deps.sh the image's build stage does not need, and why. Anything
# else install-deps.sh installs is taken as needed to build the gateway and the CLI: a package
# added there fails this test until the Dockerfile installs it or it is listed here with a reason.
# (The --cmake-cache check is independent of this list: if the configure itself needs one of
# these, e.g. a find_program(... REQUIRED) for a test's tool, it still fails.)
NOT_FOR_THE_IMAGE_BUILD = {
    "python3": "runs the Twilio simulator and the Python client in tests",
    "python3-grpcio": "Python client example and its e2e test (tests/clients)",
    "python3-protobuf": "Python client example and its e2e test (tests/clients)",
    "redis-server": "the Redis the integration, chaos and redis-store tests start",
    "python3-venv": "the Python client package is built and tested offline (client/python)",
    "python3-pip": "the Python client package is built and tested offline (client/python)",
    "python3-setuptools": "the Python client package is built and tested offline (client/python)",
    "python3-wheel": "the Python client package is built and tested offline (client/python)",
    "python3-pytest": "the Python client's tests (client/python/tests)",
    "golang-go": "the Go client is built, vetted and tested (client/go)",
    "golang-goprotobuf-dev": "the Go client's generated code (scripts/generate-clients.sh)",
    "protoc-gen-go-grpc": "the Go client's generated code (scripts/generate-clients.sh)",
    "golang-google-grpc-dev": "the Go client's dependencies, offline (client/go)",
    "golang-google-protobuf-dev": "the Go client's dependencies, offline (client/go)",
    "stunnel4": "the TLS client of the Redis-over-TLS test; the sidecar image is deploy/stunnel.Dockerfile",
    "openssl": "makes the Redis-over-TLS test's throwaway CA and server certificate",
    "nodejs": "Node.js client e2e test and deploy.manifests",
    "npm": "Node.js client e2e test and deploy.manifests",
    "curl": "command-line tool for poking a running gateway; the build links libcurl (libcurl4-openssl-dev)",
    "grpc-proto": "only .proto files under /usr/share/grpc-proto; no CMake file compiles them",
    "ca-certificates": "the gateway needs it at run time for TLS to Twilio (checked in the runtime stage), not to build",
}

# Needed in the runtime image although no binary links it.
RUNTIME_DATA = {
    "ca-certificates": "libcurl verifies api.twilio.com against /etc/ssl/certs/ca-certificates.crt",
    # Checked against whichever build tree the test runs in: a sanitizer build keeps the
    # sanitizer's allocator, so only the Release build links it.
    "libjemalloc2": "the server's allocator in the image's Release build (service/CMakeLists.txt)",
}

# Never in the runtime stage: headers, static libraries, compilers and build tools.
FORBIDDEN_AT_RUNTIME = [
    (re.compile(r".*-dev$"), "a -dev package (headers and link-time files)"),
    (re.compile(r"^(build-essential|gcc|g\+\+|cpp|clang|llvm|lld|gfortran)(-[0-9.]+)?$"),
     "a compiler"),
    (re.compile(r"^binutils(-.*)?$"),
     "a toolchain package"),
    (re.compile(r"^(cmake|ninja-build|make|pkg-config|pkgconf|protobuf-compiler.*|libtool|autoconf|automake)$"),
     "a build tool"),
]

# Sanitizer runtimes show up in ldd of an instrumented build tree (GATEWAY_SANITIZE=ON); the
# image's Release build does not link them.
SANITIZER_RUNTIME = re.compile(r"^lib(asan|ubsan|tsan|lsan|hwasan)\.so")


class Failures:
    def __init__(self):
        self.items = []

    def add(self, message):
        self.items.append(message)


def skip(message):
    print(f"SKIP: {message}")
    sys.exit(SKIP)


def run(argv, check=True):
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc


# ---------------------------------------------------------------------------------------------
# Dockerfile

class Stage:
    def __init__(self, index, image, name):
        self.index = index
        self.image = image
        self.name = name
        self.packages = []        # apt-get install arguments, in order, without version pins
        self.copies_from = []     # (stage reference, [source paths]) of COPY --from=...

    def label(self):
        return f"stage {self.index} '{self.name}' ({self.image})" if self.name else f"stage {self.index} ({self.image})"


def dockerfile_instructions(text):
    """(keyword, arguments) pairs: continuation lines joined, comment lines dropped."""
    instructions = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and current):
            continue  # Docker drops comment lines, also inside a continued instruction
        if not stripped:
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        keyword, _, rest = current.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        current = ""
    if current.strip():
        keyword, _, rest = current.strip().partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    return instructions


APT_OPTIONS_WITH_ARGUMENT = {"-o", "--option", "-t", "--target-release", "-c", "--config-file"}
SHELL_OPERATORS = {"&&", "||", ";", "|", "&", "(", ")", ";;"}


def apt_install_packages(shell_command, failures, where):
    """Package names the `apt-get install` / `apt install` commands of a RUN line name."""
    lexer = shlex.shlex(shell_command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    tokens = list(lexer)
    commands, current = [], []
    for token in tokens:
        if token in SHELL_OPERATORS:
            if current:
                commands.append(current)
            current = []
        else:
            current.append(token)
    if current:
        commands.append(current)

    packages = []
    for argv in commands:
        while argv and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", argv[0]):
            argv = argv[1:]  # VAR=value prefixes
        while argv and argv[0] in ("sudo", "env", "command"):
            argv = argv[1:]
        if not argv or os.path.basename(argv[0]) not in ("apt-get", "apt"):
            continue
        args = argv[1:]
        skip_next = False
        verb_seen = False
        for arg in args:
            if skip_next:
                skip_next = False
                continue
            if arg in APT_OPTIONS_WITH_ARGUMENT:
                skip_next = True
                continue
            if arg.startswith("-"):
                continue
            if not verb_seen:
                if arg != "install":
                    break
                verb_seen = True
                continue
            if "$" in arg:
                failures.add(f"{where}: cannot evaluate the package argument {arg!r}; "
                             "name packages literally so this test can read them")
                continue
            name = re.split(r"[=/]", arg, maxsplit=1)[0]  # pkg=version, pkg/release
            name = name.split(":", 1)[0]                   # pkg:arch
            packages.append(name)
    return packages


def parse_dockerfile(path, failures):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    stages = []
    for keyword, args in dockerfile_instructions(text):
        if keyword == "FROM":
            words = [w for w in args.split() if not w.startswith("--")]
            image = words[0] if words else ""
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            stages.append(Stage(len(stages), image, name))
            continue
        if not stages:
            continue
        stage = stages[-1]
        if keyword == "RUN":
            if args.startswith("["):
                failures.add(f"{stage.label()}: exec-form RUN is not parsed; use the shell form for apt-get")
                continue
            stage.packages += apt_install_packages(args, failures, stage.label())
        elif keyword in ("COPY", "ADD"):
            source_stage = None
            rest = args
            while rest.startswith("--"):
                flag, _, rest = rest.partition(" ")
                rest = rest.lstrip()
                if flag.startswith("--from="):
                    source_stage = flag[len("--from="):]
            if rest.startswith("["):
                try:
                    rest = json.loads(rest)
                except ValueError:
                    failures.add(f"{stage.label()}: cannot parse {keyword} {args}")
                    continue
            else:
                rest = rest.split()
            if source_stage is not None and len(rest) >= 2:
                stage.copies_from.append((source_stage, rest[:-1]))
    return stages


def image_without_digest(image):
    return image.split("@", 1)[0]


# ---------------------------------------------------------------------------------------------
# scripts/install-deps.sh

def install_deps_packages(path):
    """Elements of the `packages=( ... )` and `packages+=( ... )` arrays of install-deps.sh."""
    with open(path, encoding="utf-8") as f:
        # Comments first: one may hold a ")" that would end an array early.
        text = re.sub(r"(^|\s)#[^\n]*", r"\1", f.read())
    packages = []
    for match in re.finditer(r"\bpackages\+?=\((.*?)\)", text, re.S):
        packages += match.group(1).split()
    return packages


# ---------------------------------------------------------------------------------------------
# dpkg database

def split_alternatives(field):
    """Depends-style field -> list of alternative groups, each a list of bare package names."""
    groups = []
    for group in field.split(","):
        group = group.strip()
        if not group:
            continue
        alternatives = []
        for alt in group.split("|"):
            alt = re.sub(r"\(.*?\)", "", alt)   # version constraint: one bookworm archive
            alt = re.sub(r"\[.*?\]", "", alt)   # architecture restriction
            alt = re.sub(r"<.*?>", "", alt)     # build profile
            alt = alt.strip().split(":", 1)[0]  # :any / :native / :amd64
            if alt:
                alternatives.append(alt)
        if alternatives:
            groups.append(alternatives)
    return groups


class PackageDb:
    """Installed packages of this machine: dependencies, providers, priority."""

    def __init__(self):
        fmt = "${Package}\t${db:Status-Status}\t${Essential}\t${Priority}\t${Provides}\t${Pre-Depends}\t${Depends}\n"
        out = run(["dpkg-query", "-W", "-f=" + fmt]).stdout
        self.depends = {}     # package -> alternative groups (Pre-Depends and Depends)
        self.base = []        # Essential: yes or Priority: required
        self.providers = {}   # virtual name -> installed packages that provide it
        for line in out.splitlines():
            fields = line.split("\t")
            if len(fields) != 7:
                continue
            package, status, essential, priority, provides, pre_depends, depends = fields
            if status != "installed":
                continue
            groups = split_alternatives(pre_depends) + split_alternatives(depends)
            self.depends.setdefault(package, [])
            for g in groups:  # Multi-Arch: same packages appear once per architecture
                if g not in self.depends[package]:
                    self.depends[package].append(g)
            if (essential == "yes" or priority == "required") and package not in self.base:
                self.base.append(package)
            for group in split_alternatives(provides):
                for name in group:
                    self.providers.setdefault(name, [])
                    if package not in self.providers[name]:
                        self.providers[name].append(package)

    def installed(self, package):
        return package in self.depends

    def resolve(self, name):
        """Installed packages that satisfy a dependency on name (itself, or its providers)."""
        if self.installed(name):
            return [name]
        return list(self.providers.get(name, []))


class Closure:
    """Packages apt installs for the seeds, following Pre-Depends and Depends.

    For an alternative group `a | b` apt installs the first alternative unless one of them is
    already going in; this does the same. When the first alternative is not installed on this
    machine its dependencies cannot be read here, so the group is left open and reported, and
    counts as satisfied only if another alternative gets into the closure by another way.
    """

    def __init__(self, db, seeds):
        self.db = db
        self.packages = {}   # package -> the package whose dependency brought it in (None: seed)
        self.seed_label = {}
        self.unknown = []    # seeds not installed here: dependencies unknown
        self.open_groups = []
        queue = []
        for package, label in seeds:
            if package in self.packages:
                continue
            self.packages[package] = None
            self.seed_label[package] = label
            if db.installed(package):
                queue.append(package)
            else:
                self.unknown.append(package)
        while queue:
            package = queue.pop(0)
            for group in db.depends.get(package, []):
                if self.satisfied(group):
                    continue
                chosen = db.resolve(group[0])
                if not chosen:
                    self.open_groups.append((package, group))
                    continue
                target = chosen[0]
                self.packages[target] = package
                queue.append(target)
        self.open_groups = [(p, g) for p, g in self.open_groups if not self.satisfied(g)]

    def satisfied(self, group):
        return any(p in self.packages for name in group for p in [name] + self.db.providers.get(name, []))

    def __contains__(self, package):
        return package in self.packages

    def chain(self, package):
        """How package gets in: 'listed', 'base image', or 'libcurl4 > libnghttp2-14'."""
        path = [package]
        while self.packages.get(path[-1]) is not None:
            path.append(self.packages[path[-1]])
        seed = path[-1]
        label = self.seed_label.get(seed, "")
        if len(path) == 1:
            return label
        return f"{label}: " + " > ".join(reversed(path))


def owners(paths):
    """path -> owning packages, for the paths dpkg knows (one dpkg -S call)."""
    if not paths:
        return {}
    proc = run(["dpkg", "-S"] + sorted(set(paths)), check=False)
    result = {}
    for line in proc.stdout.splitlines():
        if line.startswith("diversion "):
            continue
        packages, sep, path = line.partition(": ")
        if not sep:
            continue
        result[path.strip()] = [p.strip().split(":", 1)[0] for p in packages.split(",")]
    return result


def path_variants(path):
    """The spellings dpkg may have recorded for a file under merged /usr."""
    variants = []
    for p in (path, os.path.realpath(path)):
        for v in (p, p[4:] if p.startswith("/usr/") else "/usr" + p):
            if v not in variants:
                variants.append(v)
    return variants


def package_of(path, known):
    for variant in path_variants(path):
        if variant in known:
            return known[variant]
    return None


# ---------------------------------------------------------------------------------------------
# ldd

def ldd(binary, failures):
    """[(soname, resolved path)] of a dynamically linked binary."""
    proc = run(["ldd", binary], check=False)
    output = proc.stdout + proc.stderr
    if "not a dynamic executable" in output or "statically linked" in output:
        return []
    if proc.returncode != 0:
        failures.add(f"ldd {binary} exited {proc.returncode}: {output.strip()}")
        return []
    libraries = []
    for line in proc.stdout.splitlines():
        line = line.strip()
        m = re.match(r"^(\S+) => not found", line)
        if m:
            failures.add(f"{os.path.basename(binary)}: ldd cannot resolve {m.group(1)} (not found)")
            continue
        m = re.match(r"^(\S+) => (/\S+) \(0x[0-9a-f]+\)$", line)
        if m:
            libraries.append((m.group(1), m.group(2)))
            continue
        m = re.match(r"^(/\S+) \(0x[0-9a-f]+\)$", line)  # the dynamic loader
        if m:
            libraries.append((os.path.basename(m.group(1)), m.group(1)))
            continue
        if re.match(r"^linux-(vdso|gate)\.so", line):
            continue  # provided by the kernel
        failures.add(f"{os.path.basename(binary)}: unexpected ldd line {line!r}")
    return libraries


# ---------------------------------------------------------------------------------------------
# CMakeCache.txt

def configure_found_files(cache_path):
    """(variable, file) for what the configure found: FILEPATH entries and <Pkg>_DIR config files.

    CMAKE_* entries (compiler, archiver, generator program) are left out: they describe this build
    tree's toolchain choice, and the Dockerfile picks its own (cmake -G Ninja, the default c++);
    the toolchain packages are checked through install-deps.sh (build-essential, cmake, ninja-build).
    """
    found = []
    with open(cache_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = re.match(r"^([A-Za-z0-9_.+-]+):(FILEPATH|PATH)=(.*)$", line.rstrip("\n"))
            if not m:
                continue
            variable, kind, value = m.groups()
            if variable.startswith("CMAKE_") or not value.startswith("/") or value.endswith("-NOTFOUND"):
                continue
            if kind == "FILEPATH":
                if os.path.exists(value):
                    found.append((variable, value))
            elif variable.endswith("_DIR") and os.path.isdir(value):
                configs = sorted(glob.glob(os.path.join(value, "*[Cc]onfig.cmake")))
                if configs:
                    found.append((variable, configs[0]))
            # other PATH entries are include directories such as /usr/include: owned by hundreds
            # of packages, they say nothing about which one the build needs
    return found


# ---------------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dockerfile", required=True)
    parser.add_argument("--install-deps", help="scripts/install-deps.sh (default: next to the Dockerfile's repository)")
    parser.add_argument("--cmake-cache", help="CMakeCache.txt of the build tree the binaries come from")
    parser.add_argument("binaries", nargs="+")
    args = parser.parse_args()

    for tool in ("ldd", "dpkg", "dpkg-query"):
        if not any(os.access(os.path.join(d, tool), os.X_OK) for d in os.environ.get("PATH", "/usr/bin").split(":") + ["/usr/bin"]):
            skip(f"no {tool} on this machine")
    codename = ""
    try:
        with open("/etc/os-release", encoding="utf-8") as f:
            for line in f:
                if line.startswith("VERSION_CODENAME="):
                    codename = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    if codename != "bookworm":
        skip(f"this machine is not Debian 12 (VERSION_CODENAME={codename or '?'}); "
             "the package closure is read from its dpkg database and must match the image's")

    failures = Failures()
    dockerfile = os.path.abspath(args.dockerfile)
    repo = os.path.dirname(os.path.dirname(dockerfile))
    install_deps = args.install_deps or os.path.join(repo, "scripts", "install-deps.sh")
    stages = parse_dockerfile(dockerfile, failures)
    if not stages:
        print(f"FAIL: {dockerfile} has no FROM")
        return 1

    # --- which stages ------------------------------------------------------------------------
    runtime = stages[-1]
    if image_without_digest(runtime.image) != RUNTIME_BASE:
        failures.add(f"the final stage is FROM {runtime.image}, expected {RUNTIME_BASE}")
    by_name = {s.name: s for s in stages if s.name}
    build_refs = sorted({ref for ref, _ in runtime.copies_from})
    build_stages = []
    for ref in build_refs:
        stage = by_name.get(ref) or (stages[int(ref)] if ref.isdigit() and int(ref) < len(stages) - 1 else None)
        if stage is None:
            failures.add(f"the final stage copies --from={ref}, which is no earlier stage (an external image?)")
        else:
            build_stages.append(stage)
    if not build_stages:
        failures.add("the final stage copies nothing from a build stage")
    build_packages = []
    for stage in build_stages:
        # a stage FROM another stage inherits its packages
        chain = [stage]
        while chain[-1].image in by_name and by_name[chain[-1].image] not in chain:
            chain.append(by_name[chain[-1].image])
        for s in chain:
            build_packages += [p for p in s.packages if p not in build_packages]
        base = image_without_digest(chain[-1].image)
        if base not in DEBIAN_12_IMAGES:
            failures.add(f"{stage.label()} builds on {chain[-1].image}; it must be Debian 12 "
                         f"({' or '.join(DEBIAN_12_IMAGES)}) so the libraries it links are the "
                         f"ones {RUNTIME_BASE} installs")

    print(f"Dockerfile: {os.path.relpath(dockerfile, repo)}")
    for stage in build_stages:
        print(f"  build   {stage.label()}: {' '.join(stage.packages) or '(no apt-get install)'}")
    print(f"  runtime {runtime.label()}: {' '.join(runtime.packages) or '(no apt-get install)'}")

    # --- the binaries are the ones the image ships -------------------------------------------
    shipped = {os.path.basename(src) for _, sources in runtime.copies_from for src in sources}
    given = {os.path.basename(b) for b in args.binaries}
    for name in sorted(given - shipped):
        failures.add(f"{name} was given to check but the final stage does not copy it from the build stage")
    for name in sorted(shipped - given):
        failures.add(f"the final stage ships {name}, but it was not given to this test: pass its built "
                     f"binary (tests/deploy/CMakeLists.txt) so its libraries are checked")

    db = PackageDb()

    # --- runtime stage -----------------------------------------------------------------------
    for package in runtime.packages:
        what = next((what for pattern, what in FORBIDDEN_AT_RUNTIME if pattern.match(package)), None)
        if what:
            failures.add(f"the runtime stage installs {package}, {what}; it belongs in the build stage")
    seeds = [(p, "listed") for p in runtime.packages] + [(p, f"in {RUNTIME_BASE}") for p in db.base]
    closure = Closure(db, seeds)
    for package in closure.unknown:
        print(f"  note: {package} is not installed on this machine; its dependencies are not followed")
    for package, group in closure.open_groups:
        print(f"  note: {package} depends on {' | '.join(group)}: the first is not installed here, "
              "so which one the image gets is unknown; not followed")
    def forbidden(package):
        return next((what for pattern, what in FORBIDDEN_AT_RUNTIME if pattern.match(package)), None)

    for package in sorted(closure.packages):
        if not closure.chain(package).startswith("listed") or package in runtime.packages:
            continue  # the base image's own packages; listed ones are reported above
        what = forbidden(package)
        ancestor = closure.packages[package]
        while ancestor is not None and not forbidden(ancestor):
            ancestor = closure.packages[ancestor]
        if what and ancestor is None:  # only the first forbidden package on its way in
            failures.add(f"the runtime stage pulls in {package}, {what} ({closure.chain(package)})")

    libraries = {}  # path -> (soname, [binary names])
    for binary in args.binaries:
        if not os.path.isfile(binary):
            failures.add(f"{binary}: no such file (build it first)")
            continue
        for soname, path in ldd(binary, failures):
            entry = libraries.setdefault(path, (soname, []))
            entry[1].append(os.path.basename(binary))
    known = owners([v for path in libraries for v in path_variants(path)])

    by_package = {}  # package -> [sonames]
    ignored = []
    for path, (soname, users) in sorted(libraries.items(), key=lambda kv: kv[1][0]):
        if SANITIZER_RUNTIME.match(soname):
            ignored.append(soname)
            continue
        packages = package_of(path, known)
        if not packages:
            failures.add(f"{soname} ({path}, needed by {', '.join(users)}) belongs to no Debian package; "
                         f"the image cannot get it from apt")
            continue
        inside = [p for p in packages if p in closure]
        package = inside[0] if inside else packages[0]
        by_package.setdefault(package, []).append(soname)
        if not inside:
            failures.add(f"{soname} (needed by {', '.join(users)}) is in package {package}, which the runtime "
                         f"stage does not install: add {package} to its apt-get install line")

    print(f"\nRuntime libraries of {', '.join(sorted(given))} -> package (how it gets into the image):")
    width = max((len(p) for p in by_package), default=0)
    how_width = max((len(closure.chain(p)) for p in by_package if p in closure), default=0)
    def order(package):  # listed packages and what they pull in, then the base image's, then missing
        how = closure.chain(package) if package in closure else None
        return (0 if how and how.startswith("listed") else 1 if how else 2, how or "", package)

    for package in sorted(by_package, key=order):
        sonames = by_package[package]
        shown = ", ".join(sonames[:3]) + (f" (+{len(sonames) - 3} more)" if len(sonames) > 3 else "")
        how = closure.chain(package) if package in closure else "MISSING"
        print(f"  {package:<{width}}  {how:<{how_width}}  {shown}")
    if ignored:
        print(f"  ignored: {', '.join(ignored)}: sanitizer runtime of an instrumented build tree, "
              "not linked by the image's Release build")

    for package, why in RUNTIME_DATA.items():
        if package in closure:
            print(f"  {package:<{width}}  {closure.chain(package):<{how_width}}  (not linked: {why})")
        else:
            failures.add(f"the runtime stage lacks {package}: {why}")
    if shipped <= given:  # with every shipped binary looked at, an unused package is a stale one
        for package in runtime.packages:
            if package not in by_package and package not in RUNTIME_DATA:
                failures.add(f"the runtime stage installs {package}, but no library of the binaries comes "
                             f"from it: remove it, or list it in RUNTIME_DATA with the reason")

    # --- build stage -------------------------------------------------------------------------
    build_closure = Closure(db, [(p, "listed") for p in build_packages] + [(p, "debian:bookworm") for p in db.base])
    for package in build_closure.unknown:
        print(f"  note: build stage: {package} is not installed on this machine; its dependencies are not followed")

    print(f"\nBuild stage against {os.path.relpath(install_deps, repo)}:")
    deps = install_deps_packages(install_deps)
    if not deps:
        failures.add(f"found no packages=( ... ) list in {install_deps}; update install_deps_packages()")
    for package in deps:
        if package in NOT_FOR_THE_IMAGE_BUILD:
            print(f"  skip {package}: {NOT_FOR_THE_IMAGE_BUILD[package]}")
        elif package not in build_closure:
            failures.add(f"the build stage lacks {package}, which scripts/install-deps.sh installs to build "
                         f"the gateway (or list it in NOT_FOR_THE_IMAGE_BUILD with the reason)")
    for package in NOT_FOR_THE_IMAGE_BUILD:
        if package not in deps:
            print(f"  note: NOT_FOR_THE_IMAGE_BUILD lists {package}, which install-deps.sh no longer installs")

    if args.cmake_cache:
        if not os.path.isfile(args.cmake_cache):
            failures.add(f"{args.cmake_cache}: no such file")
        else:
            print(f"\nBuild stage against what the configure found ({args.cmake_cache}):")
            found = configure_found_files(args.cmake_cache)
            known = owners([v for _, path in found for v in path_variants(path)])
            for variable, path in found:
                packages = package_of(path, known)
                if not packages:
                    failures.add(f"the configure found {variable}={path}, which belongs to no Debian package; "
                                 f"the image build cannot install it")
                    continue
                inside = [p for p in packages if p in build_closure]
                if inside:
                    print(f"  {variable} -> {inside[0]} ({build_closure.chain(inside[0])})")
                else:
                    failures.add(f"the configure found {variable}={path} (package {packages[0]}), which the "
                                 f"build stage does not install: its cmake configure would fail")

    if failures.items:
        print(f"\nFAIL: {os.path.relpath(dockerfile, repo)} does not match what the binaries and the build need:")
        for item in failures.items:
            print(f"  - {item}")
        return 1
    print(f"\nOK: {os.path.relpath(dockerfile, repo)}: the runtime stage provides every library, the build stage every build dependency")
    return 0


if __name__ == "__main__":
    sys.exit(main())
